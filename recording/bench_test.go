package recording

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

// BenchmarkTrackWriter is the CPU a recorded track costs per RTP packet:
// a TrackWriter fed one camera (VP8, VP9 or H.264, 320x240 at 300 kbit/s,
// packets of up to 1200 bytes) or one microphone (Opus, 20 ms), into
// real files in a temporary directory, with the recording's fsync
// schedule running. Each packet is copied as WriteRTP copies it and
// arrives when its timestamp says, so the timeline and the writers do
// what they do in a call (WriteRTP itself stamps time.Now(), which a
// benchmark running faster than real time would turn into jumps).
// docs/benchmarks.md ("Recording") has figures.
func BenchmarkTrackWriter(b *testing.B) {
	vp8, _, _ := mediatest.VP8(b, 4)
	vp9, _, _ := mediatest.VP9(b, 4)
	h264 := mediatest.H264(b, 4, "-profile:v", "baseline")
	opus := mediatest.Opus(b, 4)
	packetize := func(pz rtp.Packetizer, frames [][]byte, samples uint32) []*rtp.Packet {
		var out []*rtp.Packet
		for _, f := range frames {
			out = append(out, pz.Packetize(f, samples)...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		info  TrackInfo
		pkts  []*rtp.Packet
		rate  uint32
		every uint32 // RTP ticks per frame
	}{
		{"VP8", TrackInfo{SID: "TR_v", Kind: "video", Codec: "video/VP8"},
			packetize(rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewFixedSequencer(0), 90000), vp8, 3600), 90000, 3600},
		{"VP9", TrackInfo{SID: "TR_v9", Kind: "video", Codec: "video/VP9"},
			packetize(rtp.NewPacketizer(1200, 98, 1, &codecs.VP9Payloader{}, rtp.NewFixedSequencer(0), 90000), vp9, 3600), 90000, 3600},
		{"H264", TrackInfo{SID: "TR_h", Kind: "video", Codec: "video/H264"},
			packetize(rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewFixedSequencer(0), 90000), h264, 3600), 90000, 3600},
		{"Opus", TrackInfo{SID: "TR_a", Kind: "audio", Codec: "audio/opus", Channels: 1},
			packetize(rtp.NewPacketizer(1200, 111, 1, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(0), 48000), opus, 960), 48000, 960},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := openStore(b, DefaultConfig(), b.TempDir())
			r, err := s.Start("bench", "bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			w, err := r.AddTrack(tc.info)
			if err != nil {
				b.Fatal(err)
			}
			first := tc.pkts[0].Timestamp
			// One pass over the media, in RTP ticks; each later pass
			// follows on with a frame's gap.
			span := tc.pkts[len(tc.pkts)-1].Timestamp - first + tc.every
			n := len(tc.pkts)
			bytes := 0
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				p := tc.pkts[i%n]
				h := p.Header.Clone()
				h.SequenceNumber = uint16(i)
				loop := uint32(i / n)
				h.Timestamp = p.Timestamp + loop*span
				arrival := r.start.Add(time.Duration(h.Timestamp-first) * time.Second / time.Duration(tc.rate))
				if err := w.push(&rtp.Packet{Header: h, Payload: append([]byte(nil), p.Payload...)}, arrival); err != nil {
					b.Fatal(err)
				}
				bytes += len(p.Payload)
				i++
			}
			b.StopTimer()
			b.ReportMetric(float64(bytes)/float64(i), "B/packet")
			if _, err := s.Stop("bench"); err != nil {
				b.Fatal(err)
			}
			if st := r.Manifest().Tracks[0]; st.Frames == 0 {
				b.Fatalf("nothing recorded: %+v", st)
			}
		})
	}
}
