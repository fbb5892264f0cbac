package recording

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/recording/internal/trackrec"
)

// TrackInfo is what a recording is told of a track it should record.
type TrackInfo struct {
	SID      string
	Identity string
	Name     string
	Kind     string // audio or video
	Source   string
	Codec    string // RTP MIME type: video/VP8, video/VP9, video/H264, audio/opus
	Channels int    // audio: 1 or 2 (0 means 2, as Opus is negotiated)
}

// ErrCodec is returned for a track whose codec is not recorded yet.
var ErrCodec = errors.New("recording: codec not supported")

// errStopped is returned by writes after the recording stopped.
var errStopped = errors.New("recording: stopped")

// recorder is the per-track file format behind a TrackWriter.
type recorder interface {
	Stats() trackrec.Stats
	Flush() error
	Close() error
}

// TrackWriter records one track. It takes RTP packets like a subscriber
// connection (it implements pion's webrtc.TrackLocalWriter) and is safe
// for concurrent use with the recording's sync loop.
type TrackWriter struct {
	rec *Recording
	i   int // index in the manifest's tracks

	// mu guards the format and its writes; fmu the file's fsync and
	// close, which can take long on a busy disk and so are done without
	// mu: the SFU's writer goroutine, which feeds every track of the
	// room, must not wait for a disk flush.
	fmu        sync.Mutex
	fileClosed bool // guarded by fmu

	mu       sync.Mutex
	f        *os.File
	video    *trackrec.Video
	audio    *trackrec.Audio
	format   recorder
	closed   bool
	keyframe func() // asks the publisher for a key frame; may be nil
}

// fileExtension is the extension of t's file: .ogg for Opus, .webm for
// VP8 and VP9, .mkv for H.264 (Matroska: WebM does not allow H.264); ErrCodec
// for anything else.
func fileExtension(t TrackInfo) (string, error) {
	switch {
	case t.Kind == "audio" && strings.EqualFold(t.Codec, "audio/opus"):
		return ".ogg", nil
	case t.Kind == "video":
		if ext := trackrec.FileExtension(t.Codec); ext != "" {
			return ext, nil
		}
	}
	return "", fmt.Errorf("%w: %s %s", ErrCodec, t.Kind, t.Codec)
}

func newTrackWriter(r *Recording, i int, path string, t TrackInfo) (*TrackWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: track file: %w", err)
	}
	w := &TrackWriter{rec: r, i: i, f: f}
	out := &countingWriter{f: f, rec: r}
	switch {
	case t.Kind == "video" && trackrec.FileExtension(t.Codec) != "":
		if w.video, err = trackrec.NewVideo(out, t.Codec, r.start); err != nil {
			_ = f.Close()
			return nil, err
		}
		w.format = w.video
	case strings.EqualFold(t.Codec, "audio/opus"):
		ch := t.Channels
		if ch == 0 {
			ch = 2
		}
		if w.audio, err = trackrec.NewAudio(out, ch, uint32(i+1), r.start); err != nil {
			_ = f.Close()
			return nil, err
		}
		w.format = w.audio
	default:
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: %s", ErrCodec, t.Codec)
	}
	return w, nil
}

// OnKeyframeNeeded sets how the writer asks for a key frame (the
// recording's start, and after a lost frame).
func (w *TrackWriter) OnKeyframeNeeded(f func()) {
	w.mu.Lock()
	w.keyframe = f
	w.mu.Unlock()
}

// WriteRTP records one packet; header and payload are copied.
func (w *TrackWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	p := &rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), payload...)}
	if err := w.push(p, time.Now()); err != nil {
		return 0, err
	}
	return len(payload), nil
}

// Write records one marshalled RTP packet.
func (w *TrackWriter) Write(b []byte) (int, error) {
	p := &rtp.Packet{}
	if err := p.Unmarshal(append([]byte(nil), b...)); err != nil {
		return 0, fmt.Errorf("recording: %w", err)
	}
	if err := w.push(p, time.Now()); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *TrackWriter) push(p *rtp.Packet, now time.Time) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errStopped
	}
	var want bool
	var err error
	if w.video != nil {
		want, err = w.video.Push(p, now)
	} else {
		err = w.audio.Push(p, now)
	}
	kf := w.keyframe
	w.mu.Unlock()
	if want && kf != nil {
		kf()
	}
	if err != nil {
		w.rec.fail(err)
	}
	return err
}

// sync flushes what the format holds and fsyncs the file.
func (w *TrackWriter) sync() (trackrec.Stats, error) {
	w.mu.Lock()
	closed := w.closed
	var err error
	if !closed {
		err = w.format.Flush()
	}
	st := w.format.Stats()
	w.mu.Unlock()
	if closed {
		return st, nil
	}
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if w.fileClosed {
		return st, err
	}
	if serr := w.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("recording: fsync: %w", serr)
	}
	return st, err
}

// close finishes the file; later writes fail.
func (w *TrackWriter) close() (trackrec.Stats, error) {
	w.mu.Lock()
	if w.closed {
		st := w.format.Stats()
		w.mu.Unlock()
		return st, nil
	}
	w.closed = true
	err := w.format.Close()
	st := w.format.Stats()
	w.mu.Unlock()
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if serr := w.f.Sync(); err == nil && serr != nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	w.fileClosed = true
	return st, err
}

// countingWriter adds what reaches a track's file to its recording's size.
type countingWriter struct {
	f   *os.File
	rec *Recording
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	c.rec.wrote(int64(n))
	return n, err
}

// WriteAt patches the file (a WebM duration at close).
func (c *countingWriter) WriteAt(b []byte, off int64) (int, error) { return c.f.WriteAt(b, off) }
