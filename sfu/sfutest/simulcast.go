package sfutest

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// SimulcastTrack is a VP8 track a client publishes in several layers, as a
// browser does with sendEncodings: one encoding per rid, each its own RTP
// stream (SSRC, sequence numbers, timestamps, PictureIDs).
type SimulcastTrack struct {
	RIDs   []string
	Sender *webrtc.RTPSender
	layers []*simLayer
	stop   chan struct{}
	// temporal: frames carry VP8 temporal layers (SetTemporalLayers).
	temporal atomic.Bool
}

// SetTemporalLayers makes the layers' frames carry VP8 temporal layers
// from now on, in libwebrtc's three-layer pattern (TIDs 0, 2, 1, 2, the
// first 2 and 1 after each base frame with the layer sync bit), as
// Chrome's simulcast does: the payload descriptor grows by the TID byte.
func (st *SimulcastTrack) SetTemporalLayers(on bool) { st.temporal.Store(on) }

// simL1T3 is libwebrtc's three-layer pattern: TID and layer sync bit.
var simL1T3 = [4]struct { //nolint:gochecknoglobals // read-only table
	tid  uint8
	sync bool
}{{0, false}, {2, true}, {1, true}, {2, false}}

type simLayer struct {
	track   *webrtc.TrackLocalStaticRTP
	paused  atomic.Bool
	pad     atomic.Bool // while paused, send padding-only packets
	wantKey chan struct{}
	plis    atomic.Int64
	sent    atomic.Int64
}

// Simulcast payloads: the VP8 payload descriptor with a 15-bit PictureID
// and a TL0PICIDX (6 bytes, the key frame bit in the byte after it), then
// the layer's index and the packet's own sequence number.
const (
	SimPayloadLayer = 6 // byte offset of the layer index
	SimPayloadSeq   = 7 // two bytes: the layer's sequence number
	simPayloadSize  = 120
)

// AddSimulcastTrack adds a VP8 track with one encoding per rid (lowest
// quality first, e.g. "q", "h", "f") in stream "stream-<id>", not yet
// negotiated, and starts sending: each layer a one-packet frame every
// 10 ms, a key frame every second and after each PLI on that layer's
// SSRC. Layers start with different sequence numbers, timestamps and
// PictureIDs, as a browser's do. Manual clients send nothing.
func (c *Client) AddSimulcastTrack(trackID string, rids ...string) *SimulcastTrack {
	t := c.t
	t.Helper()
	pub := c.ensurePublisher()
	st := &SimulcastTrack{RIDs: rids, stop: make(chan struct{})}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}
	for _, rid := range rids {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, "stream-"+c.ID, webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		st.layers = append(st.layers, &simLayer{track: tr, wantKey: make(chan struct{}, 1)})
	}
	sender, err := pub.AddTrack(st.layers[0].track)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.layers[1:] {
		if err := sender.AddEncoding(l.track); err != nil {
			t.Fatal(err)
		}
	}
	st.Sender = sender
	for _, rid := range rids {
		c.wg.Go(func() { c.readSimulcastRTCP(st, rid) })
	}
	if c.o.Manual {
		return st
	}
	for i, l := range st.layers {
		c.wg.Go(func() { c.sendLayer(st, i, l) })
	}
	return st
}

func (c *Client) sendLayer(st *SimulcastTrack, idx int, l *simLayer) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	seq := uint16(1000*idx + 17)
	ts := uint32(7_000_000 * (idx + 1))
	pid := uint16(3000*idx + 5)
	tl0 := uint8(40 * idx)
	var ext simExt
	n := 0 // frames since the key frame, for the temporal pattern
	// A key frame asked for while paused is the first frame after it, as
	// a browser's encoder keeps the request until it encodes again.
	var keyPending bool
	for i := 0; ; i++ {
		select {
		case <-c.done:
			return
		case <-st.stop:
			return
		case <-tick.C:
		}
		select {
		case <-l.wantKey:
			keyPending = true
		default:
		}
		if l.paused.Load() {
			if l.pad.Load() {
				// Chrome's bandwidth probes: padding only, on the
				// layer's SSRC and numbering.
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts,
					Padding: true, PaddingSize: 200}}
				if ext.ok {
					_ = pkt.Header.SetExtension(ext.mid, []byte(ext.midValue))
					_ = pkt.Header.SetExtension(ext.rid, []byte(st.RIDs[idx]))
				}
				if err := l.track.WriteRTP(pkt); err != nil {
					return
				}
				seq++
			}
			continue
		}
		key := i%100 == 0 || keyPending
		keyPending = false
		b6 := byte(0x01)
		if key {
			b6 = 0
		}
		size := simPayloadSize
		if idx < len(c.o.LayerPayloads) && c.o.LayerPayloads[idx] > SimPayloadSeq+2 {
			size = c.o.LayerPayloads[idx]
		}
		payload := make([]byte, size+1)
		// X and S, then I and L; PictureID (M bit set), TL0PICIDX.
		payload[0], payload[1] = 0x90, 0xc0
		payload[2], payload[3] = 0x80|byte(pid>>8), byte(pid)
		off := 0
		if st.temporal.Load() {
			if key {
				n = 0
			}
			f := simL1T3[n%len(simL1T3)]
			n++
			if f.tid == 0 {
				tl0++
			}
			// T too, and the TID byte after TL0PICIDX.
			payload[1] |= 0x20
			payload[5] = f.tid << 6
			if f.sync {
				payload[5] |= 0x20
			}
			off = 1
		}
		payload[4], payload[5+off] = tl0, b6
		payload[SimPayloadLayer+off] = byte(idx)
		payload[SimPayloadSeq+off], payload[SimPayloadSeq+off+1] = byte(seq>>8), byte(seq)
		payload = payload[:size+off]
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true},
			Payload: payload}
		if !ext.ok {
			ext = c.simulcastExt(st)
		}
		if ext.ok {
			// pion leaves the mid and rid header extensions to the
			// application; a browser sends them on every layer.
			_ = pkt.Header.SetExtension(ext.mid, []byte(ext.midValue))
			_ = pkt.Header.SetExtension(ext.rid, []byte(st.RIDs[idx]))
		}
		if err := l.track.WriteRTP(pkt); err != nil {
			return
		}
		l.sent.Add(1)
		seq++
		ts += 900
		pid = (pid + 1) & 0x7fff
		if !st.temporal.Load() {
			tl0++
		}
	}
}

// simExt is where the mid and rid go in a simulcast track's packets.
type simExt struct {
	ok       bool
	mid, rid uint8
	midValue string
}

// simulcastExt finds the negotiated extension ids and the track's mid
// (not ok before negotiation).
func (c *Client) simulcastExt(st *SimulcastTrack) simExt {
	var e simExt
	for _, h := range st.Sender.GetParameters().HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			e.mid = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			e.rid = uint8(h.ID)
		}
	}
	for _, tr := range c.Pub.GetTransceivers() {
		if tr.Sender() == st.Sender {
			e.midValue = tr.Mid()
		}
	}
	e.ok = e.mid != 0 && e.rid != 0 && e.midValue != ""
	return e
}

// readSimulcastRTCP reads one layer's RTCP: it counts the PLIs for each
// layer (by SSRC) and asks that layer for a key frame.
func (c *Client) readSimulcastRTCP(st *SimulcastTrack, rid string) {
	buf := make([]byte, 1500)
	for {
		n, _, err := st.Sender.ReadSimulcast(buf, rid)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if p, ok := p.(*rtcp.PictureLossIndication); ok {
				c.plis.Add(1)
				if l := st.layerBySSRC(p.MediaSSRC); l != nil {
					l.plis.Add(1)
					select {
					case l.wantKey <- struct{}{}:
					default:
					}
				}
			}
		}
	}
}

func (st *SimulcastTrack) layerBySSRC(ssrc uint32) *simLayer {
	for _, e := range st.Sender.GetParameters().Encodings {
		if uint32(e.SSRC) != ssrc {
			continue
		}
		for i, rid := range st.RIDs {
			if rid == e.RID {
				return st.layers[i]
			}
		}
	}
	return nil
}

// Pause stops (true) or resumes (false) sending layer i, as a browser
// does when its uplink shrinks or the application sets
// encodings[i].active.
func (st *SimulcastTrack) Pause(i int, paused bool) { st.layers[i].paused.Store(paused) }

// PadWhenPaused makes paused layer i send padding-only packets, as
// Chrome probes bandwidth on a layer it stopped encoding.
func (st *SimulcastTrack) PadWhenPaused(i int, on bool) { st.layers[i].pad.Store(on) }

// LayerPLIs counts the key frame requests for layer i.
func (st *SimulcastTrack) LayerPLIs(i int) int64 { return st.layers[i].plis.Load() }

// LayerSent counts the packets sent on layer i.
func (st *SimulcastTrack) LayerSent(i int) int64 { return st.layers[i].sent.Load() }

// Stop stops sending every layer.
func (st *SimulcastTrack) Stop() { close(st.stop) }

// SimPacket is what a simulcast track's payload says about a received
// packet.
type SimPacket struct {
	Seq       uint16 // as received
	Timestamp uint32
	Layer     int    // the layer it came from
	LayerSeq  uint16 // its sequence number in that layer
	PictureID uint16 // as received (rewritten by the SFU)
	TL0PICIDX uint8
	Keyframe  bool
	// The VP8 temporal layer, if the track sends them.
	HasTID    bool
	TID       uint8
	LayerSync bool
}

// ParseSimPacket reads a packet a SimulcastTrack sent; ok is false for
// anything else.
func ParseSimPacket(p *rtp.Packet) (SimPacket, bool) {
	b := p.Payload
	if len(b) < simPayloadSize || b[0] != 0x90 || b[1] != 0xc0 && b[1] != 0xe0 {
		return SimPacket{}, false
	}
	sp := SimPacket{Seq: p.SequenceNumber, Timestamp: p.Timestamp,
		PictureID: uint16(b[2]&0x7f)<<8 | uint16(b[3]), TL0PICIDX: b[4]}
	off := 0
	if b[1]&0x20 != 0 {
		if len(b) < simPayloadSize+1 {
			return SimPacket{}, false
		}
		sp.HasTID, sp.TID, sp.LayerSync = true, b[5]>>6, b[5]&0x20 != 0
		off = 1
	}
	sp.Keyframe = b[5+off]&0x01 == 0
	sp.Layer = int(b[SimPayloadLayer+off])
	sp.LayerSeq = uint16(b[SimPayloadSeq+off])<<8 | uint16(b[SimPayloadSeq+off+1])
	return sp, true
}

// SendNACK asks the SFU to resend seq on a received track.
func (c *Client) SendNACK(ssrc webrtc.SSRC, seq uint16) error {
	return c.Sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: uint32(ssrc),
		Nacks: []rtcp.NackPair{{PacketID: seq}}}})
}
