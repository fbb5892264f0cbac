package probe

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// ringSize is how many probe packets the Recorder remembers: more than
// one cluster holds (a 200 ms cluster of 6 Mbit/s of 275-byte packets
// is about 550), so the packets of the cluster being judged are still
// there when its feedback arrives.
const ringSize = 2048

// packet is one probe packet as sent, and as the feedback reported it.
type packet struct {
	cluster uint32 // 0: free slot
	seq     uint16 // transport-wide sequence number
	size    int    // bytes on the wire above UDP
	sent    time.Time
	state   uint8
	arrival time.Duration // receiver's clock (feedback reference time based)
}

const (
	pending uint8 = iota
	received
	lost
)

// Result is what the feedback says about one cluster's probe packets.
type Result struct {
	Sent, Received, Lost int // packets (Sent - Received - Lost have no feedback yet)
	Bytes                int // bytes sent
	// SendRate and RecvRate are the cluster's rates in bit/s as sent
	// and as received (0 when too few packets to tell).
	SendRate, RecvRate int
	// TailSendRate and TailRecvRate are the same of the packets sent in
	// the second half of the cluster's sending (0 when too few). A
	// shaper's burst allowance (a token bucket) carries the first part
	// of a cluster above its rate as sent; by the second half a cluster
	// above the rate has spent it and queues (see Controller.Judge).
	TailSendRate, TailRecvRate int
}

// Reported is the number of packets the feedback has reported.
func (r Result) Reported() int { return r.Received + r.Lost }

// Recorder records a connection's probe packets as they are sent and
// their arrival as transport-cc feedback reports it. It is safe for
// concurrent use: packets are recorded by the connection's writer,
// feedback by its RTCP reader, results read by the prober.
type Recorder struct {
	mu      sync.Mutex
	cluster uint32
	ring    [ringSize]packet
}

// StartCluster makes id (non-zero) the cluster that packets recorded
// from now on belong to.
func (r *Recorder) StartCluster(id uint32) {
	r.mu.Lock()
	r.cluster = id
	r.mu.Unlock()
}

// Sent records a probe packet of size bytes sent at now under
// transport-wide sequence number seq.
func (r *Recorder) Sent(seq uint16, size int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cluster == 0 {
		return
	}
	r.ring[seq%ringSize] = packet{cluster: r.cluster, seq: seq, size: size, sent: now}
}

// Feedback takes one transport-cc feedback packet: each probe packet it
// reports is marked received (with its arrival time) or lost. A packet
// reported lost and later received (the receiver reports again) counts
// as received.
func (r *Recorder) Feedback(fb *rtcp.TransportLayerCC) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Arrival times: the reference time (64 ms units) plus the running
	// sum of the deltas (microseconds).
	at := time.Duration(fb.ReferenceTime) * 64 * time.Millisecond
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	deltas := fb.RecvDeltas
	mark := func(symbol uint16) {
		p := &r.ring[seq%ringSize]
		ours := p.cluster != 0 && p.seq == seq
		switch symbol {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) > 0 {
				at += time.Duration(deltas[0].Delta) * time.Microsecond
				deltas = deltas[1:]
			}
			if ours {
				p.state, p.arrival = received, at
			}
		case rtcp.TypeTCCPacketNotReceived:
			if ours && p.state == pending {
				p.state = lost
			}
		}
		seq++
		left--
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && left > 0; i++ {
				mark(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				if left <= 0 {
					break
				}
				if c.SymbolSize == rtcp.TypeTCCSymbolSizeOneBit && s == 1 {
					s = rtcp.TypeTCCPacketReceivedSmallDelta
				}
				mark(s)
			}
		}
	}
}

// Result sums up cluster id's packets as reported so far.
func (r *Recorder) Result(id uint32) Result {
	if id == 0 {
		return Result{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var res Result
	var firstSent, lastSent time.Time
	for i := range r.ring {
		p := &r.ring[i]
		if p.cluster != id {
			continue
		}
		res.Sent++
		res.Bytes += p.size
		if firstSent.IsZero() || p.sent.Before(firstSent) {
			firstSent = p.sent
		}
		lastSent = maxTime(lastSent, p.sent)
		switch p.state {
		case lost:
			res.Lost++
		case received:
			res.Received++
		}
	}
	res.SendRate, res.RecvRate = r.rates(id, time.Time{})
	if res.Sent >= 2*minPackets {
		res.TailSendRate, res.TailRecvRate = r.rates(id, firstSent.Add(lastSent.Sub(firstSent)/2))
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// rates is the send and receive rates (bit/s, 0 when too few packets)
// of cluster id's packets sent at or after from. The caller holds r.mu.
func (r *Recorder) rates(id uint32, from time.Time) (send, recv int) {
	var firstSent, lastSent time.Time
	var firstArr, lastArr time.Duration
	sent, got, bytes, recvBytes, lastSentSize, firstArrSize := 0, 0, 0, 0, 0, 0
	for i := range r.ring {
		p := &r.ring[i]
		if p.cluster != id || p.sent.Before(from) {
			continue
		}
		sent++
		bytes += p.size
		if firstSent.IsZero() || p.sent.Before(firstSent) {
			firstSent = p.sent
		}
		if !p.sent.Before(lastSent) {
			lastSent, lastSentSize = p.sent, p.size
		}
		if p.state == received {
			if got == 0 || p.arrival < firstArr {
				firstArr, firstArrSize = p.arrival, p.size
			}
			if got == 0 || p.arrival > lastArr {
				lastArr = p.arrival
			}
			got++
			recvBytes += p.size
		}
	}
	// A rate over n packets counts the bytes of n-1 of them: the last
	// one sent and the first one received take no time to send or
	// receive within the interval.
	if d := lastSent.Sub(firstSent); sent >= minPackets && d > 0 {
		send = int(float64(bytes-lastSentSize) * 8 / d.Seconds())
	}
	if d := lastArr - firstArr; got >= minPackets && d > 0 {
		recv = int(float64(recvBytes-firstArrSize) * 8 / d.Seconds())
	}
	return send, recv
}

// minPackets is the fewest packets a rate is computed from.
const minPackets = 5
