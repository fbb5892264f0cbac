package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/livekit/go-rtmp/message"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func newTestPublish(t *testing.T) (*publish, *fakeSession) {
	sess := &fakeSession{closedCh: make(chan struct{})}
	m, _ := newMetrics(nil)
	p := newPublish(context.Background(), StreamInfo{}, sess, publishOptions{MTU: 1200, Transcoder: &fakeTranscoder{}, RestartMin: time.Millisecond, RestartMax: time.Millisecond}, slog.New(slog.DiscardHandler), m)
	t.Cleanup(func() { _ = p.close() })
	return p, sess
}

func avcTag(keyframe bool, cts int32, nalus ...[]byte) []byte {
	b := []byte{0x27, 1, byte(cts >> 16), byte(cts >> 8), byte(cts)}
	if keyframe {
		b[0] = 0x17
	}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestPublishVideoPath(t *testing.T) {
	p, sess := newTestPublish(t)
	sps, pps := mustHex(t, spsBaseline), mustHex(t, "68cb83cb20")
	if err := p.video(0, avcTag(false, 0, nal(1, 10))); err != nil { // before config: ignored
		t.Fatal(err)
	}
	if err := p.video(0, append([]byte{0x17, 0, 0, 0, 0}, avcRecord(t, sps, pps, 3)...)); err != nil {
		t.Fatal(err)
	}
	v, _ := sess.tracks()
	if v == nil || v.spec.SDPFmtpLine != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01e" {
		t.Fatalf("video track %+v", v)
	}
	steps := []struct {
		ts       uint32
		tag      []byte
		wantPkts int
		wantNALs []byte
	}{
		{10, avcTag(false, 0, nal(1, 10)), 0, nil},                           // delta before first keyframe: dropped
		{20, avcTag(true, 0, nal(naluAUD, 2), nal(5, 50)), 2, []byte{24, 5}}, // AUD dropped, SPS+PPS STAP-A first
		{53, avcTag(false, 0, nal(1, 10)), 1, []byte{1}},
		{86, avcTag(true, 0, mustHex(t, spsMain), nal(5, 50)), 2, []byte{24, 5}}, // in-band SPS replaces the stored one
	}
	for i, s := range steps {
		before := len(v.packets())
		if err := p.video(s.ts, s.tag); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		pkts := v.packets()[before:]
		if len(pkts) != s.wantPkts {
			t.Fatalf("step %d: %d packets, want %d", i, len(pkts), s.wantPkts)
		}
		for j, pk := range pkts {
			if pk.Payload[0]&0x1f != s.wantNALs[j] {
				t.Errorf("step %d packet %d NAL type %d, want %d", i, j, pk.Payload[0]&0x1f, s.wantNALs[j])
			}
		}
	}
	last := v.packets()
	stap := depacketize(t, last[len(last)-2:len(last)-1])
	if string(stap[0]) != string(mustHex(t, spsMain)) || string(stap[1]) != string(pps) {
		t.Errorf("keyframe after in-band SPS carries %x", stap)
	}
}

// A TrackWriter that says the Sink can no longer carry the stream (a
// relay to another node failed) ends the publish with a refusal the
// publisher reads, as a revoked key does.
func TestPublishEndsWhenSessionEnded(t *testing.T) {
	p, sess := newTestPublish(t)
	sps, pps := mustHex(t, spsBaseline), mustHex(t, "68cb83cb20")
	if err := p.video(0, append([]byte{0x17, 0, 0, 0, 0}, avcRecord(t, sps, pps, 3)...)); err != nil {
		t.Fatal(err)
	}
	v, _ := sess.tracks()
	if err := p.video(10, avcTag(true, 0, nal(5, 50))); err != nil {
		t.Fatalf("keyframe before the session ended: %v", err)
	}
	v.mu.Lock()
	v.err = fmt.Errorf("relay to node a: %w", ErrSessionEnded)
	v.mu.Unlock()
	err := p.video(43, avcTag(false, 0, nal(1, 10)))
	var r *refusal
	if !errors.As(err, &r) || r.Reason != reasonSinkEnded || !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("video after the session ended: %v, want a %s refusal", err, reasonSinkEnded)
	}
	if p.endRefusal() == nil {
		t.Fatal("endRefusal is nil after the session ended: an audio-only publish would go on")
	}
	// A revocation noticed later does not replace the first reason.
	p.writerEnded(ErrRevoked)
	if errors.As(p.endRefusal(), &r); r.Reason != reasonSinkEnded {
		t.Fatalf("reason %s after a later revocation, want %s", r.Reason, reasonSinkEnded)
	}
}

func TestPublishRefusals(t *testing.T) {
	cfgTag := func(t *testing.T, sps string) []byte {
		return append([]byte{0x17, 0, 0, 0, 0}, avcRecord(t, mustHex(t, sps), mustHex(t, "68cb83cb20"), 3)...)
	}
	t.Run("B-frames", func(t *testing.T) {
		p, _ := newTestPublish(t)
		_ = p.video(0, cfgTag(t, spsMain))
		if err := p.video(0, avcTag(true, 66, nal(5, 20))); err != nil { // I: pts 66
			t.Fatal(err)
		}
		if err := p.video(33, avcTag(false, 100, nal(1, 20))); err != nil { // P: pts 133
			t.Fatal(err)
		}
		err := p.video(66, avcTag(false, 0, nal(1, 20))) // B: pts 66 < 133
		var r *refusal
		if !errors.As(err, &r) || r.Reason != reasonBFrames || !strings.Contains(r.Desc, "OBS") || !strings.Contains(r.Desc, "B-frames") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("constant composition offset without reordering is fine", func(t *testing.T) {
		p, _ := newTestPublish(t)
		_ = p.video(0, cfgTag(t, spsMain))
		for i := 0; i < 5; i++ {
			if err := p.video(uint32(i*33), avcTag(i == 0, 66, nal(5, 20))); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("HEVC", func(t *testing.T) {
		p, _ := newTestPublish(t)
		err := p.video(0, append([]byte{0x90}, []byte("hvc1")...))
		var r *refusal
		if !errors.As(err, &r) || r.Reason != reasonVideoCodec || !strings.Contains(r.Desc, "HEVC") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("High 4:2:2", func(t *testing.T) {
		p, _ := newTestPublish(t)
		// x264 high422: profile_idc 122, chroma_format_idc 2
		err := p.video(0, cfgTag(t, "677a001ebcd940a02ff89c0440000003004000000f03c58b6580"))
		if r := (*refusal)(nil); errors.As(err, &r) && !strings.Contains(r.Desc, "4:2:0") {
			t.Errorf("refusal should say what browsers decode: %s", r.Desc)
		}
		var r *refusal
		if !errors.As(err, &r) || r.Reason != reasonVideoCodec {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unsupported audio keeps video", func(t *testing.T) {
		p, sess := newTestPublish(t)
		p.audioTag(0, []byte{0x2f, 0x00}) // MP3
		sess.mu.Lock()
		n := len(sess.unavailable)
		sess.mu.Unlock()
		if n != 1 || !p.audioOff {
			t.Fatalf("unavailable %d", n)
		}
		if err := p.video(0, cfgTag(t, spsBaseline)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cases := map[string]func(*Config){
		"rtmp.listen":                 func(c *Config) { c.Listen = "1935" },
		"rtmp.app":                    func(c *Config) { c.App = "a/b" },
		"rtmp.handshake_timeout":      func(c *Config) { c.HandshakeTimeout = 0 },
		"rtmp.read_timeout":           func(c *Config) { c.ReadTimeout = -1 },
		"rtmp.max_chunk_size":         func(c *Config) { c.MaxChunkSize = 1 },
		"rtmp.max_message_size":       func(c *Config) { c.MaxMessageSize = 1 << 30 },
		"rtmp.max_connections":        func(c *Config) { c.MaxConnections = 0 },
		"rtmp.max_connections_per_ip": func(c *Config) { c.MaxConnectionsPerIP = c.MaxConnections + 1 },
		// unauthenticated slots must stay a minority
		"rtmp.max_unauthenticated":          func(c *Config) { c.MaxUnauthenticated = c.MaxConnections/2 + 1 },
		"rtmp.max_unauthenticated_per_ip":   func(c *Config) { c.MaxUnauthenticatedPerIP = c.MaxUnauthenticated + 1 },
		"rtmp.max_chunk_streams":            func(c *Config) { c.MaxChunkStreams = 2 },
		"rtmp.max_command_size":             func(c *Config) { c.MaxCommandSize = 100 },
		"rtmp.unauthenticated_buffer_bytes": func(c *Config) { c.UnauthenticatedBufferBytes = c.MaxCommandSize - 1 },
		"rtmp.max_buffer_bytes":             func(c *Config) { c.MaxBufferBytes = c.MaxMessageSize - 1 },
		"rtmp.ffmpeg_path":                  func(c *Config) { c.FFmpegPath = "" },
		"rtmp.opus_bitrate":                 func(c *Config) { c.OpusBitrate = 1 },
		"rtmp.mtu":                          func(c *Config) { c.MTU = 9000 },
		"rtmp.transcoder_restart_min": func(c *Config) {
			c.TranscoderRestartMin, c.TranscoderRestartMax = time.Second, time.Millisecond
		},
	}
	for key, mod := range cases {
		c := DefaultConfig()
		mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("%s: error %v does not name the key", key, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without KeyStore and Sink succeeded")
	}
}

func TestOnStatusFitsOneChunk(t *testing.T) {
	// Every refusal OnPublish can send (see handler.go).
	refusals := []struct{ code, desc string }{
		{"NetStream.Publish.BadName", "parley: unknown stream key"},
		{"NetStream.Publish.BadName", "parley: stream key revoked"},
		{"NetStream.Publish.BadName", "parley: stream key already live"},
		{"NetStream.Publish.BadName", "parley: already publishing"},
		{"NetStream.Publish.Failed", "parley: key check failed"},
		{"NetStream.Publish.Failed", "parley: room refused the stream"},
	}
	for _, r := range refusals {
		msg, err := onStatusMessage(r.code, r.desc)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := message.NewEncoder(&buf).Encode(msg); err != nil {
			t.Fatal(err)
		}
		if buf.Len() > 128 {
			t.Errorf("%q encodes to %d bytes > 128: the library's generic reply would overtake it", r.desc, buf.Len())
		}
	}
}
