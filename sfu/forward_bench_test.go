package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu/internal/nackgen"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

type nopWriter struct{}

func (nopWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) { return len(p), nil }
func (nopWriter) Write(b []byte) (int, error)                   { return len(b), nil }

// BenchmarkForward measures the SFU's own per-packet cost: parse, stats,
// cache, key-frame check, fan-out decision, queueing, cache copy-out and
// header rewrite for every subscriber, the NACK generator's record of
// the packet (done as it is read) and the per-receiver sent counts. SRTP and the socket write (pion's
// and the kernel's cost) are replaced by a no-op writer. Reported
// ns/op is per incoming packet; ns/fwd is per packet per subscriber.
func BenchmarkForward(b *testing.B) {
	for _, subs := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			cfg := DefaultConfig()
			h := newHarness(b, cfg)
			var queues []*sendQueue
			for i := range subs {
				d := h.subscribe(b, nil, uint32(i+1), false)
				d.bind.Store(&binding{ssrc: uint32(i + 1), pt: 100, writer: d.countedWriter(nopWriter{}, 0)})
				queues = append(queues, d.q)
			}
			pkts := make([][]byte, 256)
			for i := range pkts {
				pkts[i] = vp8Packet(uint16(i), i == 0)
			}
			buf := make([]byte, 1500)
			var hdr, whdr rtp.Header
			var nack nackgen.Tracker
			now := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(pkts[0])))
			i := 0
			for b.Loop() {
				p := pkts[i%len(pkts)]
				seq := uint16(i)
				p[2], p[3] = byte(seq>>8), byte(seq)
				feedNACKs(&nack, p, now)
				h.t.handlePacket(p, &hdr, now)
				for _, q := range queues {
					select {
					case op := <-q.ch:
						q.send(op, buf, &whdr)
					default:
						b.Fatal("packet not queued")
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/fwd")
		})
	}
}

// BenchmarkForwardSimulcast is BenchmarkForward for a track published in
// three layers: each op is one packet of every layer, of which every
// subscriber's switcher forwards the top one, rewritten (sequence number,
// timestamp, VP8 PictureID and TL0PICIDX). ns/fwd is per forwarded packet
// per subscriber, and includes the two packets not forwarded.
func BenchmarkForwardSimulcast(b *testing.B) {
	for _, subs := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			h := newSimulcastHarness(b, DefaultConfig())
			var queues []*sendQueue
			for i := range subs {
				d := h.subscribe(b, nil, uint32(i+1), false)
				d.bind.Store(&binding{ssrc: uint32(i + 1), pt: 100, writer: d.countedWriter(nopWriter{}, 0)})
				queues = append(queues, d.q)
			}
			const layers = 3
			pkts := make([][]byte, 256*layers)
			for i := range pkts {
				pkts[i] = vp8LayerPacket(i%layers, uint16(i/layers), i < layers)
			}
			buf := make([]byte, 1500)
			var hdr, whdr rtp.Header
			var nacks [layers]nackgen.Tracker
			now := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(pkts[0])))
			i := 0
			for b.Loop() {
				seq := uint16(i)
				for l := range layers {
					p := pkts[(i%256)*layers+l]
					p[2], p[3] = byte(seq>>8), byte(seq)
					feedNACKs(&nacks[l], p, now)
					h.t.handleLayerPacket(simulcast.Layer(l), p, &hdr, now)
				}
				for _, q := range queues {
					select {
					case op := <-q.ch:
						q.send(op, buf, &whdr)
					default:
						b.Fatal("packet not queued")
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/fwd")
		})
	}
}

// BenchmarkRetransmit measures answering one NACKed sequence number
// from the cache: the NACK mapped back to the publisher's numbering,
// passed by the throttle (rtxthrottle.go), queued, copied out and written, on the media SSRC (no rtx) or wrapped
// for the subscriber's RTX stream.
func BenchmarkRetransmit(b *testing.B) {
	for _, rtx := range []bool{false, true} {
		b.Run(fmt.Sprintf("rtx=%v", rtx), func(b *testing.B) {
			h := newHarness(b, DefaultConfig())
			d := h.subscribe(b, nil, 1, false)
			bind := &binding{ssrc: 1, pt: 96, writer: nopWriter{}}
			if rtx {
				bind.rtxSSRC, bind.rtxPT = 2, 97
			}
			d.bind.Store(bind)
			var hdr rtp.Header
			for i := range 256 {
				h.t.handlePacket(vp8Packet(uint16(i), i == 0), &hdr, time.Now())
				op := <-d.q.ch
				d.q.send(op, make([]byte, 1500), &hdr)
			}
			nack := []rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{}}}}
			pair := &nack[0].(*rtcp.TransportLayerNack).Nacks[0]
			buf := make([]byte, 1500)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				pair.PacketID = uint16(i % 256)
				// Each NACK as the first for its packet, with the budget
				// full: the throttle's checks are measured, never refuse.
				if d.rtxHist != nil {
					d.rtxHist.slots[pair.PacketID%seqMapSize] = 0
				}
				d.sub.rtxBudget.last = time.Time{}
				d.handleRTCP(nack)
				select {
				case op := <-d.q.ch:
					d.q.send(op, buf, &hdr)
				default:
					b.Fatal("retransmission not queued")
				}
				i++
			}
			if st := h.t.stats(); st.Retransmits < uint64(b.N) || rtx != (st.RTXSent == st.Retransmits) {
				b.Fatalf("retransmits %d, on RTX %d, after %d NACKs", st.Retransmits, st.RTXSent, b.N)
			}
		})
	}
}
