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
	w     *oggopus.Writer
	sb    *samplebuilder.SampleBuilder
	clock timeline
	stats Stats
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
	// The reorder window hands a packet out only when a later one comes,
	// so the timeline is anchored at the first packet's own arrival.
	a.clock.anchor(p.Timestamp, arrival)
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
	a.sb.Flush()
	for s := a.sb.Pop(); s != nil; s = a.sb.Pop() {
		if err := a.packet(s.Data, s.PacketTimestamp, time.Time{}); err != nil {
			return err
		}
	}
	return a.w.Close()
}
