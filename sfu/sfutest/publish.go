package sfutest

import (
	"strings"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
)

// LocalTrack is one track a client publishes.
type LocalTrack struct {
	Track  *webrtc.TrackLocalStaticRTP
	Sender *webrtc.RTPSender
	stop   chan struct{}
}

// Publish adds a VP8 track "cam-<id>" and negotiates it (Join's clients).
func (c *Client) Publish() {
	c.AddTrack("video", "cam-"+c.ID)
	c.NegotiatePublisher(false)
}

// AddTrack adds a local track (not yet negotiated) in stream
// "stream-<id>" and starts its media and RTCP loops. Video: one-packet
// VP8 frames every 5 ms, a key frame every 50 and after each PLI.
// Audio: an Opus packet every 20 ms. Each payload carries the packet's
// sequence number in bytes 2-3 (see Track.Orig).
func (c *Client) AddTrack(kind, trackID string) *LocalTrack {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}
	if kind == "audio" {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}
	}
	return c.AddTrackCodec(codec, trackID)
}

// AddTrackCodec is AddTrack with an explicit codec (VP8, H.264 or Opus).
func (c *Client) AddTrackCodec(codec webrtc.RTPCodecCapability, trackID string) *LocalTrack {
	t := c.t
	pub := c.ensurePublisher()
	kind, interval := "video", 5*time.Millisecond
	if strings.HasPrefix(codec.MimeType, "audio/") {
		kind, interval = "audio", 20*time.Millisecond
	}
	h264 := strings.EqualFold(codec.MimeType, webrtc.MimeTypeH264)
	track, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, "stream-"+c.ID)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pub.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	lt := &LocalTrack{Track: track, Sender: sender, stop: make(chan struct{})}
	if c.Track == nil {
		c.Track = track
	}
	wantKey := make(chan struct{}, 1)
	c.wg.Go(func() { c.readSenderRTCP(sender, wantKey) })
	if c.o.Manual {
		return lt
	}
	c.wg.Go(func() { // media
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.done:
				return
			case <-lt.stop:
				return
			case <-tick.C:
			}
			key := i%50 == 0
			select {
			case <-wantKey:
				key = true
			default:
			}
			seq := uint16(i)
			if kind == "video" && int32(seq) == c.skipSeq.Load() {
				continue // "lost" on the way to the SFU
			}
			b0, b1 := byte(0x10), byte(0x01) // VP8 descriptor, then the frame's key bit
			if key {
				b1 = 0
			}
			if h264 {
				b0, b1 = 0x41, 0x9a // non-IDR slice
				if key {
					b0 = 0x65 // IDR slice
				}
			}
			payload := append([]byte{b0, b1, byte(seq >> 8), byte(seq)}, make([]byte, 600)...)
			err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq,
				Timestamp: uint32(i) * 450, Marker: true}, Payload: payload})
			if err != nil {
				return
			}
			if kind == "video" {
				c.sent.Add(1)
			}
		}
	})
	return lt
}

// readSenderRTCP counts what the SFU says about a published track and
// asks the media loop for a key frame on each PLI.
func (c *Client) readSenderRTCP(sender *webrtc.RTPSender, wantKey chan<- struct{}) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				c.receiverReports.Add(1)
			case *rtcp.PictureLossIndication:
				c.plis.Add(1)
				select {
				case wantKey <- struct{}{}:
				default:
				}
			case *rtcp.TransportLayerNack:
				c.mu.Lock()
				for _, pair := range p.Nacks {
					for _, s := range pair.PacketList() {
						c.nacked[s]++
					}
				}
				c.mu.Unlock()
			}
		}
	}
}

func (c *Client) ensurePublisher() *webrtc.PeerConnection {
	c.candMu.Lock()
	defer c.candMu.Unlock()
	if c.Pub != nil {
		return c.Pub
	}
	pub, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	pub.OnICECandidate(c.localCandidate(sfu.Publisher))
	c.Pub = pub
	return pub
}

// RemoveTrack stops sending lt and removes it from the publisher
// connection (renegotiation is up to the caller).
func (c *Client) RemoveTrack(lt *LocalTrack) {
	close(lt.stop)
	if err := c.Pub.RemoveTrack(lt.Sender); err != nil {
		c.t.Fatal(err)
	}
}

// Offer makes an offer on the publisher connection (with an ICE restart
// if asked) and sets it as the local description; the test sends it and
// hands the answer to PublisherAnswer.
func (c *Client) Offer(restart bool) webrtc.SessionDescription {
	t := c.t
	t.Helper()
	pub := c.ensurePublisher()
	offer, err := pub.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		t.Fatal(err)
	}
	if restart {
		// The SFU's candidates for the new credentials wait for its answer.
		c.candMu.Lock()
		c.ufrag[sfu.Publisher] = "(restarting)"
		c.candMu.Unlock()
	}
	if err := pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return offer
}

// PublisherAnswer applies the SFU's answer to the publisher connection.
func (c *Client) PublisherAnswer(answer webrtc.SessionDescription) {
	c.candMu.Lock()
	c.ufrag[sfu.Publisher] = ICEUfrag(answer.SDP)
	pub := c.Pub
	c.candMu.Unlock()
	if err := pub.SetRemoteDescription(answer); err != nil {
		c.t.Errorf("%s: publisher answer: %v", c.ID, err)
	}
	c.flushCandidates(sfu.Publisher)
}

// NegotiatePublisher makes an offer (with an ICE restart if asked),
// has the peer answer it, applies the answer and returns it (Join's
// clients).
func (c *Client) NegotiatePublisher(restart bool) webrtc.SessionDescription {
	c.t.Helper()
	answer, err := c.Peer.HandleOffer(c.Offer(restart))
	if err != nil {
		c.t.Fatal(err)
	}
	c.PublisherAnswer(answer)
	return answer
}

// SkipSeq makes the client's video tracks never send this sequence
// number, as if it were lost on the way to the SFU.
func (c *Client) SkipSeq(seq uint16) { c.skipSeq.Store(int32(seq)) }

// Sent counts the video packets sent.
func (c *Client) Sent() int64 { return c.sent.Load() }

// PLIs counts the key-frame requests the SFU sent; ReceiverReports its
// RTCP receiver reports, on published tracks.
func (c *Client) PLIs() int64            { return c.plis.Load() }
func (c *Client) ReceiverReports() int64 { return c.receiverReports.Load() }

// Nacked is how often the SFU NACKed a published sequence number.
func (c *Client) Nacked(seq uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nacked[seq]
}
