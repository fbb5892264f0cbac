package rtmp

import (
	"encoding/binary"

	"github.com/pion/rtp"
)

// h264Packetizer turns H.264 access units into RTP (RFC 6184,
// packetization-mode 1): single NAL unit packets, STAP-A for parameter
// sets and SEI, FU-A for NAL units larger than the MTU.
type h264Packetizer struct {
	mtu  int // max RTP payload size
	pt   uint8
	ssrc uint32
	seq  uint16
}

func (p *h264Packetizer) packet(ts uint32, payload []byte) *rtp.Packet {
	pkt := &rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			PayloadType:    p.pt,
			SequenceNumber: p.seq,
			Timestamp:      ts,
			SSRC:           p.ssrc,
		},
		Payload: payload,
	}
	p.seq++
	return pkt
}

// isAggregatable reports NAL types we group into STAP-A: small non-VCL
// units that belong in front of a picture.
func isAggregatable(t byte) bool {
	return t == naluSEI || t == naluSPS || t == naluPPS
}

// packetize emits the RTP packets of one access unit; all share ts and the
// last one carries the marker bit. NAL units are copied, never aliased.
func (p *h264Packetizer) packetize(nalus [][]byte, ts uint32) []*rtp.Packet {
	var out []*rtp.Packet
	for i := 0; i < len(nalus); {
		n := nalus[i]
		// Try to aggregate a run of small non-VCL NAL units.
		if isAggregatable(n[0]&0x1f) && i+1 < len(nalus) && isAggregatable(nalus[i+1][0]&0x1f) {
			size := 1
			j := i
			var maxNRI byte
			for j < len(nalus) && isAggregatable(nalus[j][0]&0x1f) && size+2+len(nalus[j]) <= p.mtu {
				size += 2 + len(nalus[j])
				if nri := nalus[j][0] & 0x60; nri > maxNRI {
					maxNRI = nri
				}
				j++
			}
			if j-i >= 2 {
				buf := make([]byte, 0, size)
				buf = append(buf, maxNRI|naluSTAPA)
				for _, a := range nalus[i:j] {
					buf = binary.BigEndian.AppendUint16(buf, uint16(len(a)))
					buf = append(buf, a...)
				}
				out = append(out, p.packet(ts, buf))
				i = j
				continue
			}
		}
		if len(n) <= p.mtu {
			out = append(out, p.packet(ts, append([]byte(nil), n...)))
			i++
			continue
		}
		// FU-A: the NAL header is split into the FU indicator (F, NRI) and
		// the FU header (S, E, type); the rest is cut into MTU-2 pieces.
		indicator := n[0]&0xe0 | naluFUA
		typ := n[0] & 0x1f
		body := n[1:]
		max := p.mtu - 2
		for off := 0; off < len(body); off += max {
			end := min(off+max, len(body))
			hdr := typ
			if off == 0 {
				hdr |= 0x80
			}
			if end == len(body) {
				hdr |= 0x40
			}
			buf := make([]byte, 0, 2+end-off)
			buf = append(buf, indicator, hdr)
			buf = append(buf, body[off:end]...)
			out = append(out, p.packet(ts, buf))
		}
		i++
	}
	if len(out) > 0 {
		out[len(out)-1].Marker = true
	}
	return out
}
