package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestRestream: a moderator of a two-person call goes live from the call
// page, to Parley's own RTMP ingest for another room (through a proxy
// standing in for the platform's server). Both participants see "Live";
// a viewer in the other room decodes the composed 1280x720 video and
// receives its audio. The RTMP server then goes away and comes back:
// the restream reconnects by itself (the metric counts it) and the
// viewer gets the stream again. Stopping it takes "Live" away.
func TestRestream(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	rtmpPort := testkit.FreeTCPPort(t)
	srv := startServerWith(t, map[string]any{
		// The RTMP server is this machine's, which a restream may reach
		// only when the operator allows it.
		"recording": map[string]any{"enabled": true, "restream_allowed_networks": []string{"127.0.0.0/8"}},
		"rtmp":      map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", rtmpPort)},
	})
	const room, stage = "e2e-live", "e2e-stage"
	key := createStreamKey(t, srv, stage, "Live stage")
	t.Cleanup(func() {
		// The restream's and the ingest's lines of the server's log.
		b, _ := os.ReadFile(srv.LogPath)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "restream") || strings.Contains(l, "component=ingest") || strings.Contains(l, "component=rtmp") {
				lines = append(lines, l)
			}
		}
		t.Logf("restream and ingest log:\n%s", strings.Join(lines, "\n"))
	})
	// The proxy stands in for the platform's server, which the test
	// takes away and brings back.
	proxy := testkit.StartTCPProxy(t, fmt.Sprintf("127.0.0.1:%d", rtmpPort))
	rtmpURL := fmt.Sprintf("rtmp://%s/live/%s", proxy.Addr(), key)

	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	bob := join(t, ctx, srv, room, "Bob")
	viewer := join(t, ctx, srv, stage, "Viewer")
	for _, p := range []*participant{host, bob} {
		p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
			return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
		})
	}
	if visible(ctx, bob, "live-toggle") {
		t.Errorf("Bob, not a moderator, is offered Go live")
	}

	// Go live asks for the URL (window.prompt, answered here).
	if _, err := Eval[bool](ctx, host.B, fmt.Sprintf(`(() => { window.prompt = () => %q; return true; })()`, rtmpURL)); err != nil {
		t.Fatal(err)
	}
	host.press(ctx, `[data-testid="live-toggle"]`)
	started := time.Now()
	for _, p := range []*participant{host, bob} {
		if !poll(ctx, modLimit, func() bool { return visible(ctx, p, "live-indicator") }) {
			t.Fatalf("%s: the Live indicator is not shown", p.Name)
		}
		p.waitText(ctx, "live-indicator", "Live")
	}
	host.waitText(ctx, "live-toggle", "Stop live")

	// The viewer in the stage room gets the composition.
	// stream waits for the composition's video decoding at the viewer,
	// new frames beyond those of the track it was given.
	stream := func(limit time.Duration, what string, after trackStat) trackStat {
		var got trackStat
		viewer.waitStats(ctx, limit, what, func(s []trackStat) bool {
			for _, v := range videosFrom(s, "") {
				if v.FrameWidth != 1280 || v.FrameHeight != 720 {
					continue
				}
				// The ingest keeps a reconnecting stream's participant
				// (ingest.reconnect_grace): the same track or a new one.
				if v.key() != after.key() || v.FramesDecoded > after.FramesDecoded+50 {
					got = v
					return true
				}
			}
			return false
		})
		return got
	}
	first := stream(60*time.Second, "the restream's 1280x720 video decoding", trackStat{})
	t.Logf("restream decoded by the viewer %v after going live", time.Since(started).Round(time.Second))
	samples := func(sid string) int64 {
		all, err := Eval[[]audioStat](ctx, viewer.B, `window.parley.stats()`)
		if err != nil {
			return 0
		}
		for _, a := range all {
			if a.Participant == sid && a.Kind == "audio" {
				return a.TotalSamplesReceived
			}
		}
		return 0
	}
	var s0 int64
	if !poll(ctx, 20*time.Second, func() bool { s0 = samples(first.Participant); return s0 > 0 }) {
		t.Fatal("the viewer receives no audio from the restream")
	}
	viewer.assertFlowing(ctx, []trackStat{first})
	if got := samples(first.Participant) - s0; got <= 0 {
		t.Errorf("the restream's audio does not grow at the viewer: %d samples", got)
	}
	viewer.shot(ctx, "restream-viewer")
	host.shot(ctx, "restream-live")

	// The RTMP server goes away for a few seconds, then comes back.
	before := metricValue(t, srv, "parley_restream_reconnects_total")
	proxy.Down()
	time.Sleep(3 * time.Second)
	// What the viewer decoded up to the drop: the stream is gone now.
	var last trackStat
	if s, err := viewer.stats(ctx); err == nil {
		for _, v := range s {
			if v.key() == first.key() {
				last = v
			}
		}
	}
	proxy.Up(t)
	if !poll(ctx, 30*time.Second, func() bool { return metricValue(t, srv, "parley_restream_reconnects_total") > before }) {
		t.Fatal("the restream did not reconnect (parley_restream_reconnects_total unchanged)")
	}
	second := stream(60*time.Second, "the restream's video again after the reconnection", last)
	viewer.assertFlowing(ctx, []trackStat{second})
	if !visible(ctx, bob, "live-indicator") {
		t.Error("Bob: Live went away while the restream reconnected")
	}
	t.Logf("reconnected: %v reconnects, %v ffmpeg restarts", metricValue(t, srv, "parley_restream_reconnects_total"),
		metricValue(t, srv, "parley_restream_ffmpeg_restarts_total"))

	host.press(ctx, `[data-testid="live-toggle"]`)
	for _, p := range []*participant{host, bob} {
		if !poll(ctx, modLimit, func() bool { return !visible(ctx, p, "live-indicator") }) {
			t.Errorf("%s: Live stays after the stop", p.Name)
		}
	}
	if v := metricValue(t, srv, "parley_restreams_active"); v != 0 {
		t.Errorf("parley_restreams_active = %v after the stop", v)
	}
}
