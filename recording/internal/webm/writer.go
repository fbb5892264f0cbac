package webm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Codec IDs of the tracks Parley records (audio goes to Ogg). VP8 and
// VP9 make a WebM file; H.264, which WebM does not allow, a Matroska one
// (the same layout, DocType "matroska").
const (
	CodecVP8  = "V_VP8"
	CodecVP9  = "V_VP9"
	CodecH264 = "V_MPEG4/ISO/AVC"
)

// MaxClusterDuration bounds what a crash can lose: a cluster is written
// when it closes, at the latest this long after it opened.
const MaxClusterDuration = time.Second

// Track describes the one (video) track of a file.
type Track struct {
	Codec         string // CodecVP8, CodecVP9 or CodecH264
	Width, Height int
	// CodecPrivate is the decoder's configuration: for H.264 the
	// AVCDecoderConfigurationRecord (avcC), whose NAL length size the
	// frames' length prefixes must match. VP8 and VP9 have none.
	CodecPrivate []byte
}

// maxCodecPrivate bounds the configuration a track carries (an avcC is a
// few dozen bytes; two maximal parameter sets stay under it).
const maxCodecPrivate = 1 << 17

// DocType is the EBML DocType a file with track has: "webm" for the
// codecs WebM allows, else "matroska".
func DocType(track Track) string {
	if track.Codec == CodecH264 {
		return "matroska"
	}
	return "webm"
}

// ErrNotMonotonic is returned for a frame older than the previous one.
var ErrNotMonotonic = errors.New("webm: frame timestamp goes back")

// Writer appends one video track's frames to w. It is not safe for concurrent
// use.
type Writer struct {
	w     io.Writer
	track Track

	headerDone bool
	open       bool          // a cluster is being collected
	clusterTS  time.Duration // timestamp of the open cluster
	lastTS     time.Duration
	prevTS     time.Duration // the frame before lastTS, for the last frame's length
	cluster    []byte        // SimpleBlocks of the open cluster
	out        []byte        // the last cluster written, reused for the next
	written    int64
	durationAt int64 // file offset of the Duration float, patched by Close
	until      time.Duration
}

// LastUntil makes the file last at least until d: its last frame is held
// until then (Close writes the duration).
func (wr *Writer) LastUntil(d time.Duration) { wr.until = max(wr.until, d) }

// NewWriter starts a file with track's header; nothing is written until
// the first frame (a video file's first frame must be a key frame).
func NewWriter(w io.Writer, track Track) (*Writer, error) {
	switch track.Codec {
	case CodecVP8, CodecVP9:
	case CodecH264:
		if len(track.CodecPrivate) == 0 || len(track.CodecPrivate) > maxCodecPrivate {
			return nil, fmt.Errorf("webm: an H.264 track needs its avcC (CodecPrivate), got %d bytes", len(track.CodecPrivate))
		}
	default:
		return nil, fmt.Errorf("webm: codec %q not supported", track.Codec)
	}
	if track.Width <= 0 || track.Height <= 0 {
		return nil, fmt.Errorf("webm: video track needs its size, got %dx%d", track.Width, track.Height)
	}
	return &Writer{w: w, track: track}, nil
}

// Written is the number of bytes handed to the underlying writer.
func (wr *Writer) Written() int64 { return wr.written }

// WriteFrame appends one frame at ts (from the start of the track). A
// video key frame starts a new cluster, so a player can seek to it.
func (wr *Writer) WriteFrame(ts time.Duration, key bool, frame []byte) error {
	if !wr.headerDone {
		if !key {
			return errors.New("webm: a video file must start with a key frame")
		}
		h, durationAt := wr.header()
		wr.durationAt = int64(durationAt)
		if err := wr.emit(h); err != nil {
			return err
		}
		wr.headerDone = true
	}
	if wr.open && ts < wr.lastTS {
		return fmt.Errorf("%w: %v after %v", ErrNotMonotonic, ts, wr.lastTS)
	}
	rel := (ts - wr.clusterTS).Milliseconds()
	if wr.open && (key || ts-wr.clusterTS >= MaxClusterDuration || rel > 32767) {
		if err := wr.closeCluster(); err != nil {
			return err
		}
	}
	if !wr.open {
		wr.open, wr.clusterTS, rel = true, ts, 0
	}
	wr.prevTS, wr.lastTS = wr.lastTS, ts
	flags := byte(0)
	if key {
		flags = 0x80
	}
	// SimpleBlock: track number 1 (as a vint), 16-bit timestamp relative
	// to the cluster, flags, the frame.
	wr.cluster = appendID(wr.cluster, idSimpleBlock)
	wr.cluster = appendSize(wr.cluster, uint64(4+len(frame)))
	wr.cluster = append(wr.cluster, 0x81, byte(uint16(rel)>>8), byte(rel), flags)
	wr.cluster = append(wr.cluster, frame...)
	return nil
}

// Flush writes the open cluster, if any: what was written so far is then
// playable. The next frame opens a new cluster.
func (wr *Writer) Flush() error {
	if !wr.open {
		return nil
	}
	return wr.closeCluster()
}

func (wr *Writer) closeCluster() error {
	// The cluster goes out in one write, so a killed process leaves it
	// whole or not at all; the buffer is kept for the next one, as a
	// recording writes one a second for hours.
	var tsb [16]byte
	ts := appendUint(tsb[:0], idTimestamp, uint64(wr.clusterTS.Milliseconds()))
	out := appendID(wr.out[:0], idCluster)
	out = appendSize(out, uint64(len(ts)+len(wr.cluster)))
	out = append(append(out, ts...), wr.cluster...)
	wr.open, wr.cluster, wr.out = false, wr.cluster[:0], out
	return wr.emit(out)
}

func (wr *Writer) emit(b []byte) error {
	n, err := wr.w.Write(b)
	wr.written += int64(n)
	if err != nil {
		return fmt.Errorf("webm: write: %w", err)
	}
	return nil
}

// Close writes the open cluster and, when the file can be written at an
// offset, the duration into Info (a recording cut short has none; players
// then find it by reading). It does not close the underlying writer.
func (wr *Writer) Close() error {
	if err := wr.Flush(); err != nil {
		return err
	}
	at, ok := wr.w.(io.WriterAt)
	if !ok || !wr.headerDone {
		return nil
	}
	d := wr.lastTS + (wr.lastTS - wr.prevTS) // the last frame lasts as long as the one before
	d = max(d, wr.until)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(float64(d)/float64(time.Millisecond)))
	if _, err := at.WriteAt(b[:], wr.durationAt); err != nil {
		return fmt.Errorf("webm: write duration: %w", err)
	}
	return nil
}

// header is the EBML header, the opening of the Segment (unknown size),
// Info and Tracks, and the offset of Info's Duration value in it.
func (wr *Writer) header() ([]byte, int) {
	var eh []byte
	eh = appendUint(eh, idEBMLVersion, 1)
	eh = appendUint(eh, idEBMLReadVersion, 1)
	eh = appendUint(eh, idEBMLMaxIDLength, 4)
	eh = appendUint(eh, idEBMLMaxSizeLength, 8)
	eh = appendString(eh, idDocType, DocType(wr.track))
	eh = appendUint(eh, idDocTypeVersion, 4)
	eh = appendUint(eh, idDocTypeReadVersion, 2)
	b := appendElement(nil, idEBML, eh)

	b = appendID(b, idSegment)
	b = appendUnknownSize(b)

	var info []byte
	info = appendUint(info, idTimestampScale, uint64(time.Millisecond)) // timestamps in ms
	durationIn := len(info) + 3                                         // Duration's 2-byte ID and 1-byte size come first
	info = appendFloat(info, idDuration, 0)
	info = appendString(info, idMuxingApp, "parley")
	info = appendString(info, idWritingApp, "parley")
	infoHead := appendSize(appendID(nil, idInfo), uint64(len(info)))
	durationAt := len(b) + len(infoHead) + durationIn
	b = appendElement(b, idInfo, info)

	t := wr.track
	var te []byte
	te = appendUint(te, idTrackNumber, 1)
	te = appendUint(te, idTrackUID, 1)
	te = appendUint(te, idTrackType, 1) // video
	te = appendString(te, idCodecID, t.Codec)
	if len(t.CodecPrivate) > 0 {
		te = appendElement(te, idCodecPrivate, t.CodecPrivate)
	}
	var v []byte
	v = appendUint(v, idPixelWidth, uint64(t.Width))
	v = appendUint(v, idPixelHeight, uint64(t.Height))
	te = appendElement(te, idVideo, v)
	return appendElement(b, idTracks, appendElement(nil, idTrackEntry, te)), durationAt
}
