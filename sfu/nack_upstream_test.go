package sfu_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestSimulcastNACKUpstream: a packet of one simulcast layer lost on the
// publisher leg is NACKed on that layer's SSRC (each layer has its own
// numbering and its own NACK state) when a subscriber receives that
// layer, and the repair stops the NACKs; a loss on a layer no one
// receives is not NACKed.
//
// The publisher negotiates no rtx: pion's simulcast sender with rtx
// repairs on a stream that pion's receiver takes for a new stream of the
// layer's rid (a data race in RTPReceiver.receiveForRid, and the layer's
// first read stream is then never closed, so the read loop and
// Peer.Close hang). The hang is the same with pion's NACK generator (on
// 3738049, before nackgen): it is pion's sender and receiver, not who
// sends the NACKs.
func TestSimulcastNACKUpstream(t *testing.T) {
	synctest.Test(t, testSimulcastNACKUpstream)
}

func testSimulcastNACKUpstream(t *testing.T) {
	env := newTestEnv(t, tilesOnly())
	ada := env.newClientWith("room", "PA_ada", sfu.JoinOptions{CanPublish: true}, sfutest.Options{NoRTX: true})
	bob := env.newClient("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
	st := ada.AddSimulcastTrack("cam", "q", "h", "f")
	ada.NegotiatePublisher(false)
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID
	testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return bob.Received(sid) >= 100 })
	if n := ada.Peer.Stats()[0].NACKsSent; n != 0 {
		t.Fatalf("%d NACKs sent upstream before any loss", n)
	}
	watched, err := bob.Peer.Layer(sid)
	if err != nil {
		t.Fatal(err)
	}
	encodings := st.Sender.GetParameters().Encodings
	layerSSRC := func(l int) uint32 { return uint32(encodings[l].SSRC) }

	// pion's VP8 payload type on ada's publisher connection is 96; the
	// dropper takes the next packet of one layer.
	drop := func(l int) uint16 {
		t.Helper()
		d := &dropper{pt: 96, ssrc: layerSSRC(l), from: ada.IP, to: map[string]bool{sfutest.SFUIP: true}, dropped: map[string]uint16{}}
		env.vnet.Router.AddChunkFilter(d.filter)
		testkit.Eventually(t, 5*time.Second, fmt.Sprintf("a packet of ada's layer %d dropped", l), func() bool {
			_, ok := d.seq(sfutest.SFUIP)
			return ok
		})
		seq, _ := d.seq(sfutest.SFUIP)
		return seq
	}

	// A layer nobody receives is not repaired: its retransmissions
	// would only take room on the publisher's uplink.
	unwatched := (watched + 1) % len(encodings)
	seq := drop(unwatched)
	time.Sleep(2 * time.Second)
	if n := ada.Peer.Stats()[0].NACKsSent; n != 0 {
		t.Fatalf("%d NACKs sent upstream for packet %d of layer %d, which no one receives (bob receives %d)", n, seq, unwatched, watched)
	}

	seq = drop(watched)
	testkit.Eventually(t, 2*time.Second, "the lost packet NACKed", func() bool {
		return ada.Peer.Stats()[0].NACKsSent >= 1
	})
	time.Sleep(3 * time.Second)
	// Counted by the NACK's media SSRC: a NACK on another SSRC than the
	// layer's would not count for the track.
	if n := ada.Peer.Stats()[0].NACKsSent; n != 1 {
		t.Fatalf("%d NACKs sent upstream for packet %d of the layer bob receives, want 1 (the repair stops them)", n, seq)
	}
}
