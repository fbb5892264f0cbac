package sfu_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
)

// TestReceiverCounts: the admin API's per-receiver counts show what the
// SFU sends a subscriber of a track, and stand still while the
// subscriber hides the track's tile, which is how an operator checks
// that a hidden tile costs nothing.
func TestReceiverCounts(t *testing.T) {
	synctest.Test(t, testReceiverCounts)
}

// receiverOf is a participant's entry in a track's receivers.
func receiverOf(t *testing.T, pub *sfu.Peer, sid, id string) sfu.ReceiverStats {
	t.Helper()
	for _, st := range pub.Stats() {
		if st.SID != sid {
			continue
		}
		for _, r := range st.Receivers {
			if r.ParticipantID == id {
				return r
			}
		}
	}
	t.Fatalf("%s is not a receiver of %s", id, sid)
	return sfu.ReceiverStats{}
}

func testReceiverCounts(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
	bob := env.newClient("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
	ada.AddSimulcastTrack("cam", "q", "h", "f")
	ada.NegotiatePublisher(false)
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID
	testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return bob.Received(sid) >= 100 })

	step(t, "the counts follow what bob receives", func() {
		got := bob.Received(sid)
		r := receiverOf(t, ada.Peer, sid, bob.ID)
		// Sent before received; no loss on this network.
		if int(r.PacketsSent) < got || r.BytesSent < r.PacketsSent {
			t.Fatalf("sent %d packets (%d bytes), bob received %d", r.PacketsSent, r.BytesSent, got)
		}
		if r.RTXPacketsSent != 0 || r.RTXBytesSent != 0 {
			t.Fatalf("%d packets on RTX without a loss", r.RTXPacketsSent)
		}
		if r.View != nil {
			t.Fatalf("view %+v before bob reported one", *r.View)
		}
	})

	step(t, "a hidden tile receives nothing", func() {
		if err := bob.Peer.SetView(sid, 0, 0, false); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "bob's layer paused", func() bool {
			l, err := bob.Peer.Layer(sid)
			return err == nil && l == -1
		})
		time.Sleep(200 * time.Millisecond) // what was queued is out
		before, got := receiverOf(t, ada.Peer, sid, bob.ID), bob.Received(sid)
		if v := before.View; v == nil || *v != (sfu.TileView{}) {
			t.Fatalf("view %+v, want bob's report: 0x0, not visible", v)
		}
		time.Sleep(2 * time.Second)
		after := receiverOf(t, ada.Peer, sid, bob.ID)
		if after.PacketsSent != before.PacketsSent || after.BytesSent != before.BytesSent {
			t.Fatalf("sent %d packets to a hidden tile in 2 s", after.PacketsSent-before.PacketsSent)
		}
		if n := bob.Received(sid); n != got {
			t.Fatalf("bob received %d packets while the counts stood still", n-got)
		}
	})

	step(t, "shown again, the counts move", func() {
		before := receiverOf(t, ada.Peer, sid, bob.ID).PacketsSent
		if err := bob.Peer.SetView(sid, 1280, 720, true); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "packets sent to bob again", func() bool {
			return receiverOf(t, ada.Peer, sid, bob.ID).PacketsSent > before+50
		})
		if v := receiverOf(t, ada.Peer, sid, bob.ID).View; v == nil || *v != (sfu.TileView{Width: 1280, Height: 720, Visible: true}) {
			t.Fatalf("view %+v, want bob's report: 1280x720, visible", v)
		}
	})
}
