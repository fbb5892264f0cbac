// Package loadtest drives a running Parley server with synthetic
// participants (pion clients speaking the signaling protocol) and reports
// what users feel: forwarded packet rate, loss, and the delay the SFU adds.
package loadtest

import (
	"encoding/binary"
	"time"
)

// probeMagic marks a payload written by the load tool, so receivers can
// find the send time without trusting anything else in the packet.
var probeMagic = [4]byte{'P', 'L', 'T', '1'} //nolint:gochecknoglobals // read-only

const probeLen = 4 + 8 + 8 // magic, send time (unix ns), generator sequence

// writeProbe puts the magic, the send time and a sequence number at
// payload[off:]; the rest of the payload is padding.
func writeProbe(payload []byte, off int, sent time.Time, seq uint64) {
	copy(payload[off:], probeMagic[:])
	binary.BigEndian.PutUint64(payload[off+4:], uint64(sent.UnixNano()))
	binary.BigEndian.PutUint64(payload[off+12:], seq)
}

// readProbe finds the probe at payload[off:].
func readProbe(payload []byte, off int) (sent time.Time, seq uint64, ok bool) {
	if len(payload) < off+probeLen || [4]byte(payload[off:off+4]) != probeMagic {
		return time.Time{}, 0, false
	}
	ns := int64(binary.BigEndian.Uint64(payload[off+4:]))
	return time.Unix(0, ns), binary.BigEndian.Uint64(payload[off+12:]), true
}

// vp8Payload builds a VP8 RTP payload (RFC 7741): a one-byte payload
// descriptor, then for the first packet of a frame the frame tag, and for
// a keyframe the start code and dimensions, so the SFU's keyframe
// detection sees what a browser would send. The probe follows at a fixed
// offset of 16 bytes.
func vp8Payload(buf []byte, first, key bool) {
	for i := range buf {
		buf[i] = 0
	}
	if first {
		buf[0] = 0x10     // S=1, partition 0
		tag := byte(0x10) // show_frame=1, version 0
		if !key {
			tag |= 0x01 // inter frame
		}
		buf[1] = tag
		if key {
			buf[4], buf[5], buf[6] = 0x9d, 0x01, 0x2a
			binary.LittleEndian.PutUint16(buf[7:], 1280)
			binary.LittleEndian.PutUint16(buf[9:], 720)
		}
	}
}

const vp8ProbeOffset = 16
const opusProbeOffset = 1
