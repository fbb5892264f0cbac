package signaling

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/signaling/proto"
)

// adminClientStatsOf reads the participants' clientStats from the admin
// API, by identity (nil: none shown).
func adminClientStatsOf(t *testing.T, env *testEnv, room string) map[string]*adminClientStats {
	t.Helper()
	code, body := env.admin("GET", "/api/admin/rooms/"+room+"/participants", "")
	if code != 200 {
		t.Fatalf("participants: %d %s", code, body)
	}
	var parts struct {
		Participants []adminParticipant `json:"participants"`
	}
	if err := json.Unmarshal(body, &parts); err != nil {
		t.Fatal(err)
	}
	out := map[string]*adminClientStats{}
	for _, p := range parts.Participants {
		out[p.Identity] = p.ClientStats
	}
	return out
}

// TestClientStatsShownByAdminAPI: a participant's client_stats appears
// in the admin API's participant view, only the latest is kept, one sent
// too soon after it is dropped, an invalid one is refused, and the
// summary goes when the participant leaves.
func TestClientStatsShownByAdminAPI(t *testing.T) {
	env := startServer(t, nil)
	ada, _ := env.join("ada", "r", allGrants)
	bob, _ := env.join("bob", "r", allGrants)
	ada.expect("participant_joined")
	// A reaction comes back to its sender: once it does, everything
	// sent before it was handled (one connection's requests are handled
	// in order).
	sync := func(c *client) {
		t.Helper()
		c.send("reaction", "", proto.ReactionBody{Emoji: "👍"})
		c.expect("reaction")
	}

	before := time.Now()
	first := proto.ClientStatsBody{
		Audio: proto.ClientAudioStats{Tracks: 1, TotalSamplesReceived: 480000, ConcealedSamples: 6000, SilentConcealedSamples: 1200, PacketsReceived: 500, PacketsLost: 5, JitterMs: 3},
		Video: proto.ClientVideoStats{Tracks: 1, FramesDecoded: 300, FramesDropped: 1},
		RTTMs: 20, AvailableOutgoingBitrate: 1.5e6,
	}
	ada.send(proto.TypeClientStats, "s1", first)
	sync(ada)
	got := adminClientStatsOf(t, env, "r")
	a := got["ada"]
	if a == nil || a.Audio != first.Audio || a.Video != first.Video || a.RTTMs != 20 || a.AvailableOutgoingBitrate != 1.5e6 {
		t.Fatalf("admin API shows ada's stats as %+v, want %+v", a, first)
	}
	if a.ConcealedRatio != 0.01 || a.ReceivedAt.Before(before) || a.ReceivedAt.After(time.Now()) {
		t.Fatalf("concealedRatio %v (want 0.01), receivedAt %v", a.ConcealedRatio, a.ReceivedAt)
	}
	if b, ok := got["bob"]; !ok || b != nil {
		t.Fatalf("bob sent no stats but is shown with %+v (listed: %v)", b, ok)
	}
	if raw, _ := json.Marshal(adminParticipant{}); jsonHas(raw, "clientStats") {
		t.Fatalf("a participant without stats has a clientStats key: %s", raw)
	}

	// Sent right after the first: dropped without an answer.
	second := first
	second.Audio.TotalSamplesReceived = 960000
	ada.send(proto.TypeClientStats, "s2", second)
	sync(ada)
	if a := adminClientStatsOf(t, env, "r")["ada"]; a == nil || a.Audio.TotalSamplesReceived != 480000 {
		t.Fatalf("a summary sent within 5 s replaced the first: %+v", a)
	}
	if n := counterValue(t, env.reg, "parley_client_stats_dropped_total"); n != 1 {
		t.Fatalf("dropped = %v, want 1", n)
	}
	if s, c := counterValue(t, env.reg, "parley_client_audio_samples_received_total"), counterValue(t, env.reg, "parley_client_audio_concealed_samples_total"); s != 480000 || c != 4800 {
		t.Fatalf("counters: %v samples, %v concealed; want 480000, 4800", s, c)
	}

	bad := first
	bad.Audio.ConcealedSamples = bad.Audio.TotalSamplesReceived + 1
	bob.expect("reaction") // ada's two, seen by the room
	bob.expect("reaction")
	bob.send(proto.TypeClientStats, "s3", bad)
	bob.expectError(proto.CodeBadRequest)
	if b := adminClientStatsOf(t, env, "r")["bob"]; b != nil {
		t.Fatalf("an invalid summary was stored: %+v", b)
	}

	ada.send("leave", "", nil)
	ada.expectBye(proto.ByeLeft)
	if !pollUntil(2*time.Second, func() bool {
		env.srv.clientStats.mu.Lock()
		defer env.srv.clientStats.mu.Unlock()
		return len(env.srv.clientStats.bySID) == 0
	}) {
		t.Fatal("ada left but her summary is still kept")
	}
}

func jsonHas(raw []byte, key string) bool {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	_, ok := m[key]
	return ok
}

func pollUntil(limit time.Duration, f func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f()
}

// TestClientStatsCounters: the counters add each accepted summary's
// growth, never more than 48 kHz per track of wall time, and a shrinking
// total only sets a new baseline.
func TestClientStatsCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := newClientStats(reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	audio := func(tracks int, total, concealed int64) proto.ClientStatsBody {
		return proto.ClientStatsBody{Audio: proto.ClientAudioStats{Tracks: tracks, TotalSamplesReceived: total, ConcealedSamples: concealed}}
	}
	steps := []struct {
		at                 time.Duration
		body               proto.ClientStatsBody
		kept               bool
		samples, concealed float64 // counters after the step
		shownTotal         int64
	}{
		{0, audio(1, 480000, 100), true, 480000, 100, 480000},
		{4 * time.Second, audio(1, 672000, 200), false, 480000, 100, 480000}, // too soon
		{10 * time.Second, audio(1, 960000, 300), true, 960000, 300, 960000},
		// A remote track ended: the sum shrinks; only a new baseline.
		{20 * time.Second, audio(1, 100000, 0), true, 960000, 300, 100000},
		{30 * time.Second, audio(1, 580000, 50), true, 1440000, 350, 580000},
		// A client claiming a day of audio in 10 s adds 11 s at 48 kHz.
		{40 * time.Second, audio(1, 580000+48000*86400, 50), true, 1440000 + 48000*11, 350, 580000 + 48000*86400},
	}
	for i, s := range steps {
		if kept := c.put("PA_1", s.body, t0.Add(s.at)); kept != s.kept {
			t.Fatalf("step %d: kept %v, want %v", i, kept, s.kept)
		}
		if got, want := counterValue(t, reg, "parley_client_audio_samples_received_total"), s.samples; got != want {
			t.Fatalf("step %d: samples %v, want %v", i, got, want)
		}
		if got, want := counterValue(t, reg, "parley_client_audio_concealed_samples_total"), s.concealed; got != want {
			t.Fatalf("step %d: concealed %v, want %v", i, got, want)
		}
		if v := c.view("PA_1"); v == nil || v.Audio.TotalSamplesReceived != s.shownTotal {
			t.Fatalf("step %d: view %+v, want total %d", i, v, s.shownTotal)
		}
	}
	if v := c.view("PA_2"); v != nil {
		t.Fatalf("view of a participant without stats: %+v", v)
	}
	c.forget("PA_1")
	if v := c.view("PA_1"); v != nil {
		t.Fatalf("forgotten but shown: %+v", v)
	}
}
