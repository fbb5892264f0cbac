package rtmp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// audioQueue bounds AAC frames waiting for the transcoder (~1.5 s at
// 44.1 kHz). When it is full, frames are dropped and counted: the RTMP read
// loop (which also carries video) must never wait for audio.
const audioQueue = 64

// audioPipelineOptions are what one publish's audio path needs.
type audioPipelineOptions struct {
	Config     AudioConfig
	Transcoder Transcoder
	Writer     TrackWriter
	Session    Session
	SSRC       uint32
	TSOffset   uint32
	RestartMin time.Duration
	RestartMax time.Duration
	Logger     *slog.Logger
	Metrics    *metrics
	// onOpus, when set, is called after each packet is written (tests,
	// latency measurement).
	onOpus func(p *rtp.Packet)
	// OnWriteError is called with each error the Writer returns; the
	// publish learns from it whether it must end (key revoked, session
	// ended), which the connection's goroutine does (this one cannot).
	OnWriteError func(error)
}

// audioPipeline supervises the transcoder for one publish: it feeds AAC
// in, turns Opus out into RTP on the session's audio track, and restarts a
// dying transcoder with exponential backoff. Video never waits for it.
type audioPipeline struct {
	o      audioPipelineOptions
	in     chan []byte
	done   chan struct{}
	cancel context.CancelFunc

	// RTP state, touched only by the reader goroutine of the current run.
	seq      uint16
	ts       uint32
	lastWall time.Time
	started  bool
}

func startAudioPipeline(ctx context.Context, o audioPipelineOptions) *audioPipeline {
	ctx, cancel := context.WithCancel(ctx)
	a := &audioPipeline{o: o, in: make(chan []byte, audioQueue), done: make(chan struct{}), cancel: cancel, ts: o.TSOffset}
	go func() {
		defer close(a.done)
		a.supervise(ctx)
	}()
	return a
}

// push queues one raw AAC access unit; it never blocks. The caller's
// buffer is copied.
func (a *audioPipeline) push(au []byte) {
	select {
	case a.in <- append([]byte(nil), au...):
	default:
		a.o.Metrics.audioDropped()
	}
}

// stop ends the pipeline and waits until the transcoder is gone.
func (a *audioPipeline) stop() {
	a.cancel()
	<-a.done
}

func (a *audioPipeline) supervise(ctx context.Context) {
	backoff := a.o.RestartMin
	first := true
	for ctx.Err() == nil {
		if !first {
			a.o.Metrics.transcoderRestart()
		}
		first = false
		began := time.Now()
		err := a.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		a.o.Logger.Warn("audio transcoder stopped; video continues", "err", err, "retry_in", backoff)
		a.o.Session.AudioUnavailable(err)
		// A run that lasted a while resets the backoff: it was a crash,
		// not a crash loop.
		if time.Since(began) > 30*time.Second {
			backoff = a.o.RestartMin
		}
		t := time.NewTimer(backoff)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-a.in: // stale audio is worthless; drop while down
				a.o.Metrics.audioDropped()
			case <-t.C:
				break wait
			}
		}
		backoff = min(backoff*2, a.o.RestartMax)
	}
}

// runOnce runs one transcoder until it fails or ctx ends.
func (a *audioPipeline) runOnce(ctx context.Context) error {
	st, err := a.o.Transcoder.Start(ctx, a.o.Config)
	if err != nil {
		return fmt.Errorf("start transcoder: %w", err)
	}
	defer func() { _ = st.Close() }()
	a.started = false
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr <- a.readLoop(st)
	}()
	defer wg.Wait()
	defer func() { _ = st.Close() }() // unblocks readLoop before wg.Wait
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return err
		case au := <-a.in:
			if err := st.WriteAAC(au); err != nil {
				return err
			}
		}
	}
}

func (a *audioPipeline) readLoop(st TranscodeStream) error {
	for {
		op, err := st.ReadOpus()
		if err != nil {
			return err
		}
		now := time.Now()
		marker := false
		if !a.started {
			// After a (re)start, keep the RTP clock in step with wall time
			// so the receiver's jitter buffer sees a gap, not a jump back.
			if !a.lastWall.IsZero() {
				a.ts += uint32(now.Sub(a.lastWall).Seconds() * 48000)
			}
			a.started = true
			marker = true
		}
		pkt := &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         marker,
				PayloadType:    opusPayloadType,
				SequenceNumber: a.seq,
				Timestamp:      a.ts,
				SSRC:           a.o.SSRC,
			},
			Payload: op.Data,
		}
		a.seq++
		a.ts += uint32(op.Samples)
		a.lastWall = now
		if err := a.o.Writer.WriteRTP(pkt); err != nil {
			if a.o.OnWriteError != nil {
				a.o.OnWriteError(err)
			}
			a.o.Logger.Debug("audio write failed", "err", err)
		}
		if a.o.onOpus != nil {
			a.o.onOpus(pkt)
		}
	}
}
