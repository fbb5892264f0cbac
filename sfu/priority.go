package sfu

import "github.com/parleyhq/parley/sfu/internal/simulcast"

// Priorities of the layer choice (issue #10): when a subscriber's
// estimate does not cover every tile, the selector serves screen shares
// first, then the room's active speaker's camera, then the other
// cameras. The SFU sees only media, so the two inputs come from outside
// the forwarding path: signaling, which knows each track's source from
// the client's "publish" list, marks screen shares with SetScreenShare;
// the room's speaker goroutine tells every peer the active speaker as it
// tells the clients (speakers.go), and Join hands a newcomer the one
// already chosen.

// SetScreenShare marks one of this participant's published tracks as a
// screen share: subscribers' layer choice serves it before cameras, from
// their next round (at most selectInterval later). The mark stays for
// the track's life (a track's source does not change).
func (p *Peer) SetScreenShare(trackSID string) error {
	t, err := p.track(trackSID)
	if err != nil {
		return err
	}
	t.screen.Store(true)
	return nil
}

// setActiveSpeaker records the room's active speaker (a participant id,
// "" for none) as this peer's layer choice sees it.
func (p *Peer) setActiveSpeaker(id string) {
	if old := p.activeSpeaker.Load(); old == nil || *old != id {
		p.activeSpeaker.Store(&id)
	}
}

// prioritize sets what the layer choice ranks d by: Kind Screen for a
// track signaling marked as a screen share, Speaker for the other video
// of the participant that is the room's active speaker as last told to
// d's subscriber. Audio is left as it is (always served first).
func (d *downTrack) prioritize(info *simulcast.TrackInfo) {
	t := d.src
	if !t.video {
		return
	}
	if t.screen.Load() {
		info.Kind, info.Speaker = simulcast.Screen, false
		return
	}
	active := d.sub.activeSpeaker.Load()
	info.Speaker = active != nil && *active != "" && *active == t.info.ParticipantID
}

// screenLayerBitrate is nominalLayerBitrate for a screen share: the web
// client's SCREEN_LAYERS maxBitrate, lowest first. A paused screen layer
// offered at a camera layer's cost would look four times cheaper than it
// is (f, layer 1, at h's 500 kbit/s): a subscriber it does not fit would
// take it, have it resumed, drop it once measured, and see it paused and
// offered again every few seconds.
var screenLayerBitrate = [...]int{500_000, 2_500_000} //nolint:gochecknoglobals // read-only table

// nominalBitrate is what layer l of t is taken to cost while it is
// paused and has no measured rate.
func (t *publishedTrack) nominalBitrate(l int) int {
	if t.screen.Load() && len(t.layers) == len(screenLayerBitrate) {
		return screenLayerBitrate[l]
	}
	return nominalLayerBitrate[l]
}
