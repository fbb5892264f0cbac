package sfu

import (
	"strings"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// downTrack is one published track as sent to one subscriber. It is the
// webrtc.TrackLocal added to the subscriber connection: pion tells it the
// negotiated SSRC and payload type in Bind, and the subscriber's writer
// goroutine rewrites each forwarded packet with them.
//
// Sequence numbers are rewritten too: packets the SFU drops on purpose
// (queue full, waiting for a key frame, muted, not yet bound) are removed
// from the numbering, so the subscriber sees no gap and does not NACK
// packets that will never come. Gaps from losses upstream stay gaps, so
// the subscriber's NACKs for them reach the cache.
type downTrack struct {
	src      *publishedTrack
	sub      *Peer
	q        *sendQueue
	streamID string
	sender   *webrtc.RTPSender

	bind         atomic.Pointer[binding]
	needKeyframe atomic.Bool

	// Sequence rewriting. started, lastIn, changeIn are touched only by the
	// track's read loop; offset, changeOut, highestOut and seqMap are also
	// read by the RTCP loop when mapping NACKs back.
	started    bool
	lastIn     uint16
	changeIn   uint16 // first incoming seq the current offset applies to
	offset     atomic.Uint32
	changeOut  atomic.Uint32
	highestOut atomic.Uint32 // bit 16 set once anything was sent
	seqMap     [seqMapSize]atomic.Uint64
}

const seqMapSize = 1024

type binding struct {
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter
}

func newDownTrack(src *publishedTrack, sub *Peer) *downTrack {
	d := &downTrack{
		src:      src,
		sub:      sub,
		q:        sub.queue,
		streamID: src.info.ParticipantID + "|" + src.info.SID,
	}
	d.needKeyframe.Store(src.video)
	return d
}

// ID is the track id the subscriber sees: the server track id.
func (d *downTrack) ID() string { return d.src.info.SID }

// RID is empty: no simulcast layers are forwarded.
func (d *downTrack) RID() string { return "" }

// StreamID is "<participant>|<track sid>" (see docs/protocol.md).
func (d *downTrack) StreamID() string { return d.streamID }

func (d *downTrack) Kind() webrtc.RTPCodecType {
	if d.src.video {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

// Bind picks the negotiated codec matching the publisher's (same MIME
// type, and same fmtp when several variants were negotiated, e.g. two
// H.264 profiles) and starts forwarding. A new video subscriber asks for
// a key frame at once so the picture appears without waiting for the
// publisher's next periodic one.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var match *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, d.src.info.Codec) {
			continue
		}
		if match == nil || c.SDPFmtpLine == d.src.fmtp {
			match = &c
		}
	}
	if match == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	d.bind.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(match.PayloadType), writer: ctx.WriteStream()})
	if d.src.video {
		d.needKeyframe.Store(true)
		d.src.requestKeyframe()
	}
	return *match, nil
}

// Unbind stops forwarding; pion calls it when the sender stops.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bind.Store(nil)
	return nil
}

// forward decides what happens to one incoming packet for this
// subscriber. newest is false for reordered/retransmitted packets; key
// marks the first packet of a key frame. Runs on the track's read loop.
func (d *downTrack) forward(seq uint16, newest, key, muted bool) {
	if !d.started {
		d.started = true
		d.lastIn = seq - 1
		d.changeIn = seq
		d.changeOut.Store(uint32(seq))
	}
	if !newest {
		// A late packet (often the publisher's answer to our upstream
		// NACK) can be sent under its old number only if no packet was
		// removed from the numbering since it was due.
		if !d.isSendable(muted) {
			return
		}
		if int16(seq-d.changeIn) < 0 {
			d.src.drop(dropLate)
			return
		}
		d.enqueue(seq, seq-uint16(d.offset.Load()), false)
		return
	}
	d.lastIn = seq
	if !d.isSendable(muted) {
		d.skip(seq)
		return
	}
	if !d.sub.subReady.Load() {
		// Not connected yet: whatever is written now is lost inside pion,
		// so start at a key frame once the connection is up.
		d.skip(seq)
		d.needKeyframe.Store(d.src.video)
		return
	}
	if d.needKeyframe.Load() {
		if !key {
			d.skip(seq)
			d.src.drop(dropKeyframe)
			d.src.requestKeyframe()
			return
		}
		d.needKeyframe.Store(false)
	}
	if !d.enqueue(seq, seq-uint16(d.offset.Load()), false) {
		d.skip(seq)
		d.src.drop(dropQueueFull)
		d.fellBehind()
	}
}

func (d *downTrack) isSendable(muted bool) bool { return !muted && d.bind.Load() != nil }

// fellBehind makes video wait for the next key frame: frames after a
// dropped packet would not decode anyway.
func (d *downTrack) fellBehind() {
	if d.src.video {
		d.needKeyframe.Store(true)
		d.src.requestKeyframe()
	}
}

// skip removes seq (the newest packet) from the outgoing numbering.
func (d *downTrack) skip(seq uint16) {
	off := uint16(d.offset.Add(1))
	d.changeIn = seq + 1
	d.changeOut.Store(uint32(seq + 1 - off))
}

// enqueue hands the packet to the subscriber's writer without blocking.
func (d *downTrack) enqueue(in, out uint16, rtx bool) bool {
	if !d.q.push(outPacket{d: d, in: in, out: out, rtx: rtx}) {
		return false
	}
	if !rtx {
		d.seqMap[out%seqMapSize].Store(1<<32 | uint64(out)<<16 | uint64(in))
		if h := d.highestOut.Load(); h == 0 || int16(out-uint16(h)) > 0 {
			d.highestOut.Store(1<<16 | uint32(out))
		}
	}
	return true
}

// incoming maps a sequence number the subscriber NACKed back to the
// publisher's numbering.
func (d *downTrack) incoming(out uint16) (uint16, bool) {
	if v := d.seqMap[out%seqMapSize].Load(); v>>32 == 1 && uint16(v>>16) == out {
		return uint16(v), true
	}
	// Never sent: a loss upstream of us. If it lies after the last
	// renumbering its incoming number is out + offset.
	h := d.highestOut.Load()
	if h == 0 || int16(out-uint16(d.changeOut.Load())) < 0 || int16(out-uint16(h)) > 0 {
		return 0, false
	}
	return out + uint16(d.offset.Load()), true
}

// rtcpLoop reads the subscriber's RTCP for this track: NACKs are answered
// from the cache, PLI/FIR become (throttled) key-frame requests upstream.
// Receiver reports are consumed by pion's interceptors.
func (d *downTrack) rtcpLoop() {
	buf := make([]byte, 1500)
	for {
		n, _, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		d.handleRTCP(pkts)
	}
}

func (d *downTrack) handleRTCP(pkts []rtcp.Packet) {
	t := d.src
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			t.plisIn.Add(1)
			t.s.m.plisIn.Inc()
			t.requestKeyframe()
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				pair.Range(func(out uint16) bool {
					t.nacksIn.Add(1)
					t.s.m.nacksIn.Inc()
					if in, ok := d.incoming(out); ok {
						if !d.q.push(outPacket{d: d, in: in, out: out, rtx: true}) {
							t.drop(dropQueueFull)
						}
					}
					return true
				})
			}
		}
	}
}
