package sfu_test

import (
	"slices"
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

// TestSimulcast: a pion publisher sends a VP8 track in three layers
// (q, h, f); a subscriber gets one continuous stream of the best layer,
// follows its target down and up at key frames, has NACKs answered from
// the layer the packet came from (none for a layer it has left), and
// falls back to the next layer
// within a second when the publisher stops the top one, also when the
// stopped layer still carries padding-only packets (Chrome's probes).
func TestSimulcast(t *testing.T) {
	synctest.Test(t, testSimulcast)
}

func testSimulcast(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
	bob := env.newClientWith("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true},
		sfutest.Options{KeepPackets: 1 << 20})
	cam := ada.AddSimulcastTrack("cam", "q", "h", "f")
	ada.NegotiatePublisher(false)

	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID
	if n := len(env.sfu.RoomStats("room")); n != 1 {
		t.Fatalf("%d tracks published for three layers", n)
	}

	// received returns bob's packets of the track in arrival order.
	received := func() []sfutest.SimPacket {
		rt := bob.RemoteTracks()[sid]
		out := make([]sfutest.SimPacket, 0, len(rt.Packets))
		for _, p := range rt.Packets {
			sp, ok := sfutest.ParseSimPacket(p)
			if !ok {
				t.Fatalf("unexpected packet %v", p)
			}
			out = append(out, sp)
		}
		return out
	}
	lastLayer := func() int {
		pkts := received()
		if len(pkts) == 0 {
			return -1
		}
		return pkts[len(pkts)-1].Layer
	}
	waitLayer := func(l int, limit time.Duration) time.Duration {
		start := time.Now()
		testkit.Eventually(t, limit, "bob receiving layer "+string(rune('0'+l)), func() bool {
			got, err := bob.Peer.Layer(sid)
			return err == nil && got == l && lastLayer() == l
		})
		return time.Since(start)
	}

	step(t, "the best layer by default", func() {
		waitLayer(2, 10*time.Second)
		time.Sleep(500 * time.Millisecond)
		checkContinuous(t, received())
	})

	// Loss on bob's leg: dropNext drops the next RTP packet to bob and
	// records its sequence number; holdRTCP keeps bob's RTCP (his NACKs)
	// from the SFU.
	var dropNext, holdRTCP atomic.Bool
	var dropped atomic.Int32
	env.vnet.Router.AddChunkFilter(func(ch vnet.Chunk) bool {
		b := ch.UserData()
		if len(b) < 12 || b[0]>>6 != 2 {
			return true
		}
		rtcpPT := b[1] >= 192 && b[1] <= 223
		src, dst := ch.SourceAddr().String(), ch.DestinationAddr().String()
		if holdRTCP.Load() && rtcpPT && strings.HasPrefix(src, bob.IP+":") {
			return false
		}
		if !rtcpPT && strings.HasPrefix(src, sfutest.SFUIP+":") && strings.HasPrefix(dst, bob.IP+":") &&
			dropNext.CompareAndSwap(true, false) {
			dropped.Store(int32(b[2])<<8 | int32(b[3]))
			return false
		}
		return true
	})
	drop := func() uint16 {
		dropped.Store(-1)
		dropNext.Store(true)
		testkit.Eventually(t, 5*time.Second, "a packet to bob dropped", func() bool { return dropped.Load() >= 0 })
		return uint16(dropped.Load())
	}
	layerOf := func(seq uint16) int {
		for _, p := range received() {
			if p.Seq == seq {
				return p.Layer
			}
		}
		return -1
	}

	var lostQ uint16 // never resent: a gap in bob's numbers from here on
	step(t, "down to the lowest layer and back up; NACKs answered from the layer forwarded", func() {
		if err := bob.Peer.SetLayer(sid, 0); err != nil {
			t.Fatal(err)
		}
		waitLayer(0, 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		// Lose a packet of layer q and hold bob's NACKs for it until
		// he is back on layer f: his decoder starts over at f's key
		// frame, so the q packet is not resent.
		holdRTCP.Store(true)
		lostQ = drop()
		if err := bob.Peer.SetLayer(sid, 7); err != nil { // beyond the top: the top
			t.Fatal(err)
		}
		waitLayer(2, 5*time.Second)
		holdRTCP.Store(false)
		testkit.Eventually(t, 5*time.Second, "the NACK for the q packet answered", func() bool {
			return counterValue(t, env, "parley_sfu_nack_answers_total", sfu.NACKLeftLayer) >= 1
		})
		time.Sleep(time.Second)
		if l := layerOf(lostQ); l >= 0 {
			t.Fatalf("seq %d of the layer bob left resent (from layer %d)", lostQ, l)
		}
		lost := drop()
		testkit.Eventually(t, 5*time.Second, "the f packet retransmitted", func() bool { return layerOf(lost) >= 0 })
		if l := layerOf(lost); l != 2 {
			t.Fatalf("seq %d resent from layer %d, want 2", lost, l)
		}
		time.Sleep(300 * time.Millisecond)
		checkContinuous(t, received(), lostQ)
		if cam.LayerPLIs(0) == 0 {
			t.Fatal("no key frame asked of layer q")
		}
		st := env.sfu.RoomStats("room")[0]
		if st.NACKsReceived < 2 || st.Retransmits < 1 {
			t.Fatalf("NACKs %d, retransmits %d", st.NACKsReceived, st.Retransmits)
		}
	})

	step(t, "top layer stops: fallback within a second", func() {
		cam.Pause(2, true)
		d := waitLayer(1, 5*time.Second)
		t.Logf("fell back to layer h %v after layer f stopped", d)
		if d > time.Second {
			t.Fatalf("fell back after %v", d)
		}
		cam.Pause(2, false)
		waitLayer(2, 5*time.Second)
		time.Sleep(200 * time.Millisecond)
		checkContinuous(t, received(), lostQ)
	})

	step(t, "a stopped layer that still carries padding counts as stopped", func() {
		cam.PadWhenPaused(2, true)
		cam.Pause(2, true)
		d := waitLayer(1, 5*time.Second)
		t.Logf("fell back to layer h %v after layer f went to padding only", d)
		if d > time.Second {
			t.Fatalf("fell back after %v", d)
		}
		cam.Pause(2, false)
		cam.PadWhenPaused(2, false)
		waitLayer(2, 5*time.Second)
		time.Sleep(200 * time.Millisecond)
		checkContinuous(t, received(), lostQ)
	})

	step(t, "every layer silent: the lowest layer's key frame asked for meanwhile, once", func() {
		before := cam.LayerPLIs(0)
		for l := range 3 {
			cam.Pause(l, true)
		}
		time.Sleep(1500 * time.Millisecond)
		if asked := cam.LayerPLIs(0) - before; asked != 1 {
			t.Fatalf("%d key frames of layer q asked for in 1.5 s of silence on every layer, want 1", asked)
		}
		time.Sleep(5 * time.Second)
		if asked := cam.LayerPLIs(0) - before; asked != 1 {
			t.Fatalf("%d key frames of layer q asked for in 6.5 s of silence on every layer, want 1", asked)
		}
		n := len(received())
		cam.Pause(0, false)
		testkit.Eventually(t, 2*time.Second, "bob receiving layer q again", func() bool {
			pkts := received()
			return len(pkts) > n && pkts[len(pkts)-1].Layer == 0
		})
		cam.Pause(1, false)
		cam.Pause(2, false)
		waitLayer(2, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
		checkContinuous(t, received(), lostQ)
	})

	step(t, "a single-layer publisher in the same room is forwarded as before", func() {
		cyd := env.newClient("room", "PA_cyd", sfu.JoinOptions{CanPublish: true})
		cyd.Publish()
		testkit.Eventually(t, 10*time.Second, "cyd's track published", func() bool { return len(cyd.Published()) == 1 })
		one := cyd.Published()[0].SID
		if err := bob.Peer.SetLayer(one, 0); err != nil { // nothing to choose: ignored
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "bob receiving cyd", func() bool { return bob.Received(one) >= 50 })
		rt := bob.RemoteTracks()[one]
		lo, hi := uint16(0xffff), uint16(0)
		for s := range rt.Seqs {
			lo, hi = min(lo, s), max(hi, s)
		}
		if int(hi-lo)+1 != len(rt.Seqs) {
			t.Fatalf("single-layer track: %d sequence numbers in %d..%d", len(rt.Seqs), lo, hi)
		}
		if l, err := bob.Peer.Layer(one); err != nil || l != 0 {
			t.Fatalf("Layer = %d, %v", l, err)
		}
	})
}

// checkContinuous checks what a subscriber of a simulcast track got: every
// sequence number from the first to the last (retransmissions aside),
// PictureIDs and TL0PICIDX advancing by one per packet (the publisher
// sends one-packet frames), timestamps rising, and layer changes only at
// key frames.
// Numbers in gone were lost on purpose and never resent: the pairs
// around them are not compared.
func checkContinuous(t *testing.T, pkts []sfutest.SimPacket, gone ...uint16) {
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
	}
	switches := 0
	for s := first; s != last; s++ {
		a, ok1 := bySeq[s]
		b, ok2 := bySeq[s+1]
		if !ok1 || !ok2 {
			if slices.Contains(gone, s) || slices.Contains(gone, s+1) {
				continue
			}
			t.Fatalf("sequence gap at %d-%d", s, s+1)
		}
		if b.PictureID != (a.PictureID+1)&0x7fff || b.TL0PICIDX != a.TL0PICIDX+1 {
			t.Fatalf("seq %d->%d: PictureID %d->%d, TL0PICIDX %d->%d", s, s+1, a.PictureID, b.PictureID,
				a.TL0PICIDX, b.TL0PICIDX)
		}
		if int32(b.Timestamp-a.Timestamp) <= 0 {
			t.Fatalf("seq %d->%d: timestamp %d->%d", s, s+1, a.Timestamp, b.Timestamp)
		}
		if a.Layer != b.Layer {
			switches++
			if !b.Keyframe {
				t.Fatalf("seq %d: switch from layer %d to %d not at a key frame", s+1, a.Layer, b.Layer)
			}
		}
	}
	t.Logf("%d packets, seq %d..%d, %d layer switches", len(pkts), first, last, switches)
}
