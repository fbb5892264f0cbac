package sfu_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestSimulcastTemporalLayers: a publisher's simulcast layers carry VP8
// temporal layers (libwebrtc's L1T3 pattern). A subscriber held to the
// base temporal layer gets a quarter of the frames as one continuous
// stream (no sequence gap, PictureIDs one apart, TL0PICIDX one up per
// frame), a packet it loses is resent under the same number, the admin
// stats show its temporal layer, and back at all layers it gets every
// frame again.
func TestSimulcastTemporalLayers(t *testing.T) {
	synctest.Test(t, testSimulcastTemporal)
}

func testSimulcastTemporal(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
	bob := env.newClientWith("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true},
		sfutest.Options{KeepPackets: 1 << 20})
	cam := ada.AddSimulcastTrack("cam", "q", "h", "f")
	cam.SetTemporalLayers(true)
	ada.NegotiatePublisher(false)
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID

	received := func() []sfutest.SimPacket {
		rt := bob.RemoteTracks()[sid]
		out := make([]sfutest.SimPacket, 0, len(rt.Packets))
		for _, p := range rt.Packets {
			sp, ok := sfutest.ParseSimPacket(p)
			if !ok || !sp.HasTID {
				t.Fatalf("unexpected packet %v", p)
			}
			out = append(out, sp)
		}
		return out
	}
	if err := bob.Peer.SetLayer(sid, 0); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "bob on layer q", func() bool {
		l, err := bob.Peer.Layer(sid)
		return err == nil && l == 0 && len(received()) > 0 && received()[len(received())-1].Layer == 0
	})

	// Loss on bob's leg: dropNext drops the next RTP packet to bob.
	var dropNext atomic.Bool
	var dropped atomic.Int32
	env.vnet.Router.AddChunkFilter(func(ch vnet.Chunk) bool {
		b := ch.UserData()
		if len(b) < 12 || b[0]>>6 != 2 || b[1] >= 192 && b[1] <= 223 {
			return true
		}
		if strings.HasPrefix(ch.SourceAddr().String(), sfutest.SFUIP+":") &&
			strings.HasPrefix(ch.DestinationAddr().String(), bob.IP+":") && dropNext.CompareAndSwap(true, false) {
			dropped.Store(int32(b[2])<<8 | int32(b[3]))
			return false
		}
		return true
	})

	var from int
	step(t, "base temporal layer only", func() {
		if err := sfu.SetTemporal(bob.Peer, sid, 0); err != nil {
			t.Fatal(err)
		}
		// Down one temporal layer at once, the next 2 s later
		// (simulcast.TemporalStepDown).
		time.Sleep(2200 * time.Millisecond)
		from = len(received())
		time.Sleep(300 * time.Millisecond)
		dropped.Store(-1)
		dropNext.Store(true)
		testkit.Eventually(t, 5*time.Second, "a packet to bob dropped", func() bool { return dropped.Load() >= 0 })
		lost := uint16(dropped.Load())
		testkit.Eventually(t, 5*time.Second, "the lost packet resent", func() bool {
			for _, p := range received()[from:] {
				if p.Seq == lost {
					return true
				}
			}
			return false
		})
		time.Sleep(500 * time.Millisecond)
		pkts := received()[from:]
		for _, p := range pkts {
			if p.TID != 0 {
				t.Fatalf("TID %d frame forwarded at temporal layer 0", p.TID)
			}
		}
		checkTemporalStream(t, pkts)
		// One frame in 10 ms is sent at all layers, a quarter of
		// them at TID 0: about 25 a second.
		if n := len(pkts); n < 20 || n > 40 {
			t.Errorf("%d packets in about a second at TID 0, want about 25", n)
		}
		st := env.sfu.RoomStats("room")[0]
		if len(st.Receivers) != 1 || st.Receivers[0].Temporal != 0 || st.Receivers[0].Layer != "q" {
			t.Errorf("receivers %+v, want bob on q at temporal layer 0", st.Receivers)
		}
	})

	step(t, "back to every frame", func() {
		if err := sfu.SetTemporal(bob.Peer, sid, 3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		pkts := received()[from:]
		checkTemporalStream(t, pkts)
		tids := map[uint8]int{}
		for _, p := range pkts[len(pkts)-40:] {
			tids[p.TID]++
		}
		if tids[1] == 0 || tids[2] == 0 {
			t.Errorf("TIDs of the last 40 packets: %v, want all layers", tids)
		}
		if st := env.sfu.RoomStats("room")[0]; st.Receivers[0].Temporal != -1 {
			t.Errorf("receivers %+v, want temporal -1 (all)", st.Receivers)
		}
	})
}

// checkTemporalStream asserts what the subscriber's VP8 reference finder
// relies on across frames left out: one-packet frames numbered without a
// gap, PictureIDs one apart, TL0PICIDX one up at each base frame.
func checkTemporalStream(t *testing.T, pkts []sfutest.SimPacket) {
	t.Helper()
	if len(pkts) < 10 {
		t.Fatalf("only %d packets", len(pkts))
	}
	bySeq := map[uint16]sfutest.SimPacket{}
	first, last := pkts[0].Seq, pkts[0].Seq
	for _, p := range pkts {
		bySeq[p.Seq] = p
		if int16(p.Seq-last) > 0 {
			last = p.Seq
		}
		if int16(p.Seq-first) < 0 {
			first = p.Seq
		}
	}
	for s := first; s != last; s++ {
		a, ok1 := bySeq[s]
		b, ok2 := bySeq[s+1]
		if !ok1 || !ok2 {
			t.Fatalf("sequence gap at %d-%d", s, s+1)
		}
		tl0 := a.TL0PICIDX
		if b.TID == 0 {
			tl0++
		}
		if b.PictureID != (a.PictureID+1)&0x7fff || b.TL0PICIDX != tl0 {
			t.Fatalf("seq %d->%d (TID %d->%d): PictureID %d->%d, TL0PICIDX %d->%d", s, s+1, a.TID, b.TID,
				a.PictureID, b.PictureID, a.TL0PICIDX, b.TL0PICIDX)
		}
	}
}

// TestTemporalLayersUnderCap: bandwidth estimation on, a subscriber's
// downlink capped below the lowest layer (about 130 kbit/s here, with
// temporal layers): the selection lowers its frame rate (a temporal
// layer below all, shown in the admin stats) instead of leaving the
// link overflowing, and gives every frame back once the cap is lifted.
func TestTemporalLayersUnderCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCapClients(t, sfutest.Options{LayerPayloads: probeLayerPayloads})
		cam := c.ada.AddSimulcastTrack("cam", "q", "h", "f")
		cam.SetTemporalLayers(true)
		c.ada.NegotiatePublisher(false)
		testkit.Eventually(t, 10*time.Second, "camera published", func() bool { return len(c.ada.Published()) == 1 })
		testkit.Eventually(t, 20*time.Second, "bob at the top layer, every frame", func() bool {
			r := c.receiver()
			return r.Layer == "f" && r.Temporal == -1
		})

		c.setCap(100_000)
		capped := time.Now()
		testkit.Eventually(t, 15*time.Second, "bob at the low layer, fewer frames", func() bool {
			r := c.receiver()
			return r.Layer == "q" && r.Temporal >= 0
		})
		t.Logf("low layer at temporal layer %d %.1fs after the cap", c.receiver().Temporal, time.Since(capped).Seconds())

		c.setCap(uncapped)
		lifted := time.Now()
		testkit.Eventually(t, 30*time.Second, "every frame again after the cap", func() bool { return c.receiver().Temporal == -1 })
		t.Logf("every frame again %.1fs after the cap was lifted", time.Since(lifted).Seconds())
	})
}
