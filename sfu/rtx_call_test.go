package sfu_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestRTXCall: a call on the virtual network with one packet lost on
// each leg. The publisher (pion, rtx negotiated) repairs its loss on its
// RTX stream, and the repaired packet reaches both subscribers; the SFU
// repairs a subscriber's loss on that subscriber's RTX stream when it
// negotiated rtx (bob), on the media SSRC when it did not (cyd).
func TestRTXCall(t *testing.T) {
	for _, bwe := range []bool{false, true} {
		// With bandwidth estimation, every packet also passes the
		// congestion controller, which must know the RTX SSRC.
		t.Run(fmt.Sprintf("bandwidth_estimation=%v", bwe), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRTXCall(t, bwe) })
		})
	}
}

// dropper drops, once per destination, the next RTP packet with the given
// payload type from one vnet address prefix to another, and remembers
// its sequence number (SRTP leaves the header in clear).
type dropper struct {
	mu      sync.Mutex
	pt      byte
	ssrc    uint32 // 0: any
	from    string
	to      map[string]bool // destination IP prefix -> armed
	dropped map[string]uint16
}

func (d *dropper) filter(ch vnet.Chunk) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !strings.HasPrefix(ch.SourceAddr().String(), d.from+":") {
		return true
	}
	b := ch.UserData()
	if len(b) < 12 || b[0]>>6 != 2 || b[1]&0x7f != d.pt {
		return true
	}
	if d.ssrc != 0 && binary.BigEndian.Uint32(b[8:12]) != d.ssrc {
		return true
	}
	for ip, armed := range d.to {
		if armed && strings.HasPrefix(ch.DestinationAddr().String(), ip+":") {
			d.to[ip] = false
			d.dropped[ip] = uint16(b[2])<<8 | uint16(b[3])
			return false
		}
	}
	return true
}

func (d *dropper) seq(ip string) (uint16, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.dropped[ip]
	return s, ok
}

func testRTXCall(t *testing.T, bwe bool) {
	cfg := sfu.DefaultConfig()
	cfg.BandwidthEstimation = bwe
	env := newTestEnv(t, cfg)
	sub := sfu.JoinOptions{CanSubscribe: true}
	bob := env.newClient("r", "PA_bob", sub)
	cyd := env.newClientWith("r", "PA_cyd", sub, sfutest.Options{NoRTX: true})
	ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
	ada.Publish()
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID
	for _, c := range []*sfutest.Client{bob, cyd} {
		testkit.Eventually(t, 10*time.Second, c.ID+" receiving", func() bool { return c.Received(sid) >= 50 })
	}
	if got := bob.RemoteTracks()[sid]; got.RTX != 0 {
		t.Fatalf("bob got %d packets on RTX before any loss", got.RTX)
	}

	step(t, "subscriber leg: RTX where negotiated, media SSRC where not", func() {
		// VP8 is payload type 96 on both subscriber connections (the
		// SFU's offer), rtx 97: only a media packet is dropped.
		d := &dropper{pt: 96, from: sfutest.SFUIP, to: map[string]bool{bob.IP: true, cyd.IP: true},
			dropped: map[string]uint16{}}
		env.vnet.Router.AddChunkFilter(d.filter)
		for _, c := range []*sfutest.Client{bob, cyd} {
			testkit.Eventually(t, 5*time.Second, "a packet to "+c.ID+" dropped", func() bool {
				_, ok := d.seq(c.IP)
				return ok
			})
			seq, _ := d.seq(c.IP)
			testkit.Eventually(t, 5*time.Second, c.ID+" receives the retransmission", func() bool {
				return c.RemoteTracks()[sid].Seqs[seq] == 1
			})
		}
		if n := bob.RemoteTracks()[sid].RTX; n < 1 {
			t.Fatalf("bob (rtx negotiated) got %d packets on its RTX stream, want the retransmission", n)
		}
		if n := cyd.RemoteTracks()[sid].RTX; n != 0 {
			t.Fatalf("cyd (no rtx) got %d packets on an RTX stream", n)
		}
		// The admin API's receiver counts say the same.
		for _, r := range ada.Peer.Stats()[0].Receivers {
			rtx := r.ParticipantID == bob.ID
			if (r.RTXPacketsSent > 0) != rtx || (r.RTXBytesSent > 0) != rtx || r.PacketsSent < 50 {
				t.Errorf("%s: %d packets sent, %d on RTX (%d bytes)", r.ParticipantID, r.PacketsSent,
					r.RTXPacketsSent, r.RTXBytesSent)
			}
		}
		st := ada.Peer.Stats()[0]
		if st.RTXSent < 1 || st.Retransmits < 2 {
			t.Fatalf("retransmits %d, on RTX %d: want 2 and at least 1", st.Retransmits, st.RTXSent)
		}
		if n := counterValue(t, env, "parley_sfu_rtx_packets_total", "out"); n < 1 {
			t.Fatalf("rtx out = %v", n)
		}
	})

	step(t, "publisher leg: the publisher's RTX fills the gap for every subscriber", func() {
		// pion's VP8 payload type on ada's publisher connection is 96.
		d := &dropper{pt: 96, from: ada.IP, to: map[string]bool{sfutest.SFUIP: true}, dropped: map[string]uint16{}}
		env.vnet.Router.AddChunkFilter(d.filter)
		testkit.Eventually(t, 5*time.Second, "a packet from ada dropped", func() bool {
			_, ok := d.seq(sfutest.SFUIP)
			return ok
		})
		// ada numbers its packets from 0 and writes the number in the
		// payload, which subscribers see in Orig.
		orig, _ := d.seq(sfutest.SFUIP)
		// At least once, not exactly: each subscriber also NACKs the gap
		// it sees, and a NACK that crosses the repaired packet on its way
		// (sent before it arrived, answered after the SFU cached it) is
		// answered with a second copy, as any RTP sender would. Which of
		// the two events comes first at the same virtual instant is up to
		// the scheduler, so a poll for exactly one copy can miss it.
		for _, c := range []*sfutest.Client{bob, cyd} {
			testkit.Eventually(t, 5*time.Second, c.ID+" receives the repaired packet", func() bool {
				return c.RemoteTracks()[sid].Orig[orig] >= 1
			})
		}
		st := ada.Peer.Stats()[0]
		if st.RTXReceived < 1 {
			t.Fatalf("RTX received from the publisher %d, want at least 1", st.RTXReceived)
		}
		if n := counterValue(t, env, "parley_sfu_rtx_packets_total", "in"); n < 1 {
			t.Fatalf("rtx in = %v", n)
		}
		// Let the NACK generator run its course, then see how often the
		// publisher was asked for the packet: once, as the repair (back
		// within a virtual instant, long before the next 100 ms tick)
		// stops the NACKs. pion's generator, which never saw repairs
		// that came on RTX, asked until its cap or window ran out.
		time.Sleep(3 * time.Second)
		if n := ada.Nacked(orig); n != 1 {
			t.Fatalf("ada was NACKed %d times for %d, want 1 (the repair stops the NACKs)", n, orig)
		}
		if st := ada.Peer.Stats()[0]; st.NACKsSent < 1 {
			t.Fatalf("NACKs sent upstream %d, want the one for %d counted", st.NACKsSent, orig)
		}
		// The SFU forwarded the repair itself, once, whether ada answered
		// one NACK or both: on bob's media SSRC (answers to bob's own
		// NACKs go on its RTX stream) there is exactly one copy.
		if tr := bob.RemoteTracks()[sid]; tr.Orig[orig]-tr.RTXOrig[orig] != 1 {
			t.Fatalf("bob got %d copies of the repaired packet on the media SSRC (%d on RTX), want 1",
				tr.Orig[orig]-tr.RTXOrig[orig], tr.RTXOrig[orig])
		}
		t.Logf("publisher NACKed %d times for the lost packet; %d RTX packets received", ada.Nacked(orig),
			ada.Peer.Stats()[0].RTXReceived)
	})
}
