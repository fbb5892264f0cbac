package sfu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
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

	// sw chooses the layer of a simulcast source (nil for a single-layer
	// one, which uses the sequence rewriting below instead).
	sw *simulcast.Switcher
	// layerIdle: the last packet offered to sw could not be sent (not
	// bound, not connected, muted).
	layerIdle atomic.Bool
	// resumed: audio packets were skipped (muted, not yet connected), so
	// the next one sent carries the marker bit: the subscriber's jitter
	// buffer then starts a new talk spurt instead of concealing the
	// timestamp jump as loss. Read loop only.
	resumed bool
	// view is the subscriber's last tile report (nil: none yet), pinned
	// says SetLayer chose the layer by hand; switchesSeen is the switch
	// count already added to the metrics. Read by the peer's selectLoop.
	view         atomic.Pointer[TileView]
	pinned       atomic.Bool
	switchesSeen uint64
	// report is the subscriber's last receiver report about this
	// stream (quality.go), nil before one.
	report atomic.Pointer[rxReport]
	// rtxSeq numbers the packets of the RTX stream, which has its own
	// sequence (RFC 4588). Only the subscriber's writer touches it.
	rtxSeq uint16
	// rtxHist is what was resent in answer to NACKs, when and how often
	// (rtxthrottle.go), nil before the first NACK. RTCP loop only.
	rtxHist *rtxHistory
	// tx is what was sent to this subscriber (the admin API's receiver
	// counts), counted by the binding's writer on the subscriber's
	// writer goroutine: on cache lines of its own, away from the fields
	// the track's read loop writes per packet.
	_  [64]byte
	tx txCounts
	_  [64]byte

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
	// opus: the source sends RED but this subscriber did not negotiate
	// it; it gets the unwrapped Opus stream (publishedTrack.opusCache).
	opus bool
	// redInnerPT is the subscriber's Opus payload type, written into the
	// RED block headers when it differs from the publisher's (0: as is).
	redInnerPT uint8
	// rtxSSRC and rtxPT are the subscriber's RTX stream (RFC 4588) for
	// this track, 0 when it did not negotiate rtx for the codec: then
	// retransmissions go on the media SSRC.
	rtxSSRC uint32
	rtxPT   uint8
}

func newDownTrack(src *publishedTrack, sub *Peer) *downTrack {
	d := &downTrack{
		src:      src,
		sub:      sub,
		q:        sub.queue,
		streamID: src.info.ParticipantID + "|" + src.info.SID,
		rtxSeq:   uint16(rand.Uint32()), //nolint:gosec // RFC 3550 wants an unpredictable start, not a secret
	}
	d.needKeyframe.Store(src.video)
	if src.simulcast() {
		d.sw = src.newSwitcher()
	}
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
	if d.src.red {
		return d.bindRED(ctx)
	}
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
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(match.PayloadType)}
	if ssrc := uint32(ctx.SSRCRetransmission()); ssrc != 0 {
		if pt := rtxPayloadType(match.PayloadType, ctx.CodecParameters()); pt != 0 {
			b.rtxSSRC, b.rtxPT = ssrc, pt
		}
	}
	b.writer = d.countedWriter(ctx.WriteStream(), b.rtxSSRC)
	d.bind.Store(b)
	if b.rtxSSRC != 0 && d.sub != nil {
		// Before anything is sent on it: the feedback that names it.
		d.sub.rtxfb.open(b.rtxSSRC)
	}
	if d.sw != nil {
		d.sw.Resync() // the switcher asks for the key frame
	} else if d.src.video {
		d.needKeyframe.Store(true)
		d.src.requestKeyframe()
	}
	return *match, nil
}

// rtxPayloadType is the negotiated rtx payload type whose apt names pt,
// 0 if there is none.
func rtxPayloadType(pt webrtc.PayloadType, codecs []webrtc.RTPCodecParameters) uint8 {
	want := fmt.Sprintf("apt=%d", pt)
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && slices.Contains(strings.Split(c.SDPFmtpLine, ";"), want) {
			return uint8(c.PayloadType)
		}
	}
	return 0
}

// bindRED binds a RED source: as RED when the subscriber negotiated it
// (and the SFU offers it), else as the Opus the SFU unwraps.
func (d *downTrack) bindRED(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var redC, opusC *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		switch {
		case isRED(c.MimeType) && redC == nil:
			redC = &c
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) && opusC == nil:
			opusC = &c
		}
	}
	b := &binding{ssrc: uint32(ctx.SSRC()), writer: d.countedWriter(ctx.WriteStream(), 0)}
	var match *webrtc.RTPCodecParameters
	switch {
	case redC != nil && opusC != nil && d.src.s.cfg.AudioRED:
		match, b.pt = redC, uint8(redC.PayloadType)
		if pt := uint8(opusC.PayloadType); pt != d.src.innerPT() {
			b.redInnerPT = pt
		}
	case opusC != nil:
		match, b.pt, b.opus = opusC, uint8(opusC.PayloadType), true
	default:
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	d.bind.Store(b)
	return *match, nil
}

// wantsOpus reports whether this subscriber gets a RED source unwrapped.
// Unbound, it follows the RED numbering, which the Opus stream shares.
func (d *downTrack) wantsOpus() bool {
	b := d.bind.Load()
	return b != nil && b.opus
}

// Unbind stops forwarding, and the reading of the feedback on the RTX
// SSRC; pion calls it when the sender stops.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	if b := d.bind.Swap(nil); b != nil && b.rtxSSRC != 0 && d.sub != nil {
		d.sub.rtxfb.stop(b.rtxSSRC)
	}
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
		d.resumed = !d.src.video
		return
	}
	if !d.sub.subReady.Load() {
		// Not connected yet: whatever is written now is lost inside pion,
		// so start at a key frame once the connection is up.
		d.skip(seq)
		d.needKeyframe.Store(d.src.video)
		d.resumed = !d.src.video
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
	if !d.enqueueMarked(seq, seq-uint16(d.offset.Load()), d.resumed) {
		d.skip(seq)
		d.src.drop(dropQueueFull)
		d.fellBehind()
		return
	}
	d.resumed = false
}

func (d *downTrack) isSendable(muted bool) bool { return !muted && d.bind.Load() != nil }

// fellBehind makes video wait for the next key frame: frames after a
// dropped packet would not decode anyway.
func (d *downTrack) fellBehind() {
	if d.sw != nil {
		d.sw.Resync()
		return
	}
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
	d.sent(in, out, rtx)
	return true
}

// enqueueMarked enqueues a new packet, with the marker bit set if mark.
func (d *downTrack) enqueueMarked(in, out uint16, mark bool) bool {
	if !d.q.push(outPacket{d: d, in: in, out: out, mark: mark}) {
		return false
	}
	d.sent(in, out, false)
	return true
}

// sent records an enqueued packet's numbering for NACK mapping.
func (d *downTrack) sent(in, out uint16, rtx bool) {
	if !rtx {
		d.seqMap[out%seqMapSize].Store(1<<32 | uint64(out)<<16 | uint64(in))
		if h := d.highestOut.Load(); h == 0 || int16(out-uint16(h)) > 0 {
			d.highestOut.Store(1<<16 | uint32(out))
		}
	}
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
			if d.sw != nil {
				d.layerPLI()
				continue
			}
			t.requestKeyframe()
		case *rtcp.ReceiverReport:
			d.noteReceiverReport(p, time.Now())
		case *rtcp.TransportLayerNack:
			// Each pair is a number and a bitmap of the 16 after it;
			// walked by hand, which costs no closure per pair.
			now := time.Now()
			for _, pair := range p.Nacks {
				d.nacked(pair.PacketID, now)
				for i := range uint16(16) {
					if pair.LostPackets&(1<<i) != 0 {
						d.nacked(pair.PacketID+i+1, now)
					}
				}
			}
		}
	}
}

// nacked counts one NACKed number and answers it.
func (d *downTrack) nacked(out uint16, now time.Time) {
	d.src.nacksIn.Add(1)
	d.src.s.m.nacksIn.Inc()
	d.answerNACK(out, now)
}
