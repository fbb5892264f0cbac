// Package repairedrid is a pion interceptor for clients that send
// simulcast: it moves an encoding's rid to repaired-rtp-stream-id on the
// encoding's retransmissions, as browsers send them.
package repairedrid

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// repairedRID makes a simulcast encoding's retransmissions
// look as a browser's do: on the RTX stream the encoding's rid travels as
// repaired-rtp-stream-id (RFC 8852), not as rtp-stream-id.
//
// pion's NACK responder copies the original packet's header extensions
// into the RTX packet, rid included. A receiver that maps an unsignalled
// SSRC to its layer by rid (pion does, so the SFU does) then takes the
// RTX stream for the layer itself and stops reading the real one: in
// `parley load --simulcast` 10 x 10, where upstream losses start NACKs,
// most layers stopped arriving a second after their first retransmission.
//
// It must sit below the NACK responder in the chain (registered before
// it), so the retransmissions it writes pass through here.
type repairedRID struct{ interceptor.NoOp }

// Factory adds the interceptor to a registry; add it before pion's
// defaults (webrtc.RegisterDefaultInterceptors).
type Factory struct{}

// NewInterceptor implements interceptor.Factory.
func (Factory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &repairedRID{}, nil
}

// BindLocalStream implements interceptor.Interceptor.
func (*repairedRID) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	var rid, rrid uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(e.ID) //nolint:gosec // extension ids are 1-255
		case sdp.SDESRepairRTPStreamIDURI:
			rrid = uint8(e.ID) //nolint:gosec // extension ids are 1-255
		}
	}
	if info.SSRCRetransmission == 0 || rid == 0 {
		return writer
	}
	rtx := info.SSRCRetransmission
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != rtx {
			return writer.Write(h, payload, a)
		}
		v := h.GetExtension(rid)
		if v == nil {
			return writer.Write(h, payload, a)
		}
		// A copy: the extensions' backing array is the responder's
		// buffered packet, which a later NACK may resend again.
		out := *h
		out.Extensions = append([]rtp.Extension(nil), h.Extensions...)
		_ = out.DelExtension(rid)
		if rrid != 0 {
			_ = out.SetExtension(rrid, v)
		}
		return writer.Write(&out, payload, a)
	})
}
