package sfu

import "github.com/parleyhq/parley/sfu/internal/simulcast"

// SetTemporal sets the VP8 temporal target of a subscriber's switcher
// for a simulcast track, as the layer selection would (tests pin the
// layer with SetLayer first, which keeps the selection away).
func SetTemporal(p *Peer, trackSID string, tid uint8) error {
	d, err := p.downTrack(trackSID)
	if err != nil {
		return err
	}
	if d.sw != nil {
		d.sw.SetTemporal(min(tid, simulcast.AllTemporal))
	}
	return nil
}
