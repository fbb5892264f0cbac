package rtmp

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// timingTranscoder wraps a Transcoder and timestamps what goes in and out.
type timingTranscoder struct {
	Transcoder
	mu   sync.Mutex
	in   []time.Time // per AAC access unit written
	out  []time.Time // per Opus packet read
	rate int
	// samples counts the 48 kHz samples of the Opus packets read so far;
	// outEnd[j] is the count at the end of packet j.
	samples int
	outEnd  []int
}

type timingStream struct {
	TranscodeStream
	t *timingTranscoder
}

func (tt *timingTranscoder) Start(ctx context.Context, cfg AudioConfig) (TranscodeStream, error) {
	st, err := tt.Transcoder.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	tt.mu.Lock()
	tt.rate = cfg.SampleRate
	tt.mu.Unlock()
	return &timingStream{st, tt}, nil
}

func (s *timingStream) WriteAAC(au []byte) error {
	err := s.TranscodeStream.WriteAAC(au)
	s.t.mu.Lock()
	s.t.in = append(s.t.in, time.Now())
	s.t.mu.Unlock()
	return err
}

func (s *timingStream) ReadOpus() (OpusPacket, error) {
	p, err := s.TranscodeStream.ReadOpus()
	if err == nil {
		s.t.mu.Lock()
		s.t.out = append(s.t.out, time.Now())
		s.t.samples += p.Samples
		s.t.outEnd = append(s.t.outEnd, s.t.samples)
		s.t.mu.Unlock()
	}
	return p, err
}

// delays pairs each Opus packet with the AAC frame (1024 samples)
// that holds its last sample: the packet could not exist before that frame
// was written, so the difference is what the transcoder added.
func (tt *timingTranscoder) delays() []time.Duration {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	var d []time.Duration
	for j, o := range tt.out {
		endSec := float64(tt.outEnd[j]) / 48000
		if endSec < 1 {
			continue // first second: ffmpeg start-up, not steady state
		}
		k := int(math.Ceil(endSec*float64(tt.rate)/1024)) - 1
		if k < 0 || k >= len(tt.in) {
			continue
		}
		d = append(d, o.Sub(tt.in[k]))
	}
	return d
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkIngestLatency publishes 10 s with ffmpeg (-re) and reports the
// delay Parley adds: FLV video tag complete -> its RTP packets handed to
// the Sink, and AAC frame written to the transcoder -> Opus packet out,
// after a one-second warm-up.
//
//	go test ./rtmp -run XXX -bench IngestLatency -benchtime 1x
func BenchmarkIngestLatency(b *testing.B) {
	requireFFmpeg(b)
	for i := 0; i < b.N; i++ {
		var mu sync.Mutex
		var video []time.Duration
		tt := &timingTranscoder{Transcoder: NewFFmpegTranscoder(FFmpegOptions{Path: ffmpegBin, Bitrate: 64000})}
		ts := startServer(b, fakeKeys{"k": nil}, func(_ *Config, d *Deps) { d.Transcoder = tt })
		ts.srv.onVideoPkts = func(in time.Time, _ []*rtp.Packet) {
			mu.Lock()
			video = append(video, time.Since(in))
			mu.Unlock()
		}
		p := startFFmpeg(b, publishOpts{key: "k", seconds: 10}.args(ts.addr))
		if stderr, err := p.Wait(); err != nil {
			b.Fatalf("ffmpeg: %v\n%s", err, stderr)
		}
		s := <-ts.sink.started
		<-s.closedCh
		audio := tt.delays()
		video = video[min(30, len(video)):] // same warm-up as audio
		if len(video) < 200 || len(audio) < 300 {
			b.Fatalf("too few samples: video %d audio %d", len(video), len(audio))
		}
		b.ReportMetric(float64(percentile(video, 0.5).Microseconds()), "video-p50-us")
		b.ReportMetric(float64(percentile(video, 0.95).Microseconds()), "video-p95-us")
		b.ReportMetric(float64(percentile(video, 0.99).Microseconds()), "video-p99-us")
		b.ReportMetric(float64(percentile(audio, 0.5).Microseconds())/1000, "audio-p50-ms")
		b.ReportMetric(float64(percentile(audio, 0.95).Microseconds())/1000, "audio-p95-ms")
		b.ReportMetric(float64(percentile(audio, 0.99).Microseconds())/1000, "audio-p99-ms")
	}
}
