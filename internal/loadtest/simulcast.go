package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/client"
)

// Simulcast layers as the web client sends them (lowest first), the tile
// size a subscriber reports to get each (the server takes the layers as
// 1/4, 1/2 and full size of 1280x720, docs/protocol.md video_view), and
// the share of the full layer's packets per frame: a browser gives q about
// 1/8 and h about 1/4 of f's bitrate.
var simLayers = [3]struct { //nolint:gochecknoglobals // read-only table
	rid           string
	width, height int
	div           int
}{
	{"q", 320, 180, 8},
	{"h", 640, 360, 4},
	{"f", 1280, 720, 1},
}

// layerOffset is where a simulcast packet says which layer it belongs to,
// right after the probe, so a subscriber can tell the layer it is given
// from the one it asked for.
const layerOffset = vp8ProbeOffset + probeLen

// subscriberLayer is the layer subscriber i asks for: SimulcastWant's,
// or a third each.
func (o Options) subscriberLayer(i int) int {
	for l, sl := range simLayers {
		if sl.rid == o.SimulcastWant {
			return l
		}
	}
	return i % len(simLayers)
}

// simPublisher sends one VP8 track as three simulcast encodings (rids q,
// h, f, each its own SSRC, sequence numbers, timestamps and PictureIDs)
// and one Opus track.
type simPublisher struct {
	o      Options
	rec    *recorder
	c      *client.Client
	sender *webrtc.RTPSender
	layers [3]*simLayer
	audio  *webrtc.TrackLocalStaticRTP
	// audioSent counts audio packets sent inside the measured window.
	audioSent atomic.Uint64
}

type simLayer struct {
	track    *webrtc.TrackLocalStaticRTP
	keyframe atomic.Bool
	sent     atomic.Uint64 // packets sent inside the measured window
}

// newSimPublisher publishes and starts one RTCP reader per layer (and one
// for audio) in wg; they end when the client closes.
func newSimPublisher(ctx context.Context, c *client.Client, o Options, rec *recorder, wg *sync.WaitGroup) (*simPublisher, error) {
	id := c.Joined.Participant.Identity
	p := &simPublisher{o: o, rec: rec, c: c}
	var video []webrtc.TrackLocal
	for i, l := range simLayers {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			"video-"+id, "stream-"+id, webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			return nil, err
		}
		p.layers[i] = &simLayer{track: tr}
		video = append(video, tr)
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio-"+id, "stream-"+id)
	if err != nil {
		return nil, err
	}
	p.audio = audio
	senders, err := c.PublishLayers(ctx, [][]webrtc.TrackLocal{video, {audio}}, []string{"camera", "microphone"})
	if err != nil {
		return nil, err
	}
	p.sender = senders[0]
	for i, l := range simLayers {
		wg.Go(func() { p.readRTCP(i, l.rid) })
	}
	wg.Go(func() {
		for {
			if _, _, err := senders[1].ReadRTCP(); err != nil {
				return
			}
		}
	})
	return p, nil
}

// readRTCP answers a key frame request on a layer's stream with a key
// frame on that layer, as an encoder would; the SFU switches a
// subscriber to a layer only at one of its key frames.
func (p *simPublisher) readRTCP(i int, rid string) {
	for {
		pkts, _, err := p.sender.ReadSimulcastRTCP(rid)
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.layers[i].keyframe.Store(true)
			}
		}
	}
}

// sent is every packet sent inside the measured window.
func (p *simPublisher) sent() uint64 {
	n := p.audioSent.Load()
	for _, l := range p.layers {
		n += l.sent.Load()
	}
	return n
}

// rtpExt is where the mid and rid go in a simulcast packet: pion leaves
// these header extensions to the application, and the SFU needs them to
// map a new SSRC to its track and layer, as a browser sends them.
type rtpExt struct {
	ok       bool
	mid, rid uint8
	midValue string
}

func (p *simPublisher) ext() rtpExt {
	var e rtpExt
	for _, h := range p.sender.GetParameters().HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			e.mid = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			e.rid = uint8(h.ID)
		}
	}
	for _, tr := range p.c.Publisher().GetTransceivers() {
		if tr.Sender() == p.sender {
			e.midValue = tr.Mid()
		}
	}
	e.ok = e.mid != 0 && e.rid != 0 && e.midValue != ""
	return e
}

// layerState is one encoding's own numbering.
type layerState struct {
	seq uint16
	ts  uint32
	pid uint16
	tl0 uint8
}

func (p *simPublisher) run(ctx context.Context) {
	const fps = 30
	fullPerFrame := max(1, p.o.VideoPPS/fps)
	frameTick := time.NewTicker(time.Second / fps)
	defer frameTick.Stop()
	audioC, stopAudio := audioTicks(p.o.AudioPPS)
	defer stopAudio()
	vbuf := make([]byte, p.o.VideoBytes)
	abuf := make([]byte, 120)
	var st [3]layerState
	for i := range st {
		st[i] = layerState{seq: uint16(rand.Uint32()), ts: rand.Uint32(), pid: uint16(rand.Uint32()) & 0x7fff, tl0: uint8(rand.Uint32())}
		p.layers[i].keyframe.Store(true)
	}
	aseq, ats := uint16(rand.Uint32()), rand.Uint32()
	var ext rtpExt
	var frame, probe uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-frameTick.C:
			if p.o.VideoPPS == 0 {
				continue
			}
			if !ext.ok {
				ext = p.ext()
			}
			periodic := frame%60 == 0
			frame++
			for li, l := range p.layers {
				key := l.keyframe.Swap(false) || periodic
				s := &st[li]
				s.ts += 90000 / fps
				perFrame := max(1, fullPerFrame/simLayers[li].div)
				for i := range perFrame {
					simVP8Payload(vbuf, i == 0, key, s.pid, s.tl0, li)
					probe++
					now := time.Now()
					writeProbe(vbuf, vp8ProbeOffset, now, probe)
					pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq, Timestamp: s.ts, Marker: i == perFrame-1}, Payload: vbuf}
					if ext.ok {
						_ = pkt.Header.SetExtension(ext.mid, []byte(ext.midValue))
						_ = pkt.Header.SetExtension(ext.rid, []byte(simLayers[li].rid))
					}
					s.seq++
					if err := l.track.WriteRTP(&pkt); err == nil && p.rec.inWindow(now) {
						l.sent.Add(1)
					}
				}
				s.pid = (s.pid + 1) & 0x7fff
				s.tl0++
			}
		case <-audioC:
			ats += 960
			probe++
			abuf[0] = 0x78
			now := time.Now()
			writeProbe(abuf, opusProbeOffset, now, probe)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: aseq, Timestamp: ats}, Payload: abuf}
			aseq++
			if err := p.audio.WriteRTP(&pkt); err == nil && p.rec.inWindow(now) {
				p.audioSent.Add(1)
			}
		}
	}
}

// simVP8Payload is vp8Payload with the descriptor a browser's simulcast
// encoder writes (RFC 7741: X, I with a 15-bit PictureID, L with a
// TL0PICIDX; 5 bytes), which the SFU rewrites so a subscriber sees one
// continuous picture numbering across layer switches. The frame header
// and the layer's dimensions follow on a frame's first packet; the
// probe stays at vp8ProbeOffset and the layer index follows it.
func simVP8Payload(buf []byte, first, key bool, pid uint16, tl0 uint8, layer int) {
	clear(buf)
	buf[0] = 0x80 // X
	if first {
		buf[0] |= 0x10 // S, partition 0
	}
	buf[1] = 0xc0 // I, L
	buf[2], buf[3] = 0x80|byte(pid>>8), byte(pid)
	buf[4] = tl0
	if first {
		tag := byte(0x10) // show_frame=1, version 0
		if !key {
			tag |= 0x01 // inter frame
		}
		buf[5] = tag
		if key {
			buf[8], buf[9], buf[10] = 0x9d, 0x01, 0x2a
			binary.LittleEndian.PutUint16(buf[11:], uint16(simLayers[layer].width))
			binary.LittleEndian.PutUint16(buf[13:], uint16(simLayers[layer].height))
		}
	}
	buf[layerOffset] = byte(layer)
}

// simulcastReport counts what each subscriber should have received (every
// publisher's audio and the one video layer it asked for; each layer is
// its own RTP stream with its own packet count) and asks the admin API,
// if it may, which layers the server forwards.
func simulcastReport(ctx context.Context, o Options, pubs []*simPublisher, rec *recorder, rep *Report) {
	rep.Simulcast = true
	rep.Sent = 0
	var audio uint64
	var video [len(simLayers)]uint64
	for _, p := range pubs {
		rep.Sent += p.sent()
		audio += p.audioSent.Load()
		for i, l := range p.layers {
			video[i] += l.sent.Load()
		}
	}
	rep.Expected = 0
	for i, l := range simLayers {
		lr := LayerReport{RID: l.rid, Received: rec.layerReceived[i].Load()}
		for s := range o.Subscribers {
			if o.subscriberLayer(s) == i {
				lr.Subscribers++
			}
		}
		lr.Expected = uint64(lr.Subscribers) * (audio + video[i])
		if lr.Expected > 0 && lr.Received < lr.Expected {
			lr.LossPercent = 100 * float64(lr.Expected-lr.Received) / float64(lr.Expected)
		}
		rep.Expected += lr.Expected
		rep.Layers = append(rep.Layers, lr)
	}
	rep.WrongLayer = rec.wrongLayer.Load()
	if o.AdminKey == "" {
		return
	}
	want := func(identity string) (string, bool) {
		var i int
		if _, err := fmt.Sscanf(identity, "sub-%d", &i); err != nil || i < 0 || i >= o.Subscribers {
			return "", false
		}
		return simLayers[o.subscriberLayer(i)].rid, true
	}
	checked, wrong, err := checkReceivers(ctx, o, want)
	if err != nil {
		rep.ReceiversError = err.Error()
		return
	}
	rep.ReceiversChecked, rep.ReceiversWrong = checked, wrong
}
