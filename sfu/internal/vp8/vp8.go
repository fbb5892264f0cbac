package vp8

import "errors"

// ErrShort means the payload ends inside the descriptor or right after it
// (a VP8 packet carries at least one byte of frame data).
var ErrShort = errors.New("vp8: payload too short")

// Descriptor is the parsed payload descriptor of one packet. The
// Present/Long flags say which optional fields the packet carries; the
// values of absent fields are zero.
type Descriptor struct {
	// Size is the descriptor's length in bytes: the VP8 payload header
	// starts at this offset.
	Size int

	NonReference   bool  // N: the frame can be discarded without affecting others
	PartitionStart bool  // S: first packet of a VP8 partition
	PartitionID    uint8 // PID: partition index, 0 for the first

	HasPictureID  bool   // I
	PictureIDLong bool   // M: 15-bit PictureID (else 7-bit)
	PictureID     uint16 // 7 or 15 bits

	HasTL0PICIDX bool  // L
	TL0PICIDX    uint8 // running index of base temporal layer frames

	HasTID    bool  // T
	TID       uint8 // temporal layer index, 2 bits
	LayerSync bool  // Y: frame depends only on base layer frames

	HasKeyIdx bool  // K
	KeyIdx    uint8 // 5 bits

	// Keyframe is set on the first packet of a key frame: start of
	// partition 0 and the P bit of the frame header clear.
	Keyframe bool

	pidOff uint8 // offset of the PictureID byte(s), 0 if absent
	tl0Off uint8 // offset of TL0PICIDX, 0 if absent
}

// Unmarshal parses the descriptor at the start of p, the RTP payload. It
// overwrites every field of d and never allocates.
func (d *Descriptor) Unmarshal(p []byte) error {
	*d = Descriptor{}
	if len(p) < 1 {
		return ErrShort
	}
	b0 := p[0]
	d.NonReference = b0&0x20 != 0
	d.PartitionStart = b0&0x10 != 0
	d.PartitionID = b0 & 0x07
	i := 1
	if b0&0x80 != 0 { // X
		if len(p) <= i {
			return ErrShort
		}
		x := p[i]
		i++
		if x&0x80 != 0 { // I
			if len(p) <= i {
				return ErrShort
			}
			d.HasPictureID = true
			d.pidOff = uint8(i)
			if p[i]&0x80 != 0 {
				if len(p) <= i+1 {
					return ErrShort
				}
				d.PictureIDLong = true
				d.PictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				i += 2
			} else {
				d.PictureID = uint16(p[i])
				i++
			}
		}
		if x&0x40 != 0 { // L
			if len(p) <= i {
				return ErrShort
			}
			d.HasTL0PICIDX = true
			d.tl0Off = uint8(i)
			d.TL0PICIDX = p[i]
			i++
		}
		if x&0x30 != 0 { // T or K share one byte
			if len(p) <= i {
				return ErrShort
			}
			if x&0x20 != 0 {
				d.HasTID = true
				d.TID = p[i] >> 6
				d.LayerSync = p[i]&0x20 != 0
			}
			if x&0x10 != 0 {
				d.HasKeyIdx = true
				d.KeyIdx = p[i] & 0x1f
			}
			i++
		}
	}
	if len(p) <= i {
		return ErrShort
	}
	d.Size = i
	d.Keyframe = d.PartitionStart && d.PartitionID == 0 && p[i]&0x01 == 0
	return nil
}

// Rewrite stores pictureID and tl0 into p, which must be the payload d was
// parsed from (or a copy of it). Fields the packet does not carry are left
// alone; a 7-bit PictureID receives only the low 7 bits of pictureID (see
// the package documentation). d is updated to the written values. It
// reports false, touching nothing, if p is shorter than the descriptor.
func (d *Descriptor) Rewrite(p []byte, pictureID uint16, tl0 uint8) bool {
	if len(p) <= d.Size {
		return false
	}
	if d.HasPictureID {
		i := d.pidOff
		if d.PictureIDLong {
			pictureID &= 0x7fff
			p[i] = 0x80 | byte(pictureID>>8)
			p[i+1] = byte(pictureID)
		} else {
			pictureID &= 0x7f
			p[i] = byte(pictureID)
		}
		d.PictureID = pictureID
	}
	if d.HasTL0PICIDX {
		p[d.tl0Off] = tl0
		d.TL0PICIDX = tl0
	}
	return true
}
