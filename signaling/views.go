package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/proto"
)

func iceServerViews(in []webrtc.ICEServer) []proto.ICEServerView {
	out := make([]proto.ICEServerView, 0, len(in))
	for _, s := range in {
		v := proto.ICEServerView{URLs: s.URLs, Username: s.Username}
		if cred, ok := s.Credential.(string); ok {
			v.Credential = cred
		}
		out = append(out, v)
	}
	return out
}
