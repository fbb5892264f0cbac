package signaling

import "github.com/parleyhq/parley/sfu"

// SFUMedia adapts *sfu.SFU to Media. It exists because Join returns the
// concrete *sfu.Peer, which Go does not convert to MediaPeer on its own.
func SFUMedia(s *sfu.SFU) Media { return sfuMedia{s: s} }

type sfuMedia struct{ s *sfu.SFU }

func (m sfuMedia) Join(room, participantID string, opts sfu.JoinOptions) (MediaPeer, error) {
	p, err := m.s.Join(room, participantID, opts)
	if err != nil {
		// Return a nil interface, not a typed nil *sfu.Peer.
		return nil, err
	}
	return p, nil
}

func (m sfuMedia) RoomStats(room string) []sfu.TrackStats { return m.s.RoomStats(room) }

var _ MediaPeer = (*sfu.Peer)(nil)
