package trackrec

import (
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// seqFix takes out of a VP8 stream's numbering the packets that carry no
// media, so the reorder window does not take them for losses (a loss
// makes the recorder drop frames until the next key frame): padding-only
// packets (Chrome's bandwidth probes), and gaps the SFU leaves where it
// dropped such packets before they reached us (simulcast). A gap holds
// no media when the packet before it ended a frame (marker) and the one
// after it starts the next frame (PictureID one more): any packet in
// between belonged to no frame.
type seqFix struct {
	started    bool
	offset     uint16
	highest    uint16 // highest incoming sequence number
	lastMarker bool   // the packet at highest ended a frame
	lastPID    int    // PictureID of the packet at highest; -1 unknown
}

// in renumbers p in place; false means drop it (padding only).
func (f *seqFix) in(p *rtp.Packet) bool {
	seq := p.SequenceNumber
	if !f.started {
		f.started, f.highest, f.lastPID = true, seq, -1
		f.note(p)
		p.SequenceNumber = seq - f.offset
		return len(p.Payload) > 0
	}
	d := int16(seq - f.highest)
	switch {
	case d <= 0: // late or repeated: numbered as things stand
		if len(p.Payload) == 0 {
			return false
		}
	case len(p.Payload) == 0:
		// Padding: its own number goes, a gap before it stays a gap.
		f.highest = seq
		f.offset++
		return false
	default:
		if d > 1 && f.lastMarker && f.lastPID >= 0 {
			if pid, start := vp8Start(p.Payload); start && pid == (f.lastPID+1)&0x7fff {
				f.offset += uint16(d - 1)
			}
		}
		f.highest = seq
		f.note(p)
	}
	p.SequenceNumber = seq - f.offset
	return true
}

func (f *seqFix) note(p *rtp.Packet) {
	f.lastMarker = p.Marker
	f.lastPID = -1
	var vp codecs.VP8Packet
	if _, err := vp.Unmarshal(p.Payload); err == nil && vp.I == 1 {
		f.lastPID = int(vp.PictureID)
	}
}

// vp8Start reads the PictureID of a packet that starts a VP8 frame.
func vp8Start(payload []byte) (pid int, start bool) {
	var vp codecs.VP8Packet
	if _, err := vp.Unmarshal(payload); err != nil || vp.I != 1 {
		return -1, false
	}
	return int(vp.PictureID), vp.S == 1 && vp.PID == 0
}
