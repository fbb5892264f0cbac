package sfu

import (
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// txCounts is what the SFU sent to one subscriber of one track, so that an
// operator can see what a receiver gets (nothing, for a hidden tile):
// packets and payload bytes on the media SSRC (retransmissions included
// when the subscriber has no RTX stream), and separately on its RTX
// stream. Atomic adds on the writer's path; read by Stats.
type txCounts struct {
	packets, bytes       atomic.Uint64
	rtxPackets, rtxBytes atomic.Uint64
}

// count adds one packet with an n-byte payload.
func (c *txCounts) count(rtx bool, n int) {
	if rtx {
		c.rtxPackets.Add(1)
		c.rtxBytes.Add(uint64(n))
		return
	}
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

// txWriter is the writer a binding hands the subscriber's writer: pion's
// for the stream, counting into txCounts each RTP packet it accepted.
// Write (raw packets) goes past it uncounted: the writer never uses it.
type txWriter struct {
	webrtc.TrackLocalWriter
	tx      *txCounts
	rtxSSRC uint32 // 0: no RTX stream
}

// countedWriter wraps w, a subscriber connection's writer for d's
// stream (and its RTX stream rtxSSRC, 0 for none).
func (d *downTrack) countedWriter(w webrtc.TrackLocalWriter, rtxSSRC uint32) webrtc.TrackLocalWriter {
	return &txWriter{TrackLocalWriter: w, tx: &d.tx, rtxSSRC: rtxSSRC}
}

func (w *txWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := w.TrackLocalWriter.WriteRTP(h, payload)
	if err == nil {
		w.tx.count(w.rtxSSRC != 0 && h.SSRC == w.rtxSSRC, len(payload))
	}
	return n, err
}
