package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// mediaLimit bounds how long media may take to appear: fake devices
// decode within ~4 s here; the margin covers a loaded 2-core machine.
const mediaLimit = 30 * time.Second

// waitSeesOthers waits until p decodes camera video from, and receives
// audio packets from, each of the others.
func waitSeesOthers(ctx context.Context, p *participant, others ...*participant) []trackStat {
	p.t.Helper()
	want := map[string]bool{}
	for _, o := range others {
		want[o.Name] = true
	}
	return p.waitStats(ctx, mediaLimit, "video and audio from every other participant", func(stats []trackStat) bool {
		video, audio := map[string]bool{}, map[string]bool{}
		for _, s := range stats {
			if s.Kind == "video" && s.FramesDecoded > 0 && s.Source != "screen" {
				video[s.Name] = true
			}
			if s.Kind == "audio" && s.PacketsReceived > 0 {
				audio[s.Name] = true
			}
		}
		for n := range want {
			if !video[n] || !audio[n] {
				return false
			}
		}
		return true
	})
}

// flowingFrom keeps the stats of the tracks sent by the named senders.
func flowingFrom(stats []trackStat, names ...string) []trackStat {
	var out []trackStat
	for _, s := range stats {
		if slices.Contains(names, s.Name) && (s.FramesDecoded > 0 || (s.Kind == "audio" && s.PacketsReceived > 0)) {
			out = append(out, s)
		}
	}
	return out
}

func TestThreeWayCall(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-three"
	ada := join(t, ctx, srv, room, "Ada")
	bob := join(t, ctx, srv, room, "Bob")
	cy := join(t, ctx, srv, room, "Cy")
	all := []*participant{ada, bob, cy}
	others := func(p *participant) []*participant {
		var out []*participant
		for _, o := range all {
			if o != p {
				out = append(out, o)
			}
		}
		return out
	}

	t.Run("everyone sees and hears the two others", func(t *testing.T) {
		for _, p := range all {
			p.t = t
			rest := others(p)
			stats := waitSeesOthers(ctx, p, rest...)
			if n := len(videosFrom(stats, "camera")); n != 2 {
				t.Errorf("%s: %d camera videos decoding, want 2: %+v", p.Name, n, stats)
			}
			p.assertFlowing(ctx, flowingFrom(stats, rest[0].Name, rest[1].Name))
			p.waitTiles(ctx, 10*time.Second, "all three names", func(names []string) bool {
				return slices.Contains(names, p.Name+" (you)") &&
					slices.Contains(names, rest[0].Name) && slices.Contains(names, rest[1].Name)
			})
			p.shot(ctx, "grid")
		}
	})

	t.Run("a shared screen reaches the others", func(t *testing.T) {
		for _, p := range all {
			p.t = t
		}
		// A real click: getDisplayMedia needs a user gesture. Headless
		// Chromium with --use-fake-ui-for-media-stream and the fake device
		// flag answers it with a generated screen, no picker needed.
		if err := ada.B.Click(ctx, `[data-testid="screen-toggle"]`); err != nil {
			t.Fatal(err)
		}
		ada.waitState(ctx, 15*time.Second, "sharing", func(s clientState) bool { return s.Publisher == "connected" })
		for _, p := range []*participant{bob, cy} {
			stats := p.waitStats(ctx, mediaLimit, "Ada's screen decoding", func(stats []trackStat) bool {
				return len(videosFrom(stats, "screen")) == 1
			})
			screen := videosFrom(stats, "screen")
			if screen[0].Name != "Ada" {
				t.Errorf("%s: screen track is from %q, want Ada", p.Name, screen[0].Name)
			}
			if n := len(videosFrom(stats, "")); n != 3 {
				t.Errorf("%s: %d videos decoding with the screen, want 3", p.Name, n)
			}
			p.assertFlowing(ctx, screen)
			p.waitTiles(ctx, 10*time.Second, "Ada's screen tile", func(names []string) bool {
				return slices.Contains(names, "Ada (screen)")
			})
			p.shot(ctx, "screen")
		}
		if err := ada.B.Click(ctx, `[data-testid="screen-toggle"]`); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*participant{bob, cy} {
			p.waitTiles(ctx, 15*time.Second, "no screen tile after the share stopped", func(names []string) bool {
				return !slices.Contains(names, "Ada (screen)")
			})
			p.waitState(ctx, 15*time.Second, "Ada's screen track gone", func(s clientState) bool {
				for _, o := range s.Participants {
					for _, tr := range o.Tracks {
						if tr.Source == "screen" {
							return false
						}
					}
				}
				return true
			})
		}
	})

	t.Run("a leaver disappears from the other grids", func(t *testing.T) {
		for _, p := range all {
			p.t = t
		}
		cyState, err := cy.state(ctx)
		if err != nil || cyState.Self == nil {
			t.Fatalf("Cy state: %+v %v", cyState, err)
		}
		if err := cy.B.Click(ctx, `[data-testid="leave-button"]`); err != nil {
			t.Fatal(err)
		}
		ended, err := Eval[bool](ctx, cy.B, `!document.querySelector('[data-testid="ended"]').hidden`)
		if err != nil || !ended {
			t.Errorf("Cy: end screen not shown after leaving (err %v)", err)
		}
		for _, p := range []*participant{ada, bob} {
			p.waitState(ctx, 15*time.Second, "without Cy", func(s clientState) bool {
				for _, o := range s.Participants {
					if o.Sid == cyState.Self.Sid {
						return false
					}
				}
				for _, k := range s.RemoteTracks {
					if strings.HasPrefix(k, cyState.Self.Sid+"|") {
						return false
					}
				}
				return len(s.Participants) == 1
			})
			p.waitTiles(ctx, 10*time.Second, "no tile for Cy", func(names []string) bool {
				return !slices.Contains(names, "Cy") && len(names) == 2
			})
		}
		// The two who stayed still see each other.
		stats, err := ada.stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ada.assertFlowing(ctx, flowingFrom(stats, "Bob"))
		ada.shot(ctx, "after-leave")
	})

	t.Run("the leaver comes back with the rejoin button", func(t *testing.T) {
		for _, p := range all {
			p.t = t
		}
		if err := cy.B.Click(ctx, `[data-testid="rejoin-button"]`); err != nil {
			t.Fatal(err)
		}
		cy.waitState(ctx, 30*time.Second, "joined again", func(s clientState) bool {
			return s.Status == "connected" && s.Publisher == "connected"
		})
		waitSeesOthers(ctx, cy, ada, bob)
		waitSeesOthers(ctx, ada, bob, cy)
		bob.waitTiles(ctx, 10*time.Second, "Cy back in the grid", func(n []string) bool { return slices.Contains(n, "Cy") })
	})
}

func TestReconnectAfterConnectionCut(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-reconnect"
	ada := joinDebug(t, ctx, srv, room, "Ada")
	bob := join(t, ctx, srv, room, "Bob")
	waitSeesOthers(ctx, ada, bob)
	waitSeesOthers(ctx, bob, ada)

	// Cut Ada's WebSocket without a `leave`, as a dropped network path
	// would. The client must notice, rejoin with its newest token, and
	// get media flowing both ways again without anyone touching it.
	if _, err := Eval[any](ctx, ada.B, `window.parley.debug.dropConnection()`); err != nil {
		t.Fatal(err)
	}
	st := ada.waitState(ctx, 30*time.Second, "reconnected", func(s clientState) bool {
		return s.Reconnects >= 1 && s.Status == "connected" && s.Signaling == "open" && s.Publisher == "connected"
	})
	t.Logf("Ada reconnected as %s after %d attempt(s)", st.Self.Sid, st.Reconnects)
	stats := waitSeesOthers(ctx, ada, bob)
	ada.assertFlowing(ctx, flowingFrom(stats, "Bob"))

	// Bob must see the new Ada (new participant sid), and exactly one Ada.
	bobStats := bob.waitStats(ctx, mediaLimit, "video from the rejoined Ada", func(stats []trackStat) bool {
		return len(videosFrom(stats, "camera", st.Self.Sid)) == 1
	})
	bob.assertFlowing(ctx, videosFrom(bobStats, "camera", st.Self.Sid))
	bob.waitTiles(ctx, 15*time.Second, "exactly one tile for Ada", func(names []string) bool {
		n := 0
		for _, x := range names {
			if x == "Ada" {
				n++
			}
		}
		return n == 1 && len(names) == 2
	})
	ada.shot(ctx, "after-reconnect")
}

func TestReconnectAfterSilentNetworkDeath(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	// Ada reaches the server through a proxy that can silence her
	// signaling path; Bob connects directly. Media goes over UDP straight
	// to the SFU either way.
	proxy := startProxy(t, srv.Host)
	viaProxy := &server{URL: "http://" + proxy.Host, Host: proxy.Host}
	const room = "e2e-silent"
	ada := join(t, ctx, viaProxy, room, "Ada")
	bob := join(t, ctx, srv, room, "Bob")
	waitSeesOthers(ctx, ada, bob)
	waitSeesOthers(ctx, bob, ada)
	before, err := ada.state(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if n := proxy.SilenceExisting(); n == 0 {
		t.Fatal("no proxied connection to silence: Ada's WebSocket is not going through the proxy")
	}
	// No close reaches the client: only the heartbeat (15 s of silence)
	// can tell. Then it must rejoin on a fresh connection by itself.
	st := ada.waitState(ctx, 60*time.Second, "rejoined after the silent cut", func(s clientState) bool {
		return s.Reconnects >= 1 && s.Status == "connected" && s.Signaling == "open" &&
			s.Publisher == "connected" && s.Self != nil && s.Self.Sid != before.Self.Sid
	})
	stats := waitSeesOthers(ctx, ada, bob)
	ada.assertFlowing(ctx, flowingFrom(stats, "Bob"))
	bobStats := bob.waitStats(ctx, mediaLimit, "video from the rejoined Ada", func(stats []trackStat) bool {
		return len(videosFrom(stats, "camera", st.Self.Sid)) == 1
	})
	bob.assertFlowing(ctx, videosFrom(bobStats, "camera", st.Self.Sid))
	// The old Ada is gone from Bob's view (replaced or timed out).
	bob.waitState(ctx, 30*time.Second, "only the new Ada", func(s clientState) bool {
		return len(s.Participants) == 1 && s.Participants[0].Sid == st.Self.Sid
	})
}

func TestICERestartKeepsTheCall(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-ice-restart"
	ada := joinDebug(t, ctx, srv, room, "Ada")
	bob := join(t, ctx, srv, room, "Bob")
	waitSeesOthers(ctx, ada, bob)
	waitSeesOthers(ctx, bob, ada)
	before, err := ada.state(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The recovery for a broken PeerConnection while signaling is up:
	// a publisher offer with fresh ICE credentials plus `ice_restart` for
	// the subscriber. It must recover without a full rejoin.
	if _, err := Eval[any](ctx, ada.B, `window.parley.debug.restartIce()`); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	ada.waitState(ctx, 30*time.Second, "connected after the ICE restart", func(s clientState) bool {
		return s.IceRestarts == 1 && s.Status == "connected" && s.Publisher == "connected" && s.Subscriber == "connected"
	})
	t.Logf("Ada connected again %v after the ICE restart began", time.Since(restarted).Round(100*time.Millisecond))
	stats := waitSeesOthers(ctx, ada, bob)
	ada.assertFlowing(ctx, flowingFrom(stats, "Bob"))
	bobStats := waitSeesOthers(ctx, bob, ada)
	bob.assertFlowing(ctx, flowingFrom(bobStats, "Ada"))
	// The restart deadline (10 s) passes without a fallback rejoin.
	time.Sleep(11 * time.Second)
	after, err := ada.state(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Reconnects != 0 || after.Self == nil || after.Self.Sid != before.Self.Sid {
		t.Errorf("Ada rejoined instead of restarting ICE: reconnects %d, sid %v -> %v", after.Reconnects, before.Self, after.Self)
	}
	if after.Status != "connected" {
		t.Errorf("Ada status %q after the ICE restart, want connected", after.Status)
	}
}
