package sfu_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/internal/red"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// opusFrame is the test's Opus frame k: a TOC byte, a filler byte, then
// k in bytes 2-3 (what sfutest.Track.Orig counts) and some audio bytes.
func opusFrame(k uint16) []byte {
	b := make([]byte, 40)
	b[0], b[1], b[2], b[3] = 0xfc, 0xff, byte(k>>8), byte(k)
	for i := 4; i < len(b); i++ {
		b[i] = byte(k) ^ byte(i)
	}
	return b
}

// TestREDForwardedAndUnwrapped: a publisher sends RED (frame k as the
// primary, frame k-1 as a redundant block); one packet is lost on its
// uplink. A subscriber that negotiated RED receives RED; one that did
// not (pion's default codecs, like Firefox) receives plain Opus under the
// Opus payload type with every frame, the lost one recovered from the
// next packet's redundancy.
func TestREDForwardedAndUnwrapped(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	both := sfu.JoinOptions{CanPublish: true, CanSubscribe: true}
	ada := env.newClientWith("r", "ada", both, sfutest.Options{RED: true, Manual: true})
	redSub := env.newClientWith("r", "bob", both, sfutest.Options{RED: true, KeepPackets: 400})
	opusSub := env.newClientWith("r", "cyd", both, sfutest.Options{KeepPackets: 400})
	ada.AddTrackCodec(sfutest.REDCodec, "mic")
	ada.NegotiatePublisher(false)

	const total, lost = 300, 150
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var payload []byte
		for k := uint16(1); k <= total; k++ {
			<-tick.C
			prev := []red.Block{{PT: 111, Offset: 960, Payload: opusFrame(k - 1)}}
			payload, _ = red.Pack(payload[:0], prev, 111, opusFrame(k))
			if k == lost {
				continue // lost on the way to the SFU
			}
			_ = ada.Track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: k,
				Timestamp: uint32(k) * 960}, Payload: payload})
		}
	}()
	t.Cleanup(func() { <-sent })

	testkit.Eventually(t, 15*time.Second, "both subscribers receive frames past the lost one", func() bool {
		a, _ := redSub.TrackOfKind(webrtc.RTPCodecTypeAudio)
		b, _ := opusSub.TrackOfKind(webrtc.RTPCodecTypeAudio)
		return a.Count > lost-50 && b.Orig[lost+5] > 0
	})
	<-sent
	time.Sleep(200 * time.Millisecond)

	rt, _ := redSub.TrackOfKind(webrtc.RTPCodecTypeAudio)
	if !strings.EqualFold(rt.Codec.MimeType, sfu.MimeTypeRED) {
		t.Fatalf("RED subscriber got codec %q", rt.Codec.MimeType)
	}
	for _, p := range rt.Packets {
		pl, err := red.Parse(p.Payload)
		if err != nil || pl.Redundant() != 1 {
			t.Fatalf("RED subscriber: packet %d is not RED with one redundant block: %v", p.SequenceNumber, err)
		}
	}

	ot, _ := opusSub.TrackOfKind(webrtc.RTPCodecTypeAudio)
	if !strings.EqualFold(ot.Codec.MimeType, webrtc.MimeTypeOpus) {
		t.Fatalf("Opus subscriber got codec %q", ot.Codec.MimeType)
	}
	// Frames from the first one received on: continuous, each once,
	// the lost one included; sequence numbers continuous too.
	first := uint16(0)
	for _, p := range ot.Packets {
		if webrtc.PayloadType(p.PayloadType) != ot.Codec.PayloadType {
			t.Fatalf("Opus subscriber: payload type %d, negotiated %d", p.PayloadType, ot.Codec.PayloadType)
		}
		if len(p.Payload) != 40 || p.Payload[0] != 0xfc {
			t.Fatalf("Opus subscriber: packet %d is not a plain Opus frame: % x", p.SequenceNumber, p.Payload[:min(8, len(p.Payload))])
		}
		k := uint16(p.Payload[2])<<8 | uint16(p.Payload[3])
		if first == 0 {
			first = k
		}
	}
	if first == 0 || first >= lost {
		t.Fatalf("Opus subscriber: first frame %d", first)
	}
	for k := first; k <= total; k++ {
		if ot.Orig[k] != 1 {
			t.Fatalf("Opus subscriber: frame %d received %d times (lost one: %d)", k, ot.Orig[k], lost)
		}
	}
	prevSeq := -1
	for _, p := range ot.Packets {
		if prevSeq >= 0 && p.SequenceNumber != uint16(prevSeq+1) {
			t.Fatalf("Opus subscriber: sequence %d after %d", p.SequenceNumber, prevSeq)
		}
		prevSeq = int(p.SequenceNumber)
	}
	if n := counterValue(t, env, "parley_sfu_red_recovered_total", ""); n < 1 {
		t.Fatalf("parley_sfu_red_recovered_total = %v", n)
	}
}

// TestREDOffByConfig: with sfu.audio_red false the SFU answers a RED
// offer with Opus only (the publisher then sends plain Opus), and the
// answer carries the audio-level extension and Opus FEC either way.
func TestREDOffByConfig(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := sfu.DefaultConfig()
		cfg.AudioRED = on
		env := newTestEnv(t, cfg)
		c := env.newClientWith("r", "ada", sfu.JoinOptions{CanPublish: true}, sfutest.Options{RED: true, AudioLevel: true, Manual: true})
		c.AddTrack("audio", "mic")
		answer := c.NegotiatePublisher(false)
		if got := strings.Contains(answer.SDP, "red/48000/2"); got != on {
			t.Errorf("audio_red %v: RED in the answer: %v\n%s", on, got, answer.SDP)
		}
		if !strings.Contains(answer.SDP, sfutest.AudioLevelURI) || !strings.Contains(answer.SDP, "useinbandfec=1") {
			t.Errorf("audio_red %v: answer without the audio level or FEC:\n%s", on, answer.SDP)
		}
	}
}
