package oggopus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// PreSkip is the number of samples a player discards at the start (RFC
// 7845 4.2 recommends 80 ms for a decoder joining a stream). The stream
// opens with that much silence, so the first packet plays at time zero
// and the file stays in step with a video track recorded beside it.
const PreSkip = 3840

// MaxPageDuration bounds what a crash can lose: a page is written when it
// holds this much audio.
const MaxPageDuration = time.Second

const (
	maxSegments   = 255
	flagBOS       = 0x02
	flagEOS       = 0x04
	samplesPerSec = 48000
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("oggopus: writer closed")

// Writer writes one Opus stream to an Ogg file. Not safe for concurrent
// use.
type Writer struct {
	w      io.Writer
	crc    *[256]uint32
	serial uint32
	seq    uint32

	next    int64 // stream position (samples, PreSkip included) where the next packet starts
	lacing  []byte
	body    []byte
	pageDur int // samples in the page being collected
	written int64
	closed  bool
	scratch []byte
}

// NewWriter writes the two header pages (OpusHead, OpusTags) of a stream
// of the given channel count and serial number.
func NewWriter(w io.Writer, channels int, serial uint32) (*Writer, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("oggopus: %d channels (1 or 2 supported)", channels)
	}
	wr := &Writer{w: w, crc: crcTable(), serial: serial}
	head := make([]byte, 0, 19)
	head = append(head, "OpusHead"...)
	head = append(head, 1, byte(channels))
	head = binary.LittleEndian.AppendUint16(head, PreSkip)
	head = binary.LittleEndian.AppendUint32(head, samplesPerSec)
	head = append(head, 0, 0, 0) // output gain 0, channel mapping family 0
	if err := wr.page(flagBOS, 0, [][]byte{head}); err != nil {
		return nil, err
	}
	tags := append([]byte("OpusTags"), 6, 0, 0, 0)
	tags = append(tags, "parley"...)
	tags = append(tags, 0, 0, 0, 0) // no user comments
	if err := wr.page(0, 0, [][]byte{tags}); err != nil {
		return nil, err
	}
	return wr, nil
}

// Written is the number of bytes handed to the underlying writer.
func (wr *Writer) Written() int64 { return wr.written }

// Position is where the next packet would start, in samples from the
// first (PreSkip not counted).
func (wr *Writer) Position() int64 { return max(wr.next-PreSkip, 0) }

// WritePacket adds an Opus packet whose first sample is at position at
// (48 kHz samples from the start of the stream). A gap before it is
// filled with silence; a packet that starts more than half a frame
// before the stream's current end (a duplicate, or a late packet whose
// place was already filled) is dropped and reported as written=false.
func (wr *Writer) WritePacket(at int64, p []byte) (written bool, err error) {
	if wr.closed {
		return false, ErrClosed
	}
	n, err := PacketSamples(p)
	if err != nil {
		return false, err
	}
	at += PreSkip // the stream opens with PreSkip samples of silence the player drops
	if at < wr.next-int64(n)/2 {
		return false, nil
	}
	for at-wr.next >= 960 {
		if err := wr.add(silence20ms(), 960); err != nil {
			return false, err
		}
	}
	return true, wr.add(p, n)
}

func (wr *Writer) add(p []byte, samples int) error {
	need := len(p)/255 + 1
	if len(wr.lacing)+need > maxSegments {
		if err := wr.Flush(); err != nil {
			return err
		}
	}
	for n := len(p); ; n -= 255 {
		if n < 255 {
			wr.lacing = append(wr.lacing, byte(n))
			break
		}
		wr.lacing = append(wr.lacing, 255)
	}
	wr.body = append(wr.body, p...)
	wr.next += int64(samples)
	wr.pageDur += samples
	if wr.pageDur >= int(MaxPageDuration.Seconds()*samplesPerSec) {
		return wr.Flush()
	}
	return nil
}

// Flush writes the packets collected so far as a page: they are then
// playable.
func (wr *Writer) Flush() error {
	if len(wr.lacing) == 0 {
		return nil
	}
	return wr.flush(0)
}

func (wr *Writer) flush(flags byte) error {
	err := wr.pageRaw(flags, wr.next, wr.lacing, wr.body)
	wr.lacing, wr.body, wr.pageDur = wr.lacing[:0], wr.body[:0], 0
	return err
}

// Close writes the last page, marked end of stream. It does not close
// the underlying writer.
func (wr *Writer) Close() error {
	if wr.closed {
		return nil
	}
	wr.closed = true
	return wr.flush(flagEOS)
}

// page writes whole packets as one page.
func (wr *Writer) page(flags byte, granule int64, packets [][]byte) error {
	var lacing, body []byte
	for _, p := range packets {
		for n := len(p); ; n -= 255 {
			if n < 255 {
				lacing = append(lacing, byte(n))
				break
			}
			lacing = append(lacing, 255)
		}
		body = append(body, p...)
	}
	return wr.pageRaw(flags, granule, lacing, body)
}

// pageRaw writes one Ogg page (RFC 3533 6).
func (wr *Writer) pageRaw(flags byte, granule int64, lacing, body []byte) error {
	b := wr.scratch[:0]
	b = append(b, "OggS"...)
	b = append(b, 0, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(granule))
	b = binary.LittleEndian.AppendUint32(b, wr.serial)
	b = binary.LittleEndian.AppendUint32(b, wr.seq)
	b = append(b, 0, 0, 0, 0) // CRC, filled below
	b = append(b, byte(len(lacing)))
	b = append(b, lacing...)
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b[22:], crcUpdate(wr.crc, 0, b))
	wr.scratch = b
	wr.seq++
	n, err := wr.w.Write(b)
	wr.written += int64(n)
	if err != nil {
		return fmt.Errorf("oggopus: write: %w", err)
	}
	return nil
}
