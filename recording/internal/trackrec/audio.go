package trackrec

import (
	"io"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/parleyhq/parley/recording/internal/oggopus"
)

// The reorder window for audio: 10 packets or 200 ms.
const (
	maxLateAudio  = 10
	maxDelayAudio = 200 * time.Millisecond
)

// Audio records an Opus track into an Ogg file on the recording's
// timeline: silence before the track's first packet and in its gaps.
type Audio struct {
	w      *oggopus.Writer
	sb     *samplebuilder.SampleBuilder
	clock  timeline
	settle settling
	stats  Stats
	// lastArrival is the latest packet's arrival, for the packets the
	// reorder window still holds at Close.
	lastArrival time.Time
}

// NewAudio records into out (channels as negotiated, 1 or 2); start is
// the recording's start.
func NewAudio(out io.Writer, channels int, serial uint32, start time.Time) (*Audio, error) {
	w, err := oggopus.NewWriter(out, channels, serial)
	if err != nil {
		return nil, err
	}
	return &Audio{
		w:     w,
		sb:    samplebuilder.New(maxLateAudio, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(maxDelayAudio)),
		clock: timeline{start: start, rate: 48000},
	}, nil
}

// Push adds one RTP packet of plain Opus.
func (a *Audio) Push(p *rtp.Packet, arrival time.Time) error {
	a.lastArrival = arrival
	if !a.settle.done {
		held := a.settle.hold(p, arrival, 48000)
		if held == nil {
			return nil // waits for the anchor (see settling)
		}
		return a.pushHeld(held)
	}
	return a.push(p, arrival)
}

// pushHeld anchors the timeline and writes the packets held until then.
func (a *Audio) pushHeld(held []heldPacket) error {
	a.settle.anchorOn(&a.clock)
	for _, h := range held {
		if err := a.push(h.p, h.arrival); err != nil {
			return err
		}
	}
	return nil
}

func (a *Audio) push(p *rtp.Packet, arrival time.Time) error {
	a.sb.Push(p)
	for s := a.sb.Pop(); s != nil; s = a.sb.Pop() {
		if err := a.packet(s.Data, s.PacketTimestamp, arrival); err != nil {
			return err
		}
	}
	return nil
}

func (a *Audio) packet(data []byte, ts uint32, arrival time.Time) error {
	at := a.clock.at(ts, arrival)
	ok, err := a.w.WritePacket(int64(at*48000/time.Second), data)
	if err != nil {
		a.stats.Skipped++
		return nil //nolint:nilerr // a malformed packet is skipped, the recording goes on
	}
	if !ok {
		a.stats.Skipped++
		return nil
	}
	if a.stats.Frames == 0 {
		a.stats.First = at
	}
	a.stats.Frames++
	a.stats.Last = at
	return nil
}

// Stats reports what was recorded so far.
func (a *Audio) Stats() Stats { return a.stats }

// Flush writes the packets collected in the open page.
func (a *Audio) Flush() error { return a.w.Flush() }

// Close writes the last page; it does not close out.
func (a *Audio) Close() error {
	if !a.settle.done {
		if err := a.pushHeld(a.settle.release()); err != nil {
			return err
		}
	}
	a.sb.Flush()
	for s := a.sb.Pop(); s != nil; s = a.sb.Pop() {
		if err := a.packet(s.Data, s.PacketTimestamp, a.lastArrival); err != nil {
			return err
		}
	}
	return a.w.Close()
}
