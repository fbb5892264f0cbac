package signaling

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// expectRestream skips to the next "restream" event; the raw message
// must not carry the stream key.
func expectRestream(t *testing.T, c *client, key string) proto.RestreamBody {
	t.Helper()
	m := skipTo(c, proto.TypeRestream)
	if strings.Contains(string(m.Data), key) {
		t.Fatalf("the stream key reached a participant: %s", m.Data)
	}
	var b proto.RestreamBody
	m.decode(t, &b)
	return b
}

// TestRestreamStartStop: only a moderator restreams, with a URL the
// server accepts; the room, and a joiner in "joined", see it live
// without ever seeing the URL; the sink takes the room's tracks;
// stopping tells the room and detaches the tap; the admin API starts,
// reads and stops one. (The RTMP server here is a closed port: ffmpeg
// tries and backs off; recording's and the e2e tests stream for real.)
func TestRestreamStartStop(t *testing.T) {
	// The test's RTMP server is on 127.0.0.1, which only an operator's
	// allowance makes a destination.
	env, taps, _ := recordingEnv(t, func(c *recording.Config) { c.RestreamAllowedNetworks = []string{"127.0.0.1/32"} })
	const key = "sk-live-0123456789"
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", testkit.FreeTCPPort(t), key)
	host, hj := env.joinHost("host", "r")
	if hj.Restream == nil || hj.Restream.Active {
		t.Fatalf("joined.restream before any restream: %+v", hj.Restream)
	}
	bob, _ := env.join("bob", "r", auth.Grants{Publish: true, Subscribe: true})

	bob.send(proto.TypeRestreamStart, "b1", proto.RestreamStartBody{URL: url})
	if e := skipToError(t, bob, proto.CodeForbidden); e.Code != proto.CodeForbidden {
		t.Fatalf("participant started a restream: %+v", e)
	}
	for _, bad := range []string{"", "http://example.com/live/x", "rtmp://example.com", "rtmp://h/" + strings.Repeat("k", 2000)} {
		host.send(proto.TypeRestreamStart, "hb", proto.RestreamStartBody{URL: bad})
		skipToError(t, host, proto.CodeBadRequest)
	}
	// Special-purpose destinations are refused: private, link-local
	// (cloud metadata), and a name with one address outside the
	// allowance (localhost's ::1).
	for _, inside := range []string{"rtmp://10.1.2.3/live/x", "rtmp://169.254.169.254/live/x", "rtmp://[::1]:1935/live/x"} {
		host.send(proto.TypeRestreamStart, "hd", proto.RestreamStartBody{URL: inside})
		if e := skipToError(t, host, proto.CodeForbidden); !strings.Contains(e.Message, "restream_allowed_networks") {
			t.Fatalf("%s: %+v", inside, e)
		}
	}

	host.send(proto.TypeRestreamStart, "h1", proto.RestreamStartBody{URL: url})
	for _, c := range []*client{host, bob} {
		b := expectRestream(t, c, key)
		if !b.Active || b.By == nil || b.By.Identity != "host" || b.Since == 0 {
			t.Fatalf("restream event %+v", b)
		}
	}
	host.send(proto.TypeRestreamStart, "h2", proto.RestreamStartBody{URL: url})
	skipToError(t, host, proto.CodeBadRequest)

	_, cj := env.join("carol", "r", auth.Grants{Subscribe: true})
	if cj.Restream == nil || !cj.Restream.Active {
		t.Fatalf("a joiner is not told of the restream: %+v", cj.Restream)
	}

	sink := taps.sink("r")
	if sink == nil {
		t.Fatal("no tap attached")
	}
	if _, err := sink.AddTrack(sfu.TrackInfo{SID: "TR_cam", ParticipantID: hj.Participant.SID, Kind: "video", Codec: "video/VP8"}, func() {}); err != nil {
		t.Fatal(err)
	}
	if w, err := sink.AddTrack(sfu.TrackInfo{SID: "TR_x", ParticipantID: hj.Participant.SID, Kind: "audio", Codec: "audio/G722"}, func() {}); err == nil || w != nil {
		t.Fatalf("a G.722 track was taken: %v %v", w, err)
	}

	code, body := env.admin("GET", "/api/admin/rooms/r/restream", "")
	if code != http.StatusOK || strings.Contains(string(body), key) || !strings.Contains(string(body), `"active":true`) {
		t.Fatalf("admin state: %d %s", code, body)
	}

	host.send(proto.TypeRestreamStop, "h3", nil)
	for _, c := range []*client{host, bob} {
		b := expectRestream(t, c, key)
		if b.Active || b.By == nil || b.By.Identity != "host" || b.Reason != "stopped" {
			t.Fatalf("stop event %+v", b)
		}
	}
	taps.mu.Lock()
	closed := taps.closed["r"]
	taps.mu.Unlock()
	if closed != 1 {
		t.Fatalf("tap closed %d times", closed)
	}
	host.send(proto.TypeRestreamStop, "h4", nil)
	skipToError(t, host, proto.CodeBadRequest)

	// The admin API: start, a second start refused, stop, a second stop
	// refused.
	reqBody, _ := json.Marshal(map[string]string{"url": url})
	if code, body := env.admin("POST", "/api/admin/rooms/r/restream", string(reqBody)); code != http.StatusOK || strings.Contains(string(body), key) {
		t.Fatalf("admin start: %d %s", code, body)
	}
	if b := expectRestream(t, host, key); !b.Active || b.By == nil || b.By.Identity != "admin:"+testKeyID {
		t.Fatalf("admin start event %+v", b)
	}
	if code, body := env.admin("POST", "/api/admin/rooms/r/restream", string(reqBody)); code != http.StatusConflict {
		t.Fatalf("second admin start: %d %s", code, body)
	}
	if code, body := env.admin("POST", "/api/admin/rooms/r/restream", `{"url":"ftp://x/y"}`); code != http.StatusConflict && code != http.StatusBadRequest {
		t.Fatalf("admin start with a bad URL: %d %s", code, body)
	}
	if code, body := env.admin("DELETE", "/api/admin/rooms/r/restream", ""); code != http.StatusNoContent {
		t.Fatalf("admin stop: %d %s", code, body)
	}
	if b := expectRestream(t, host, key); b.Active || b.Reason != "stopped" {
		t.Fatalf("admin stop event %+v", b)
	}
	if code, _ := env.admin("DELETE", "/api/admin/rooms/r/restream", ""); code != http.StatusNotFound {
		t.Fatalf("second admin stop: %d", code)
	}
}

// skipToError skips to the next error, which must have code.
func skipToError(t *testing.T, c *client, code string) proto.ErrorBody {
	t.Helper()
	var e proto.ErrorBody
	skipTo(c, proto.TypeError).decode(t, &e)
	if e.Code != code {
		t.Fatalf("error %+v, want code %s", e, code)
	}
	return e
}
