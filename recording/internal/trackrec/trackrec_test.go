package trackrec

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

func newVP8(t *testing.T, out io.Writer, start time.Time) *Video {
	t.Helper()
	v, err := NewVideo(out, "video/VP8", start)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTimelineUnwrapsAndStartsAtArrival(t *testing.T) {
	start := time.Unix(1000, 0)
	c := timeline{start: start, rate: 90000}
	first := uint32(0xFFFF_FF00) // a variable, so first+90000 wraps as on the wire
	if at := c.at(first, start.Add(2*time.Second)); at != 2*time.Second {
		t.Fatalf("first packet at %v, want its arrival, 2s", at)
	}
	// 90000 ticks later, across the 32-bit wrap: one second on.
	if at := c.at(first+90000, start.Add(time.Hour)); at != 3*time.Second {
		t.Fatalf("after the wrap at %v, want 3s (arrival times after the first do not matter)", at)
	}
	// A late packet from before the wrap still maps back.
	if at := c.at(first+45000, start.Add(time.Hour)); at != 2500*time.Millisecond {
		t.Fatalf("late packet at %v, want 2.5s", at)
	}
}

// A timestamp that jumps ahead of its arrival (the publisher's clock, not
// time passing) puts the media at its arrival, and the track goes on
// from there.
func TestTimelineJumpAheadReanchors(t *testing.T) {
	start := time.Unix(1000, 0)
	c := timeline{start: start, rate: 48000}
	c.at(0, start.Add(time.Second))
	if at := c.at(48000, start.Add(2*time.Second)); at != 2*time.Second {
		t.Fatalf("at %v, want 2s", at)
	}
	if at := c.at(48000+8*48000, start.Add(2500*time.Millisecond)); at != 10*time.Second {
		t.Fatalf("8 s ahead at %v, want 10s: a backlog keeps its timestamps", at)
	}
	if at := c.at(48000+60*48000, start.Add(3*time.Second)); at != 3*time.Second {
		t.Fatalf("after a 60 s jump at %v, want its arrival, 3s", at)
	}
	if at := c.at(48000+61*48000, start.Add(4*time.Second)); at != 4*time.Second {
		t.Fatalf("one second later at %v, want 4s", at)
	}
}

// A VP8 track arriving 1.5 s into the recording, reordered, with one
// packet lost: the file starts at 1.5 s, the frames after the loss wait
// for the next key frame (and one is asked for), and what is written
// decodes without a single error.
func TestVideoRecording(t *testing.T) {
	frames, _, _ := mediatest.VP8(t, 4) // key frames at 0, 1, 2, 3 s
	start := time.Now()
	var out bytes.Buffer
	v := newVP8(t, &out, start)
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var pkts []*rtp.Packet
	var frameOf []int
	for i, f := range frames {
		for _, p := range pz.Packetize(f, 3600) {
			pkts = append(pkts, p)
			frameOf = append(frameOf, i)
		}
	}
	wanted := false
	for i := 0; i < len(pkts); i++ {
		if frameOf[i] == 30 && (i == 0 || frameOf[i-1] != 30) {
			continue // the first packet of frame 30 is lost
		}
		if i%7 == 3 && i+1 < len(pkts) {
			pkts[i], pkts[i+1] = pkts[i+1], pkts[i] // reordered on the way
		}
		arrival := start.Add(1500*time.Millisecond + time.Duration(frameOf[i])*40*time.Millisecond)
		want, err := v.Push(pkts[i], arrival)
		if err != nil {
			t.Fatal(err)
		}
		if want && frameOf[i] > 30 {
			wanted = true
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if !wanted {
		t.Fatal("the loss did not ask for a key frame")
	}
	st := v.Stats()
	if st.Frames != 80 || st.Skipped != 19 { // frames 31-49 wait for the key frame at 50; 30 never completes
		t.Fatalf("stats %+v, want 80 frames written and 19 skipped", st)
	}
	path := filepath.Join(t.TempDir(), "video.webm")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := mediatest.ProbeFile(t, path)
	if pr.Frames != 80 {
		t.Fatalf("ffprobe decodes %d frames, want 80", pr.Frames)
	}
	if pr.StartTime < 1450*time.Millisecond || pr.StartTime > 1550*time.Millisecond {
		t.Fatalf("starts at %v, want 1.5 s (on the recording's timeline)", pr.StartTime)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}

// An Opus track arriving 1 s into the recording, two packets swapped and
// one lost: silence before it, the tone from 1 s, 5 s in all.
func TestAudioRecording(t *testing.T) {
	packets := mediatest.Opus(t, 4)
	start := time.Now()
	var out bytes.Buffer
	a, err := NewAudio(&out, 1, 1, start)
	if err != nil {
		t.Fatal(err)
	}
	pkts := opusPackets(packets)
	pkts[10], pkts[11] = pkts[11], pkts[10]
	for i, p := range pkts {
		if i == 50 {
			continue
		}
		// Packet 11 came first and 10 right after it, both when 11 was due
		// (a packet cannot come before it was made).
		slot := i
		if i == 10 {
			slot = 11
		}
		if err := a.Push(p, start.Add(time.Second+time.Duration(slot)*20*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Frames != len(pkts)-1 || st.Skipped != 0 {
		t.Fatalf("stats %+v, want %d packets written", st, len(pkts)-1)
	}
	path := filepath.Join(t.TempDir(), "audio.ogg")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	want := time.Second + time.Duration(len(pkts))*20*time.Millisecond
	if d := mediatest.AudioDuration(t, path); d != want {
		t.Fatalf("decodes to %v, want %v", d, want)
	}
	if v := mediatest.MaxVolume(t, path, 0.1, 0.9); v > -60 {
		t.Fatalf("before the track arrived: %.1f dB, want silence", v)
	}
	if v := mediatest.MaxVolume(t, path, 1.2, 4.8); v < -20 {
		t.Fatalf("the tone peaks at %.1f dB", v)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}

// A loss near the end of a track, with no key frame after it before the
// recording stops: the frames after the loss cannot be written, but the
// file still lasts until the last of them came (its last frame held),
// not seconds less than the recording.
func TestVideoLossAtTheEndKeepsTheLength(t *testing.T) {
	frames, _, _ := mediatest.VP8(t, 4) // key frames at 0, 1, 2, 3 s
	start := time.Now()
	path := filepath.Join(t.TempDir(), "video.webm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := newVP8(t, f, start)
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	for i, fr := range frames {
		for j, p := range pz.Packetize(fr, 3600) {
			if i == 80 && j == 0 {
				continue // lost: frames 80-99 wait for a key frame that never comes
			}
			if _, err := v.Push(p, start.Add(time.Second+time.Duration(i)*40*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Frames != 80 {
		t.Fatalf("stats %+v, want the 80 frames before the loss written", st)
	}
	pr := mediatest.ProbeFile(t, path)
	// The last frame came 1 s + 99 x 40 ms into the recording, and lasts
	// one frame: 5 s.
	if pr.Duration < 4900*time.Millisecond || pr.Duration > 5100*time.Millisecond {
		t.Fatalf("the file lasts %v, want 5 s (the track's last frame came at 4.96 s)", pr.Duration)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}
