package signaling

import (
	"slices"
	"strings"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// The SFU tells every peer of a room its participants' connection
// quality when one changes (at most every 2 s); each call session turns
// participant ids into identities and sends "connection_quality".

var _ sfu.QualityEvents = peerEvents{}

func (e peerEvents) ConnectionQuality(levels map[string]sfu.Quality) {
	e.q.push(peerEvent{kind: evQuality, quality: levels})
}

// sendQuality sends the client the room's levels by identity.
func (cs *callSession) sendQuality(levels map[string]sfu.Quality) {
	identity := make(map[string]string)
	for _, p := range cs.ss.s.dir.Members(cs.p.Room) {
		identity[p.SID] = p.Identity
	}
	cs.ss.out.enqueue(proto.Encode(proto.TypeConnectionQuality, "", qualityBody(levels, identity)))
}

// qualityBody maps levels to identities, leaving out participants that
// left meanwhile, sorted by identity so the message is stable.
func qualityBody(levels map[string]sfu.Quality, identity map[string]string) proto.ConnectionQualityBody {
	body := proto.ConnectionQualityBody{Participants: make([]proto.QualityView, 0, len(levels))}
	for sid, q := range levels {
		if id, ok := identity[sid]; ok {
			body.Participants = append(body.Participants, proto.QualityView{Identity: id, Quality: q.String()})
		}
	}
	slices.SortFunc(body.Participants, func(a, b proto.QualityView) int { return strings.Compare(a.Identity, b.Identity) })
	return body
}
