package signaling

import (
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// Dynacast (sfu/dynacast.go): the SFU asks a simulcast publisher to pause
// the layers nobody receives; the call session passes the request to its
// client as "active_layers", named by the track id the client published.

var _ sfu.LayerEvents = peerEvents{}

func (e peerEvents) ActiveLayers(t sfu.TrackInfo, rids []string) {
	e.q.push(peerEvent{kind: evActiveLayers, track: t, rids: rids})
}

// sendActiveLayers tells the client which layers of its track to send.
func (cs *callSession) sendActiveLayers(t sfu.TrackInfo, rids []string) {
	cs.ss.out.enqueue(proto.Encode(proto.TypeActiveLayers, "",
		proto.ActiveLayersBody{TrackID: t.ClientTrackID, TrackSID: t.SID, RIDs: rids}))
}
