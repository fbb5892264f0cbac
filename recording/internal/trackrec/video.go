package trackrec

import (
	"errors"
	"io"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/parleyhq/parley/recording/internal/webm"
)

// The reorder window: a missing packet is waited for at most
// maxDelayVideo of RTP time and maxLateVideo packets (about two seconds
// of 2 Mbit/s video), then given up: the frame is lost and the recorder
// waits for a key frame. A recording has no one waiting for its frames,
// so the window is far longer than a viewer's: a retransmission from a
// loaded publisher, answering the SFU's NACK late, still makes it, where
// giving up costs every frame until the next key frame.
const (
	maxLateVideo  = 512
	maxDelayVideo = time.Second
)

// Video records a video track (VP8 and VP9 into WebM, H.264 into
// Matroska).
type Video struct {
	out    io.Writer
	format videoFormat
	w      *webm.Writer
	sb     *samplebuilder.SampleBuilder
	clock  timeline
	settle settling
	// lastArrival is the latest packet's arrival, for the frames the
	// reorder window still holds at Close.
	lastArrival time.Time

	waitKey bool
	stats   Stats
	seq     seqFix
	// shift moves every frame from a simulcast switch on later (see
	// frame); interval is the track's usual gap between frames.
	shift, interval time.Duration
	lastRaw         time.Duration // the last frame's time before the shift
	// skippedTo is the time of the last frame skipped for want of a key
	// frame after the first was written.
	skippedTo time.Duration
}

// minFrameGap: two camera or screen frames are never closer than this
// (100 fps); a closer gap does not count towards the usual interval.
const minFrameGap = 10 * time.Millisecond

// maxFrameInterval: a longer gap is a pause (a muted camera, a paused
// layer), not the source's frame interval.
const maxFrameInterval = 200 * time.Millisecond

// Stats counts what a recorder did with a track.
type Stats struct {
	Frames  int           // written
	Skipped int           // not written: before a key frame, after a loss, late
	First   time.Duration // recording time of the first frame written
	Last    time.Duration // and of the last
}

// NewVideo records a track of codec (its RTP MIME type: video/VP8,
// video/VP9 or video/H264) into out; start is the recording's start.
func NewVideo(out io.Writer, codec string, start time.Time) (*Video, error) {
	f, err := newVideoFormat(codec)
	if err != nil {
		return nil, err
	}
	return &Video{
		out:     out,
		format:  f,
		sb:      samplebuilder.New(maxLateVideo, f.depacketizer(), 90000, samplebuilder.WithMaxTimeDelay(maxDelayVideo)),
		clock:   timeline{start: start, rate: 90000},
		waitKey: true,
	}, nil
}

// Push adds one RTP packet. wantKeyframe asks the caller to request a key
// frame from the publisher (the recording starts, or a frame was lost).
func (v *Video) Push(p *rtp.Packet, arrival time.Time) (wantKeyframe bool, err error) {
	v.lastArrival = arrival
	if !v.settle.done {
		first := !v.settle.started
		held := v.settle.hold(p, arrival, 90000)
		if held == nil {
			// The frames wait for the anchor (see settling), the key
			// frame the recording starts with need not.
			return first, nil
		}
		return v.pushHeld(held)
	}
	return v.push(p, arrival)
}

// pushHeld anchors the timeline and writes the packets held until then.
func (v *Video) pushHeld(held []heldPacket) (wantKeyframe bool, err error) {
	v.settle.anchorOn(&v.clock)
	for _, h := range held {
		want, err := v.push(h.p, h.arrival)
		wantKeyframe = wantKeyframe || want
		if err != nil {
			return wantKeyframe, err
		}
	}
	return wantKeyframe, nil
}

func (v *Video) push(p *rtp.Packet, arrival time.Time) (wantKeyframe bool, err error) {
	if !v.seq.in(p) {
		return false, nil
	}
	v.sb.Push(p)
	for s := v.sb.Pop(); s != nil; s = v.sb.Pop() {
		want, err := v.frame(s.Data, s.PacketTimestamp, s.PrevDroppedPackets > 0, arrival)
		wantKeyframe = wantKeyframe || want
		if err != nil {
			return wantKeyframe, err
		}
	}
	return wantKeyframe, nil
}

func (v *Video) frame(data []byte, ts uint32, lost bool, arrival time.Time) (wantKeyframe bool, err error) {
	data, key, ok := v.format.frame(data)
	if !ok {
		lost = true // undecodable: as if lost
	}
	if lost && !key {
		v.waitKey = true
	}
	if ok && data == nil {
		return false, nil
	}
	if v.waitKey && !key {
		v.stats.Skipped++
		if v.stats.Frames > 0 {
			// Media that came but cannot be written before a key frame:
			// the file still lasts until it (see Close).
			v.skippedTo = v.clock.at(ts, arrival).Truncate(time.Millisecond) + v.shift
		}
		return true, nil
	}
	// A simulcast switch numbers the new layer's key frame right after
	// the old layer's last frame (a tick to a few tens of ms later).
	// Players and ffmpeg, which read the file at the frame rate it shows,
	// would give both one timestamp; so a frame much closer to the last
	// than the track's usual interval, and all after it, move later by
	// what makes the gap the usual interval, as the source spaced them.
	// The usual interval is learnt from the publisher's own timestamps
	// (before any shift), so a frame rate that rises (a starved browser
	// recovering) is followed rather than taken for a switch on every
	// frame; and no shift places a frame after it arrived, so the track
	// cannot drift away from the recording's clock.
	raw := v.clock.at(ts, arrival).Truncate(time.Millisecond)
	at := raw + v.shift
	if v.stats.Frames > 0 {
		if rawGap := raw - v.lastRaw; rawGap >= minFrameGap && rawGap <= maxFrameInterval {
			if v.interval == 0 {
				v.interval = rawGap
			} else {
				v.interval += (rawGap - v.interval) / 8
			}
		}
		gap := at - v.stats.Last
		switch {
		case v.interval > 0 && gap < v.interval*3/5:
			at = v.stats.Last + v.interval
		case gap <= 0:
			at = v.stats.Last + time.Millisecond
		}
		if !arrival.IsZero() {
			if now := arrival.Sub(v.clock.start).Truncate(time.Millisecond); at > now {
				at = max(now, raw, v.stats.Last+time.Millisecond)
			}
		}
		v.shift = max(at-raw, 0)
	}
	v.lastRaw = raw
	if v.w == nil {
		track, ok := v.format.track(data)
		if !ok {
			v.stats.Skipped++
			return true, nil
		}
		if v.w, err = webm.NewWriter(v.out, track); err != nil {
			return false, err
		}
	}
	if err := v.w.WriteFrame(at, key, data); err != nil {
		if errors.Is(err, webm.ErrNotMonotonic) {
			v.stats.Skipped++ // a frame from before the last one: drop it
			return false, nil
		}
		return false, err
	}
	v.waitKey = false
	if v.stats.Frames == 0 {
		v.stats.First = at
	}
	v.stats.Frames++
	v.stats.Last = at
	return false, nil
}

// Stats reports what was recorded so far.
func (v *Video) Stats() Stats { return v.stats }

// Flush writes the frames collected in the open cluster, so a pause in
// the track (a muted camera) does not hold them back.
func (v *Video) Flush() error {
	if v.w == nil {
		return nil
	}
	return v.w.Flush()
}

// Close writes what is still in the reorder window (complete frames
// only) and finishes the file; it does not close out.
func (v *Video) Close() error {
	if !v.settle.done {
		if _, err := v.pushHeld(v.settle.release()); err != nil {
			return err
		}
	}
	v.sb.Flush()
	for s := v.sb.Pop(); s != nil; s = v.sb.Pop() {
		if _, err := v.frame(s.Data, s.PacketTimestamp, s.PrevDroppedPackets > 0, v.lastArrival); err != nil {
			return err
		}
	}
	if v.w == nil {
		return nil
	}
	// A track whose last frames were lost or waited for a key frame
	// that never came before the end still reached the recorder until
	// then: the file lasts that long, its last frame held, as a frozen
	// picture in the meeting looked (rather than ending seconds early).
	if v.skippedTo > v.stats.Last {
		v.w.LastUntil(v.skippedTo + v.interval)
	}
	return v.w.Close()
}
