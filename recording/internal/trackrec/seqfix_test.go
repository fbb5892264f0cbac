package trackrec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

// TestVideoPaddingIsNotLoss: padding-only packets between frames (a
// browser's bandwidth probes) and gaps where an SFU dropped such packets
// cost no frame; a gap inside a frame, or a whole frame missing between
// two, still does (the frames after it wait for a key frame).
func TestVideoPaddingIsNotLoss(t *testing.T) {
	frames, _, _ := mediatest.VP8(t, 2) // key frames at 0 and 1 s
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(1000), 90000)
	type pkt struct {
		p     *rtp.Packet
		frame int
	}
	var in []pkt
	for i, f := range frames {
		for _, p := range pz.Packetize(f, 3600) {
			in = append(in, pkt{p, i})
		}
	}
	run := func(drop func(frame int, first bool) bool) Stats {
		start := time.Now()
		var out bytes.Buffer
		v := newVP8(t, &out, start)
		seq := uint16(5000)
		for i, x := range in {
			first := i == 0 || in[i-1].frame != x.frame
			if first && x.frame%5 == 2 {
				seq += 3 // the SFU dropped three padding packets here
			}
			if first && x.frame%5 == 4 {
				// Two padding-only packets arrive here.
				for range 2 {
					pad := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: x.p.Timestamp - 3600, SSRC: 1}}
					seq++
					if _, err := v.Push(pad, start.Add(time.Duration(x.frame)*40*time.Millisecond)); err != nil {
						t.Fatal(err)
					}
				}
			}
			p := x.p.Clone()
			p.SequenceNumber = seq
			seq++
			if drop(x.frame, first) {
				continue
			}
			if _, err := v.Push(p, start.Add(time.Duration(x.frame)*40*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		return v.Stats()
	}
	if st := run(func(int, bool) bool { return false }); st.Frames != len(frames) || st.Skipped != 0 {
		t.Fatalf("padding only: %+v, want all %d frames and none skipped", st, len(frames))
	}
	// Frame 10 lost whole (between two padding gaps' positions): frames
	// 11-24 wait for the key frame at 25.
	if st := run(func(f int, _ bool) bool { return f == 10 }); st.Frames != len(frames)-15 || st.Skipped != 14 {
		t.Fatalf("a lost frame: %+v, want %d frames and 14 skipped", st, len(frames)-15)
	}
}

// TestVideoFramesInOneMillisecond: two frames a tick apart (a simulcast
// switch can do that) get distinct timestamps a frame interval apart,
// which players and ffmpeg need.
func TestVideoFramesInOneMillisecond(t *testing.T) {
	frames, _, _ := mediatest.VP8(t, 1)
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(1), 90000)
	start := time.Now()
	var out bytes.Buffer
	v := newVP8(t, &out, start)
	for i, f := range frames {
		samples := uint32(3600)
		if i == 5 {
			samples = 1 // frame 6 one tick after frame 5
		}
		for _, p := range pz.Packetize(f, samples) {
			if _, err := v.Push(p, start.Add(time.Duration(i)*40*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Frames != len(frames) {
		t.Fatalf("%+v, want all %d frames", st, len(frames))
	}
	path := filepath.Join(t.TempDir(), "v.webm")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out2, err := exec.Command(mediatest.Tool(t, "ffprobe"), "-v", "error", "-select_streams", "0",
		"-show_entries", "packet=pts", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	// What the issue checks a recording with: ffmpeg decoding the file
	// prints nothing. At a frame rate it guesses from the file (25 here),
	// two frames closer than a frame interval would share a timestamp.
	if msg, err := exec.Command(mediatest.Tool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("ffmpeg decoding: %v\n%s", err, msg)
	}
	last := -1
	for _, f := range strings.Fields(string(out2)) {
		pts, err := strconv.Atoi(strings.Trim(f, ","))
		if err != nil {
			t.Fatalf("ffprobe: %q", out2)
		}
		if pts <= last {
			t.Fatalf("packet timestamps %s: %d after %d", strings.Join(strings.Fields(string(out2)), " "), pts, last)
		}
		last = pts
	}
}

// TestVideoFrameRateRises: a publisher that sends 5 fps (a starved
// browser) and then 25 fps keeps its frames on the recording's clock. A
// recorder that took every faster frame for a simulcast switch spaced
// them all at the slow interval, and the track ran on for many seconds
// after the recording ended.
func TestVideoFrameRateRises(t *testing.T) {
	frames, _, _ := mediatest.VP8(t, 6)
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(1), 90000)
	start := time.Now()
	var out bytes.Buffer
	v := newVP8(t, &out, start)
	var now time.Duration
	for i, f := range frames {
		step := 40 * time.Millisecond
		if i < 10 {
			step = 200 * time.Millisecond
		}
		for _, p := range pz.Packetize(f, uint32(step*90000/time.Second)) {
			if _, err := v.Push(p, start.Add(now)); err != nil {
				t.Fatal(err)
			}
		}
		now += step
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if st.Frames != len(frames) {
		t.Fatalf("%+v, want all %d frames", st, len(frames))
	}
	if d := st.Last - now; d.Abs() > 500*time.Millisecond {
		t.Errorf("the last frame is at %v, it was sent at %v", st.Last, now)
	}
}
