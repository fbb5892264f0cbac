package sfu_test

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
)

// A publisher offering Opus without usedtx (as browsers do) is answered
// with usedtx=1 on its Opus payload type, so its encoder goes quiet in
// silence; with sfu.audio_dtx false the answer does not ask for it.
func TestPublisherAnswerAsksForOpusDTX(t *testing.T) {
	for _, dtx := range []bool{true, false} {
		t.Run(map[bool]string{true: "dtx", false: "no dtx"}[dtx], func(t *testing.T) { answerAsksForDTX(t, dtx) })
	}
}

func answerAsksForDTX(t *testing.T, dtx bool) {
	cfg := sfu.DefaultConfig()
	cfg.AudioDTX = dtx
	env := newLoopbackEnv(t, cfg)
	p, err := env.sfu.Join("r", "PA_dtx", sfu.JoinOptions{CanPublish: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(offer.SDP, "usedtx") {
		t.Fatalf("pion's offer already has usedtx: the test proves nothing\n%s", offer.SDP)
	}
	answer, err := p.HandleOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	// The client takes the answer as it is (what a browser does).
	if err := pc.SetRemoteDescription(answer); err != nil {
		t.Fatalf("the answer with usedtx is refused: %v", err)
	}
	pt := ""
	for l := range strings.SplitSeq(answer.SDP, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=rtpmap:"); ok && strings.Contains(strings.ToLower(v), "opus/48000") {
			pt, _, _ = strings.Cut(v, " ")
		}
	}
	if pt == "" {
		t.Fatalf("no Opus in the answer:\n%s", answer.SDP)
	}
	var fmtp string
	for l := range strings.SplitSeq(answer.SDP, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=fmtp:"+pt+" "); ok {
			fmtp = v
		}
	}
	if got := strings.Contains(fmtp, "usedtx=1"); got != dtx {
		t.Errorf("audio_dtx %v: Opus fmtp %q", dtx, fmtp)
	}
	_ = pc.Close()
	_ = p.Close()
}
