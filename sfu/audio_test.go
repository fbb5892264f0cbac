package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu/internal/audiolevel"
	"github.com/parleyhq/parley/sfu/internal/red"
)

const levelExtID = 1

// newAudioHarness is newHarness with an audio track of the given codec
// (Opus or RED) whose packets carry an audio level.
func newAudioHarness(tb testing.TB, cfg Config, codec string) *harness {
	tb.Helper()
	h := newHarness(tb, cfg)
	fmtp := ""
	if isRED(codec) {
		fmtp = "111/111"
	}
	h.t = newPublishedTrack(h.s, trackParams{
		room:      "r",
		info:      TrackInfo{SID: "TR_a", ParticipantID: "PA_pub", Kind: "audio", Codec: codec},
		clockRate: 48000,
		fmtp:      fmtp,
		levelID:   levelExtID,
	})
	return h
}

// opusPacket is Opus frame seq (seq in payload bytes 2-3) with an audio
// level; asRED wraps it in RED with frame seq-1 as the redundant block.
func opusPacket(tb testing.TB, seq uint16, level uint8, asRED bool) []byte {
	frame := func(k uint16) []byte {
		b := make([]byte, 60)
		b[0], b[1], b[2], b[3] = 0xfc, 0xff, byte(k>>8), byte(k)
		b[len(b)-1] = byte(k)
		return b
	}
	pt, payload := uint8(111), frame(seq)
	if asRED {
		var err error
		pt = 63
		payload, err = red.Pack(nil, []red.Block{{PT: 111, Offset: 960, Payload: frame(seq - 1)}}, 111, payload)
		if err != nil {
			tb.Fatal(err)
		}
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 99}, Payload: payload}
	if err := p.Header.SetExtension(levelExtID, []byte{0x80 | level}); err != nil {
		tb.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMutedAudioSendsNothingAndResumesWithMarker: while a track is muted
// nothing reaches the subscriber and its level is not counted; after
// unmute the numbering continues without a gap (no false loss) and the
// first packet carries the marker bit, which tells the jitter buffer a
// new talk spurt starts after the timestamp jump.
func TestMutedAudioSendsNothingAndResumesWithMarker(t *testing.T) {
	h := newAudioHarness(t, DefaultConfig(), "audio/opus")
	now := time.Unix(1000, 0)
	room := audiolevel.NewRoom(audiolevel.Config{Now: func() time.Time { return now }})
	h.t.level = room.Add("PA_pub")
	w := &fakeWriter{}
	h.subscribe(t, w, 1, true)
	feed := func(from, to uint16) {
		for s := from; s <= to; s++ {
			h.t.handlePacket(opusPacket(t, s, 10, false), &h.hdr, now)
			now = now.Add(20 * time.Millisecond)
		}
	}
	feed(1, 3)
	waitFor(t, "before mute", func() bool { return w.n.Load() == 3 })
	h.t.setMuted(true)
	feed(4, 60) // loud, but muted: 1.1 s
	if u, _ := room.Tick(); u.Active != "" {
		t.Fatalf("a muted track made its owner the speaker: %+v", u)
	}
	h.t.setMuted(false)
	feed(61, 63)
	waitFor(t, "after unmute", func() bool { return w.n.Load() == 6 })
	got := w.packets()
	wantOrig := []uint16{1, 2, 3, 61, 62, 63}
	for i, p := range got {
		if p.origSeq != wantOrig[i] || p.seq != got[0].seq+uint16(i) {
			t.Fatalf("packet %d: %+v (want frame %d, sequence %d)", i, p, wantOrig[i], got[0].seq+uint16(i))
		}
		if p.marker != (i == 3) {
			t.Fatalf("packet %d (frame %d): marker %v", i, p.origSeq, p.marker)
		}
	}
}

// TestTrackLevelsByTimestampAndMute: the track hands the selector its
// packets' RTP timestamps, so 400 ms of speech arriving in one bunch (a
// stalled machine) makes its owner the speaker at once; muting the
// track ends its owner's speech at the next update.
func TestTrackLevelsByTimestampAndMute(t *testing.T) {
	h := newAudioHarness(t, DefaultConfig(), "audio/opus")
	now := time.Unix(1000, 0)
	room := audiolevel.NewRoom(audiolevel.Config{Now: func() time.Time { return now }})
	h.t.level = room.Add("PA_pub")
	for s := uint16(1); s <= 20; s++ {
		h.t.handlePacket(opusPacket(t, s, 20, false), &h.hdr, now)
	}
	u, ok := room.Tick()
	if !ok || u.Active != "PA_pub" || len(u.Speakers) != 1 {
		t.Fatalf("after a bunch of 20 loud frames: %+v %v", u, ok)
	}
	h.t.setMuted(true)
	now = now.Add(300 * time.Millisecond) // the room's MinInterval
	u, ok = room.Tick()
	if !ok || u.Active != "PA_pub" || len(u.Speakers) != 0 {
		t.Fatalf("after muting: %+v %v (want still active, no longer speaking)", u, ok)
	}
}

// BenchmarkForwardAudio is BenchmarkForward for audio packets with an
// audio level, 4 subscribers: plain Opus without and with level
// reading, RED to subscribers that negotiated it, RED unwrapped to Opus
// for subscribers that did not.
func BenchmarkForwardAudio(b *testing.B) {
	const subs = 4
	for _, c := range []struct {
		name   string
		codec  string
		opus   bool
		levels bool
	}{
		{"opus-no-levels", "audio/opus", false, false}, // the path before issue #11
		{"opus", "audio/opus", false, true},
		{"red-to-red", "audio/red", false, true},
		{"red-unwrapped", "audio/red", true, true},
	} {
		b.Run(fmt.Sprintf("%s/subs=%d", c.name, subs), func(b *testing.B) {
			h := newAudioHarness(b, DefaultConfig(), c.codec)
			if c.levels {
				h.t.level = audiolevel.NewRoom(audiolevel.Config{}).Add("PA_pub")
			}
			var queues []*sendQueue
			for i := range subs {
				d := h.subscribe(b, nil, uint32(i+1), false)
				d.bind.Store(&binding{ssrc: uint32(i + 1), pt: 100, writer: nopWriter{}, opus: c.opus})
				queues = append(queues, d.q)
			}
			pkts := make([][]byte, 256)
			for i := range pkts {
				pkts[i] = opusPacket(b, uint16(i), 30, isRED(c.codec))
			}
			buf := make([]byte, 1500)
			var hdr, whdr rtp.Header
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := pkts[i%len(pkts)]
				seq := uint16(i)
				p[2], p[3] = byte(seq>>8), byte(seq)
				h.t.handlePacket(p, &hdr, now)
				for _, q := range queues {
					select {
					case op := <-q.ch:
						q.send(op, buf, &whdr)
					default:
						b.Fatal("packet not queued")
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/fwd")
		})
	}
}
