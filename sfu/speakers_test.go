package sfu_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// talk sends 20 ms Opus packets with the RFC 6464 level (in -dBov) that
// level returns for the packet's time since start, until stop closes.
func talk(t *testing.T, c *sfutest.Client, lt *sfutest.LocalTrack, level func(time.Duration) uint8, stop <-chan struct{}) {
	var id uint8
	for _, e := range lt.Sender.GetParameters().HeaderExtensions {
		if e.URI == sfutest.AudioLevelURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		t.Errorf("%s: audio-level extension not negotiated", c.ID)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for k := uint16(1); ; k++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: k, Timestamp: uint32(k) * 960},
			Payload: []byte{0xfc, 0xff, byte(k >> 8), byte(k)}}
		if err := p.Header.SetExtension(id, []byte{0x80 | level(time.Since(start))}); err != nil {
			t.Error(err)
			return
		}
		if err := lt.Track.WriteRTP(p); err != nil {
			return
		}
	}
}

// TestSpeakersReachEveryPeer: two publishers send audio levels, one
// speaking (-20 dBov), one silent (-127); every peer of the room, the
// listen-only one included, is told within 1.5 s that the speaker is
// active, and the silent one is not listed.
func TestSpeakersReachEveryPeer(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	both := sfu.JoinOptions{CanPublish: true, CanSubscribe: true}
	o := sfutest.Options{AudioLevel: true, Manual: true}
	ada := env.newClientWith("r", "ada", both, o)
	bob := env.newClientWith("r", "bob", both, o)
	cyd := env.newClientWith("r", "cyd", sfu.JoinOptions{CanSubscribe: true}, sfutest.Options{})
	adaMic := ada.AddTrackCodec(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic-ada")
	ada.NegotiatePublisher(false)
	bobMic := bob.AddTrackCodec(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic-bob")
	bob.NegotiatePublisher(false)

	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	t.Cleanup(func() { close(stop); <-done; <-done })
	go func() {
		defer func() { done <- struct{}{} }()
		talk(t, bob, bobMic, func(time.Duration) uint8 { return 127 }, stop)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		talk(t, ada, adaMic, func(time.Duration) uint8 { return 20 }, stop)
	}()
	start := time.Now()

	activeIs := func(c *sfutest.Client, id string) bool {
		us := c.SpeakerUpdates()
		if len(us) == 0 {
			return false
		}
		u := us[len(us)-1]
		return u.Active == id && len(u.Speakers) == 1 && u.Speakers[0].ParticipantID == id && u.Speakers[0].Level > 0.3
	}
	testkit.Eventually(t, 5*time.Second, "every peer sees ada active", func() bool {
		return activeIs(ada, "ada") && activeIs(bob, "ada") && activeIs(cyd, "ada")
	})
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("ada became active after %v", el)
	}
	if n := counterValue(t, env, "parley_sfu_speaker_changes_total", ""); n != 1 {
		t.Fatalf("parley_sfu_speaker_changes_total = %v, want 1", n)
	}
}
