package lab

import (
	"context"
	"slices"

	"github.com/parleyhq/parley/e2e"
)

// sentLayer is one encoding a page sends (window.parley.outbound(): its
// outbound-rtp statistics; a simulcast camera has one per rid).
type sentLayer struct {
	Kind          string `json:"kind"`
	Rid           string `json:"rid"`
	Active        bool   `json:"active"` // RTCRtpEncodingParameters.active
	FrameHeight   int    `json:"frameHeight"`
	FramesEncoded int64  `json:"framesEncoded"`
	BytesSent     int64  `json:"bytesSent"`
	Limit         string `json:"qualityLimitationReason"`
}

// outbound reads the encodings p's page sends.
func outbound(ctx context.Context, p *peer) ([]sentLayer, error) {
	return e2e.Eval[[]sentLayer](ctx, p.b, `window.parley.outbound()`)
}

// cameraLayersSent are p's camera encodings by rid.
func cameraLayersSent(ctx context.Context, p *peer) (map[string]sentLayer, error) {
	out, err := outbound(ctx, p)
	if err != nil {
		return nil, err
	}
	m := map[string]sentLayer{}
	for _, o := range out {
		if o.Kind == "video" && o.Rid != "" {
			m[o.Rid] = o
		}
	}
	return m, nil
}

// activeRids are the camera encodings p's page sends now (the others
// are paused, RTCRtpEncodingParameters.active false), sorted.
func activeRids(ctx context.Context, p *peer) ([]string, error) {
	m, err := cameraLayersSent(ctx, p)
	if err != nil {
		return nil, err
	}
	var rids []string
	for rid, o := range m {
		if o.Active {
			rids = append(rids, rid)
		}
	}
	slices.Sort(rids)
	return rids, nil
}
