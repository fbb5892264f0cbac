package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/testkit"
)

// The encoders of ingest_test.go: ffmpeg over RTMP, as OBS, and a pion
// WHIP publisher, as OBS 30+.

// needFFmpeg fails the test when ffmpeg or ffprobe is missing.
func needFFmpeg(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err == nil {
		_, err = exec.LookPath("ffprobe")
	}
	if err != nil {
		t.Fatal("ffmpeg and ffprobe are needed: `apt-get install -y ffmpeg` (or run ./scripts/test)")
	}
	return ffmpeg
}

// rtmpPublisher is ffmpeg publishing a 320x240 30 fps H.264 + AAC test
// pattern over RTMP, as OBS would (baseline, no B-frames, a key frame a
// second, 48 kHz stereo AAC), for at most 60 s.
type rtmpPublisher struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    testkit.SyncBuffer
	cancel context.CancelFunc
	exited chan struct{}
}

func startRTMP(t *testing.T, ctx context.Context, ffmpeg string, node *ingestNode, key string) *rtmpPublisher {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	p := &rtmpPublisher{t: t, cancel: cancel, exited: make(chan struct{})}
	p.cmd = exec.CommandContext(pctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "60", "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000", "-ac", "2", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", node.rtmpPort, key))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cancel() // kills ffmpeg if it still runs
		<-p.exited
		if t.Failed() {
			t.Logf("ffmpeg: %s", p.out.String())
		}
	})
	return p
}

// stop ends the publish as a streamer's Stop does (SIGINT: ffmpeg
// closes its RTMP stream), waits up to 15 s for ffmpeg to exit and
// returns when it was told to stop.
func (p *rtmpPublisher) stop() time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.t.Fatal("ffmpeg did not stop within 15 s of SIGINT")
	}
	return at
}

// candidatePorts lists the ports of an SDP's candidates.
func candidatePorts(sdp string) []int {
	var out []int
	for _, line := range strings.Split(sdp, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:")
		if !ok {
			continue
		}
		// foundation component transport priority address port typ ...
		f := strings.Fields(rest)
		if len(f) < 6 {
			continue
		}
		if p, err := strconv.Atoi(f[5]); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// whipDo makes one WHIP request and returns the response and its body.
func whipDo(t *testing.T, method, target, key, contentType, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp, string(b)
}

// encodeH264 has ffmpeg encode 3 s of a 160x120 test pattern at 10 fps
// (baseline, a key frame a second, one slice per frame) and returns it as
// access units in Annex-B, each a frame's NAL units (SPS and PPS go with
// the key frame they precede).
func encodeH264(t *testing.T, ctx context.Context, ffmpeg string) [][]byte {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ectx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
		"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "10", "-threads", "1",
		"-pix_fmt", "yuv420p", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg encoding the WHIP publisher's video: %v", err)
	}
	r, err := h264reader.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var units [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			units = append(units, cur)
			cur = nil
		}
	}
	if len(units) < 20 {
		t.Fatalf("ffmpeg made %d frames, want 30", len(units))
	}
	return units
}

// whipPublisher is a WHIP encoder as OBS is one: a send-only H.264 and
// Opus PeerConnection whose offer carries every candidate (no trickle).
type whipPublisher struct {
	t            *testing.T
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	stop         chan struct{}
	wg           sync.WaitGroup
	once         sync.Once
}

func newWHIPPublisher(t *testing.T) *whipPublisher {
	t.Helper()
	pc, err := client.LoopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &whipPublisher{t: t, pc: pc, stop: make(chan struct{})}
	t.Cleanup(p.close)
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "encoder")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "encoder")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticSample{p.video, p.audio} {
		tc, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		// RTCP (the hosting node's PLIs and reports) is read so pion's
		// interceptors see it; the sender's reads end when pc closes.
		p.wg.Go(func() {
			for {
				if _, _, err := tc.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	return p
}

// offer is the local offer once ICE gathering completed.
func (p *whipPublisher) offer() string {
	p.t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.t.Fatal("ICE gathering did not complete within 10 s")
	}
	return p.pc.LocalDescription().SDP
}

// start applies the answer and sends frames in a loop at 10 fps, with a
// 20 ms Opus packet every 20 ms, until close (at most 60 s).
func (p *whipPublisher) start(answer string, frames [][]byte) {
	p.t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.t.Fatal(err)
	}
	p.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// An Opus frame of silence (CELT, 20 ms).
		silence := []byte{0xf8, 0xff, 0xfe}
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_ = p.audio.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
			if i%5 == 0 {
				_ = p.video.WriteSample(media.Sample{Data: frames[(i/5)%len(frames)], Duration: 100 * time.Millisecond})
			}
		}
	})
}

func (p *whipPublisher) close() {
	p.once.Do(func() {
		close(p.stop)
		_ = p.pc.Close()
		p.wg.Wait()
	})
}
