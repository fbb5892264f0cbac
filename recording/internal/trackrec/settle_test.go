package trackrec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

// vp8Packets packetizes seconds of the test camera (25 fps), frame by
// frame.
func vp8Packets(t *testing.T, seconds int) [][]*rtp.Packet {
	t.Helper()
	frames, _, _ := mediatest.VP8(t, seconds)
	pz := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var out [][]*rtp.Packet
	for _, f := range frames {
		out = append(out, pz.Packetize(f, 3600))
	}
	return out
}

// opusPackets packetizes 20 ms Opus frames, one packet each.
func opusPackets(frames [][]byte) []*rtp.Packet {
	pz := rtp.NewPacketizer(1200, 111, 1, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	var pkts []*rtp.Packet
	for _, f := range frames {
		pkts = append(pkts, pz.Packetize(f, 960)...)
	}
	return pkts
}

// A camera whose media starts 2 s into the recording, but whose first
// packets are held up by a 1 s stall on the way and then come in a
// burst, the rest on time: the file starts at 2 s and each frame sits
// where it was made, not a second after it came (which put a late
// joiner's last frames past the recording's end).
func TestVideoFirstPacketHeldUpStaysOnTime(t *testing.T) {
	frames := vp8Packets(t, 4)
	start := time.Now()
	path := filepath.Join(t.TempDir(), "video.webm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := newVP8(t, f, start)
	asked := false
	for i, pkts := range frames {
		made := 2*time.Second + time.Duration(i)*40*time.Millisecond
		arrival := max(made, 3*time.Second) // the stall: nothing before 3 s
		for _, p := range pkts {
			want, err := v.Push(p, start.Add(arrival))
			if err != nil {
				t.Fatal(err)
			}
			asked = asked || want && i == 0
		}
	}
	if !asked {
		t.Fatal("no key frame asked for when the track started")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if st.Frames != 100 {
		t.Fatalf("stats %+v, want all 100 frames", st)
	}
	if st.First != 2*time.Second || st.Last != 2*time.Second+99*40*time.Millisecond {
		t.Fatalf("frames from %v to %v, want from 2s to 5.96s, when they were made", st.First, st.Last)
	}
	pr := mediatest.ProbeFile(t, path)
	if pr.StartTime < 1950*time.Millisecond || pr.StartTime > 2050*time.Millisecond {
		t.Fatalf("the file starts at %v, want 2 s", pr.StartTime)
	}
}

// Media fed faster than real time (a backlog; four seconds at once)
// keeps its own timing: the anchor is found once and never squeezes it.
func TestVideoFedAtOnceKeepsItsLength(t *testing.T) {
	frames := vp8Packets(t, 5)
	start := time.Now()
	var out bytes.Buffer
	v := newVP8(t, &out, start)
	for i, pkts := range frames {
		// Four seconds at once at 5 s, then the camera goes on in real
		// time.
		arrival := 5 * time.Second
		if i >= 100 {
			arrival += time.Duration(i-99) * 40 * time.Millisecond
		}
		for _, p := range pkts {
			if _, err := v.Push(p, start.Add(arrival)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if got, want := st.Last-st.First, 124*40*time.Millisecond; got != want {
		t.Fatalf("frames span %v, want %v (125 frames 40 ms apart)", got, want)
	}
	if st.Last > 5*time.Second+25*40*time.Millisecond {
		t.Fatalf("the last frame at %v, after it came (%v)", st.Last, 5*time.Second+25*40*time.Millisecond)
	}
}

// An audio track held up the same way starts where its media was made.
func TestAudioFirstPacketHeldUpStaysOnTime(t *testing.T) {
	packets := mediatest.Opus(t, 3)
	start := time.Now()
	var out bytes.Buffer
	a, err := NewAudio(&out, 1, 1, start)
	if err != nil {
		t.Fatal(err)
	}
	pkts := opusPackets(packets)
	for i, p := range pkts {
		made := time.Second + time.Duration(i)*20*time.Millisecond
		if err := a.Push(p, start.Add(max(made, 1800*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.First != time.Second {
		t.Fatalf("first packet at %v, want 1s, when it was made", st.First)
	}
}
