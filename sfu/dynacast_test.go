package sfu_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestDynacast: the publisher of a simulcast camera is asked to pause
// the layers no subscriber aims at (a thumbnail needs only q), a few
// seconds after the need went down, and to resume them at once when a
// tile grows; resumed layers that take a moment to arrive are kept, but
// a resumed layer that never arrives is not asked for again every few
// seconds; layers that stop arriving are paused without the hold.
func TestDynacast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ada, bob, cam, sid := dynacastCall(t)
		if got := ada.LayerRequests(); len(got) != 0 {
			t.Fatalf("requests while the top layer is wanted: %+v", got)
		}
		last := func() []string {
			r := ada.LayerRequests()
			if len(r) == 0 {
				return nil
			}
			if r[len(r)-1].TrackSID != sid {
				t.Fatalf("request for track %s, want %s", r[len(r)-1].TrackSID, sid)
			}
			return r[len(r)-1].RIDs
		}
		// pause applies a request as the web client does.
		pause := func(rids []string) {
			for i, rid := range []string{"q", "h", "f"} {
				cam.Pause(i, !slices.Contains(rids, rid))
			}
		}

		step(t, "a thumbnail: h and f paused after the hold", func() {
			start := time.Now()
			if err := bob.Peer.SetView(sid, 160, 90, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "only q asked for", func() bool { return slices.Equal(last(), []string{"q"}) })
			if d := time.Since(start); d < 3*time.Second || d > 5*time.Second {
				t.Errorf("paused after %v, want the 3 s hold (and at most one selection round more)", d)
			}
			pause(last())
			time.Sleep(2 * time.Second)
			if l, _ := bob.Peer.Layer(sid); l != 0 {
				t.Errorf("bob on layer %d, want 0", l)
			}
		})

		step(t, "the tile grows: all layers asked for at once, bob back on f", func() {
			n := len(ada.LayerRequests())
			if err := bob.Peer.SetView(sid, 1280, 720, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, time.Second, "q, h and f asked for", func() bool {
				return len(ada.LayerRequests()) > n && slices.Equal(last(), []string{"q", "h", "f"})
			})
			pause(last())
			testkit.Eventually(t, 5*time.Second, "bob on f", func() bool {
				l, err := bob.Peer.Layer(sid)
				return err == nil && l == 2
			})
		})

		step(t, "resumed layers that come a little late are kept", func() {
			if err := bob.Peer.SetView(sid, 160, 90, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "only q asked for", func() bool { return slices.Equal(last(), []string{"q"}) })
			pause(last())
			time.Sleep(time.Second)
			n := len(ada.LayerRequests())
			if err := bob.Peer.SetView(sid, 1280, 720, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, time.Second, "all asked for", func() bool { return slices.Equal(last(), []string{"q", "h", "f"}) })
			// The browser brings them back 1.5 s later (a key frame, its
			// own estimate): more than a selection round, within
			// dynacastArrive.
			time.Sleep(1500 * time.Millisecond)
			pause(last())
			testkit.Eventually(t, 5*time.Second, "bob on f", func() bool {
				l, err := bob.Peer.Layer(sid)
				return err == nil && l == 2
			})
			time.Sleep(5 * time.Second)
			if got := ada.LayerRequests()[n:]; len(got) != 1 {
				t.Errorf("requests after the tile grew: %+v, want the one resuming every layer", got)
			}
		})

		step(t, "layers that stop arriving are paused without the hold", func() {
			// The publisher's uplink shrinks: h and f stop coming, though
			// the publisher was not asked to pause them.
			n := len(ada.LayerRequests())
			start := time.Now()
			cam.Pause(1, true)
			cam.Pause(2, true)
			testkit.Eventually(t, 5*time.Second, "only q asked for", func() bool {
				return len(ada.LayerRequests()) > n && slices.Equal(ada.LayerRequests()[n].RIDs, []string{"q"})
			})
			// A second of silence, then a selection round or two: not
			// the silence and the 3 s hold.
			if d := time.Since(start); d >= 2500*time.Millisecond {
				t.Errorf("h and f paused %v after they stopped, want within 2.5 s", d)
			}
			// Not asked for again at once (the uplink that dropped them
			// would drop them again; see dynacastSilentRetry), though
			// Bob's estimate and tile still want f.
			paused := time.Now()
			time.Sleep(8 * time.Second)
			if got := ada.LayerRequests()[n+1:]; len(got) != 0 {
				t.Errorf("silent layers asked for again within 8 s of their pause: %+v", got)
			}
			if l, _ := bob.Peer.Layer(sid); l != 0 {
				t.Errorf("bob on layer %d while h and f are paused, want 0", l)
			}
			// Then asked for again, and this time they come.
			testkit.Eventually(t, 10*time.Second, "all asked for again", func() bool { return slices.Equal(last(), []string{"q", "h", "f"}) })
			if d := time.Since(paused); d < 9*time.Second {
				t.Errorf("asked for again %v after the pause, want about 10 s", d)
			}
			pause(last())
			testkit.Eventually(t, 5*time.Second, "bob on f", func() bool {
				l, err := bob.Peer.Layer(sid)
				return err == nil && l == 2
			})
		})

		step(t, "a resumed layer that never comes is not asked for again soon", func() {
			if err := bob.Peer.SetView(sid, 160, 90, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "only q asked for", func() bool { return slices.Equal(last(), []string{"q"}) })
			pause(last())
			time.Sleep(time.Second)
			cam.Pause(2, true) // the uplink cannot carry f
			cam.Pause(1, true)
			if err := bob.Peer.SetView(sid, 1280, 720, true); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, time.Second, "all asked for", func() bool { return slices.Equal(last(), []string{"q", "h", "f"}) })
			// Nothing above q arrives: the need falls back to q, the
			// layers are paused again after the hold, and not asked
			// for during the following 20 s.
			testkit.Eventually(t, 10*time.Second, "q alone again", func() bool { return slices.Equal(last(), []string{"q"}) })
			n := len(ada.LayerRequests())
			time.Sleep(20 * time.Second)
			if got := ada.LayerRequests()[n:]; len(got) != 0 {
				t.Errorf("asked again for layers that did not come: %+v", got)
			}
			if l, _ := bob.Peer.Layer(sid); l != 0 {
				t.Errorf("bob on layer %d, want 0", l)
			}
		})
	})
}

// TestDynacastWaitsForALayerNotStartedYet: a publisher that has not
// started its top layer yet (a browser starts it once its own send
// estimate carries it, seconds after the track) is not told to pause it
// while a subscriber's tile wants it; the subscriber gets the best layer
// that arrives meanwhile and moves up once the top one comes.
func TestDynacastWaitsForALayerNotStartedYet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, tilesOnly())
		ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
		bob := env.newClientWith("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true}, sfutest.Options{})
		cam := ada.AddSimulcastTrack("cam", "q", "h", "f")
		cam.Pause(2, true) // f not started
		ada.NegotiatePublisher(false)
		testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
		sid := ada.Published()[0].SID
		testkit.Eventually(t, 10*time.Second, "bob receiving h", func() bool {
			l, err := bob.Peer.Layer(sid)
			return err == nil && l == 1
		})
		time.Sleep(10 * time.Second) // well past dynacast's hold
		if got := ada.LayerRequests(); len(got) != 0 {
			t.Fatalf("layers paused while bob's tile wants f, not started yet: %+v", got)
		}
		cam.Pause(2, false)
		testkit.Eventually(t, 5*time.Second, "bob on f once it comes", func() bool {
			l, err := bob.Peer.Layer(sid)
			return err == nil && l == 2
		})
	})
}

// TestDynacastSilentRetryBacksOff: layers that go silent again soon
// after dynacast asked for them back (an uplink that still cannot carry
// them) are asked for again after twice the wait; once they have kept
// arriving for a while the wait is the first one again.
func TestDynacastSilentRetryBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ada, bob, cam, sid := dynacastCall(t)
		onF := func() bool { l, err := bob.Peer.Layer(sid); return err == nil && l == 2 }
		// stopAndWait: h and f stop arriving; dynacast pauses them, and
		// the time until it asks for them again is returned (they then
		// come, and Bob is back on f).
		stopAndWait := func(what string) time.Duration {
			t.Helper()
			n := len(ada.LayerRequests())
			cam.Pause(1, true)
			cam.Pause(2, true)
			testkit.Eventually(t, 5*time.Second, what+": only q asked for", func() bool {
				r := ada.LayerRequests()
				return len(r) > n && slices.Equal(r[len(r)-1].RIDs, []string{"q"})
			})
			paused := time.Now()
			testkit.Eventually(t, 40*time.Second, what+": all asked for again", func() bool {
				r := ada.LayerRequests()
				return slices.Equal(r[len(r)-1].RIDs, []string{"q", "h", "f"})
			})
			wait := time.Since(paused)
			cam.Pause(1, false)
			cam.Pause(2, false)
			testkit.Eventually(t, 5*time.Second, what+": bob on f", onF)
			return wait
		}
		near := func(got, want time.Duration) bool { return got >= want-time.Second && got <= want+time.Second }
		if w := stopAndWait("first stop"); !near(w, 10*time.Second) {
			t.Errorf("first stop: asked for again after %v, want about 10 s", w)
		}
		time.Sleep(2 * time.Second)
		if w := stopAndWait("stopped again 2 s after coming back"); !near(w, 20*time.Second) {
			t.Errorf("stopped again soon after the retry: asked for again after %v, want about 20 s", w)
		}
		time.Sleep(25 * time.Second) // arriving for longer than dynacastSteady
		if w := stopAndWait("stopped after 25 s of arriving"); !near(w, 10*time.Second) {
			t.Errorf("stopped after arriving steadily: asked for again after %v, want about 10 s", w)
		}
	})
}

// dynacastCall is Ada publishing a simulcast camera (q, h, f) and Bob
// receiving its top layer; it returns them, the camera and its track
// SID.
func dynacastCall(t *testing.T) (ada, bob *sfutest.Client, cam *sfutest.SimulcastTrack, sid string) {
	t.Helper()
	env := newTestEnv(t, tilesOnly())
	ada = env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
	bob = env.newClientWith("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true}, sfutest.Options{})
	cam = ada.AddSimulcastTrack("cam", "q", "h", "f")
	ada.NegotiatePublisher(false)
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid = ada.Published()[0].SID
	testkit.Eventually(t, 10*time.Second, "bob receiving f", func() bool {
		l, err := bob.Peer.Layer(sid)
		return err == nil && l == 2
	})
	return ada, bob, cam, sid
}
