package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu/internal/keyframe"
	"github.com/parleyhq/parley/sfu/internal/packetcache"
	"github.com/parleyhq/parley/sfu/internal/red"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// outPacket is one queued send: which track, which cached packet, and the
// sequence number the subscriber sees. The packet bytes stay in the
// track's cache, so queueing copies 16 bytes, not 1200.
type outPacket struct {
	d       *downTrack
	in, out uint16
	rtx     bool
	mark    bool // set the marker bit (audio resuming after a pause)
	// pad, when not 0, makes this a bandwidth probe: a padding-only
	// packet of pad bytes on d's RTX stream (probe.go), nothing cached.
	pad uint8
	// m is the switcher's mapping for a simulcast source: which layer's
	// cache holds the packet and how to renumber it (zero otherwise).
	m simulcast.Mapping
}

// sendQueue is one subscriber's bounded send queue and its writer. The
// forwarders of every track push without blocking; when it is full the
// packet is dropped (and video waits for a key frame), so a slow or
// stalled subscriber costs the others nothing.
type sendQueue struct {
	ch          chan outPacket
	done        chan struct{}
	m           *metrics
	beforeWrite func() // test hook, nil in production

	// corks: the sockets to cork around a burst (sendbatch.go), nil
	// when batching is off.
	corks *corkSet
	// overTCP: the subscriber's media goes over ICE-TCP, whose writes can
	// block on a slow receiver; its writer never corks, since a writer
	// blocked while corked would hold back every UDP subscriber's
	// datagrams.
	overTCP atomic.Bool
	// pace is the rate in bit/s the writer spaces packets at, 0 for
	// none (pacer.go; set by the subscriber's layer choice).
	pace atomic.Int64
}

// newSendQueue makes a queue of n packets whose writer corks corks
// around bursts (nil: no batching).
func newSendQueue(n int, m *metrics, corks *corkSet) *sendQueue {
	return &sendQueue{ch: make(chan outPacket, n), done: make(chan struct{}), m: m, corks: corks}
}

func (q *sendQueue) push(p outPacket) bool {
	select {
	case q.ch <- p:
		return true
	default:
		return false
	}
}

// stop ends run; packets still queued are discarded.
func (q *sendQueue) stop() { close(q.done) }

// run writes queued packets until stop. It owns buf and hdr, so sending
// does not allocate on our side. With batching, it corks the sockets,
// writes what is queued (up to maxBurst packets) and uncorks, so the
// burst leaves in one system call.
func (q *sendQueue) run() {
	buf := make([]byte, packetcache.MaxPacketSize)
	var hdr rtp.Header
	var pc pacer
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-q.done:
			return
		case p := <-q.ch:
			if rate := q.pace.Load(); rate > 0 {
				// Paced: one packet at a time, never corked (a writer
				// waiting while corked would hold back the others).
				n := q.send(p, buf, &hdr)
				if w := pc.after(time.Now(), n, len(q.ch), rate); w > 0 && !q.sleep(wait, w) {
					return
				}
				continue
			}
			if q.corks == nil || len(q.ch) == 0 || q.overTCP.Load() {
				// A lone packet: corking would only add the batch's copy.
				q.send(p, buf, &hdr)
				continue
			}
			corked := q.corks.cork()
			q.send(p, buf, &hdr)
			q.drain(buf, &hdr)
			uncork(corked)
		}
	}
}

// sleep waits d on t (the writer's timer), or until stop: false then.
func (q *sendQueue) sleep(t *time.Timer, d time.Duration) bool {
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-q.done:
		return false
	}
}

// drain sends what is queued now, at most maxBurst-1 packets.
func (q *sendQueue) drain(buf []byte, hdr *rtp.Header) {
	for range maxBurst - 1 {
		select {
		case p := <-q.ch:
			q.send(p, buf, hdr)
		default:
			return
		}
	}
}

// send writes p and returns the bytes it put on the wire (RTP header and
// payload; 0 if it wrote nothing).
func (q *sendQueue) send(p outPacket, buf []byte, hdr *rtp.Header) int {
	d, t := p.d, p.d.src
	if q.beforeWrite != nil {
		q.beforeWrite()
	}
	if p.pad != 0 {
		return q.sendPadding(p, hdr)
	}
	b := d.bind.Load()
	if b == nil {
		return 0 // unbound since queued: the track is going away
	}
	cache := t.cache
	switch {
	case d.sw != nil:
		cache = t.layers[p.m.Layer].cache
	case b.opus:
		cache = t.opusCache
	}
	n := cache.Get(p.in, buf)
	if n == 0 {
		if !p.rtx {
			t.drop(dropCacheMiss)
			d.fellBehind()
		}
		return 0
	}
	hl, err := hdr.Unmarshal(buf[:n])
	if err != nil {
		return 0
	}
	end := n
	hdr.PaddingSize = 0
	if hdr.Padding {
		// Header.Unmarshal leaves the padding in the payload; pion's
		// marshaller wants it declared separately.
		pad := int(buf[n-1])
		if pad == 0 || hl+pad > n {
			return 0
		}
		hdr.PaddingSize = byte(pad)
		end = n - pad
	}
	hdr.SSRC = b.ssrc
	hdr.PayloadType = b.pt
	hdr.SequenceNumber = p.out
	if p.mark {
		hdr.Marker = true
	}
	if b.redInnerPT != 0 {
		red.SetPT(buf[hl:end], b.redInnerPT) // our copy
	}
	if d.sw != nil {
		hdr.Timestamp = p.m.Timestamp(hdr.Timestamp)
		if t.codec == keyframe.VP8 {
			p.m.RewriteVP8(buf[hl:end]) // our copy: each subscriber numbers its own
		}
	}
	// Header extension ids are negotiated per connection and the
	// subscriber connection negotiates none, so none are forwarded.
	hdr.Extension = false
	hdr.Extensions = hdr.Extensions[:0]
	payload := buf[hl:end]
	onRTX := p.rtx && b.rtxSSRC != 0
	if onRTX {
		// RFC 4588: the retransmission goes on the RTX stream, in its own
		// numbering, with the sequence number the subscriber NACKed (the
		// original's) in front of the payload. Those two bytes go where
		// the end of the parsed header was (hl >= 12), in our copy.
		payload = buf[hl-2 : end]
		binary.BigEndian.PutUint16(payload, p.out)
		d.rtxSeq++
		hdr.SSRC, hdr.PayloadType, hdr.SequenceNumber = b.rtxSSRC, b.rtxPT, d.rtxSeq
	}
	if _, err := b.writer.WriteRTP(hdr, payload); err != nil {
		t.drop(dropWriteFailed)
		return 0
	}
	wrote := rtpHeaderLen + len(payload) // near enough for the pacer: no extensions go out
	if p.rtx {
		t.retransmits.Add(1)
		q.m.retransmits.Inc()
		if onRTX {
			t.rtxOut.Add(1)
			q.m.rtxOut.Inc()
		}
		return wrote
	}
	q.m.packetsForwarded.Inc()
	q.m.bytesForwarded.Add(float64(end - hl))
	return wrote
}
