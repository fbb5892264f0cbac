// Package sendhistory keeps what a sender sent under each transport-wide
// sequence number and turns a receiver's transport-cc feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01) into
// acknowledgments: for each packet the feedback reports, its size, when
// it was sent and when (in the receiver's clock) it arrived, or that it
// did not. A send-side bandwidth estimator reads those.
//
// It exists because pion's congestion-control adapter (interceptor
// v0.1.51, internal/cc) keeps its history in a map and a linked list,
// with an allocation for every packet sent and room for only the last
// 250: per forwarded packet that bookkeeping cost the SFU about 10% of
// its CPU in a 10 x 10 load run (docs/benchmarks.md), and at the 2,500
// packets a second a busy subscriber receives 250 packets are 100 ms,
// about one feedback interval. Here a packet sent is one store into a
// fixed ring indexed by its sequence number, under a mutex.
package sendhistory

import (
	"errors"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Size is how many packets the history remembers: at 5,000 packets a
// second (a subscriber receiving a dozen 720p cameras) 1.6 s, several
// feedback intervals even when feedback is late.
const Size = 8192

// Ack is what one feedback says of one packet the history holds.
type Ack struct {
	Seq  uint16
	Size int // bytes, as given to Sent
	Sent time.Time
	// Padding: recorded with SentPadding, a packet of padding alone (a
	// bandwidth probe), no media.
	Padding bool
	// Received is false for a packet the receiver reports missing.
	Received bool
	// Timed: the receiver said when it arrived (all but the "received,
	// no time" status, which libwebrtc does not send).
	Timed bool
	// Arrival is when it arrived, in the receiver's clock: only
	// differences between arrivals mean anything to the sender.
	Arrival time.Duration
}

// ErrMalformed is returned for a feedback whose statuses and deltas do
// not agree; the acknowledgments read before the fault are kept.
var ErrMalformed = errors.New("sendhistory: malformed transport-cc feedback")

type slot struct {
	sent    time.Time
	size    int32
	seq     uint16
	used    bool
	padding bool
}

// History is one sender's record. The zero value is ready; it is safe
// for one goroutine sending while another reads feedback.
type History struct {
	mu    sync.Mutex
	slots [Size]slot

	// The feedback's reference time, unwrapped (24 bits of 64 ms wrap
	// after about 12 days).
	haveRef bool
	lastRef uint32
	refBase time.Duration
}

// Sent records that the packet with transport-wide sequence number seq
// and size bytes left at t.
func (h *History) Sent(seq uint16, t time.Time, size int) { h.sent(seq, t, size, false) }

// SentPadding is Sent for a packet that carries padding alone (a
// bandwidth probe): its acknowledgment says so (Ack.Padding), for an
// estimator that tells what the link carried from what the media needs.
func (h *History) SentPadding(seq uint16, t time.Time, size int) { h.sent(seq, t, size, true) }

func (h *History) sent(seq uint16, t time.Time, size int, padding bool) {
	h.mu.Lock()
	h.slots[seq%Size] = slot{sent: t, size: int32(min(size, 1<<30)), seq: seq, used: true, padding: padding} //nolint:gosec // bounded above
	h.mu.Unlock()
}

// Feedback appends to acks what fb says of the packets the history
// holds (a packet sent more than Size packets ago, or never, is left
// out) and returns the slice.
func (h *History) Feedback(fb *rtcp.TransportLayerCC, acks []Ack) ([]Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	arrival := h.reference(fb.ReferenceTime)
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	deltas := fb.RecvDeltas
	// status handles one packet's status symbol; false on a fault.
	status := func(symbol uint16) bool {
		timed := symbol == rtcp.TypeTCCPacketReceivedSmallDelta || symbol == rtcp.TypeTCCPacketReceivedLargeDelta
		received := timed || symbol == rtcp.TypeTCCPacketReceivedWithoutDelta
		if timed {
			if len(deltas) == 0 || deltas[0] == nil {
				return false
			}
			arrival += time.Duration(deltas[0].Delta) * time.Microsecond
			deltas = deltas[1:]
		}
		if s := &h.slots[seq%Size]; s.used && s.seq == seq {
			a := Ack{Seq: seq, Size: int(s.size), Sent: s.sent, Received: received, Timed: timed, Padding: s.padding}
			if timed {
				a.Arrival = arrival
			}
			acks = append(acks, a)
		}
		seq++
		left--
		return true
	}
	for _, c := range fb.PacketChunks {
		if left <= 0 {
			break
		}
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(c.RunLength), left) {
				if !status(c.PacketStatusSymbol) {
					return acks, ErrMalformed
				}
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if left <= 0 {
					break
				}
				if !status(sym) {
					return acks, ErrMalformed
				}
			}
		default:
			return acks, ErrMalformed
		}
	}
	return acks, nil
}

// reference turns a feedback's 24-bit reference time (64 ms units)
// into a duration that keeps growing across its wrap. The caller holds
// h.mu.
func (h *History) reference(ref uint32) time.Duration {
	const unit = 64 * time.Millisecond
	const span = 1 << 24
	ref %= span
	if h.haveRef {
		// Feedback can come out of order: a reference more than half
		// the span "behind" is one that wrapped forward.
		switch d := int64(ref) - int64(h.lastRef); {
		case d < -span/2:
			h.refBase += span * unit
		case d > span/2:
			h.refBase -= span * unit
		}
	}
	h.haveRef, h.lastRef = true, ref
	return h.refBase + time.Duration(ref)*unit
}
