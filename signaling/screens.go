package signaling

import "github.com/parleyhq/parley/signaling/proto"

// markScreens tells the SFU which of the participant's tracks are screen
// shares, so that each subscriber's layer choice serves them before the
// cameras. The source is known here only once both halves met: the
// client's "publish" list and the SFU's track. Either may come first (a
// track that arrived unannounced is taken for a camera until it is
// announced), so this runs after each; marking a track again is
// harmless.
func (cs *callSession) markScreens() {
	for _, sid := range cs.ss.s.dir.TrackSIDs(cs.p, proto.ModSourceScreen) {
		if err := cs.peer.SetScreenShare(sid); err != nil {
			// The track may have ended in the SFU meanwhile.
			cs.log.Debug("screen share", "track", sid, "err", err)
		}
	}
}
