package rooms

import (
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// Announce records a participant's "publish" list: the source and mute
// state of tracks it is about to send.
func (d *Directory) Announce(p *Participant, list []proto.TrackAnnouncement) *proto.Error {
	d.mu.Lock()
	added := 0
	for _, a := range list {
		if p.tracks[a.TrackID] == nil {
			added++
		}
	}
	if len(p.tracks)+added > MaxTracksPerParticipant {
		d.mu.Unlock()
		return proto.BadRequest("publish: at most %d tracks per participant", MaxTracksPerParticipant)
	}
	changed := false
	for _, a := range list {
		t := p.tracks[a.TrackID]
		if t == nil {
			t = &track{trackID: a.TrackID}
			p.tracks[a.TrackID] = t
		}
		if t.sid != "" && (t.source != a.Source || t.muted != a.Muted) {
			changed = true
		}
		t.kind, t.source, t.muted = a.Kind, a.Source, a.Muted
	}
	var dl *delivery
	if changed {
		dl = d.updatedLocked(p)
	}
	d.release(dl)
	return nil
}

// TrackPublished attaches the SFU's track to the participant's
// announcement, and shows it to the room.
func (d *Directory) TrackPublished(p *Participant, info sfu.TrackInfo) {
	d.mu.Lock()
	d.release(d.trackPublishedLocked(p, info))
}

func (d *Directory) trackPublishedLocked(p *Participant, info sfu.TrackInfo) *delivery {
	if p.removed {
		return nil
	}
	t := p.tracks[info.ClientTrackID]
	if t == nil || info.ClientTrackID == "" {
		// Media without an announcement: guess the usual source so the
		// track still shows up.
		id := info.ClientTrackID
		if id == "" {
			id = info.SID
		}
		source := "camera"
		if info.Kind == "audio" {
			source = "microphone"
		}
		if len(p.tracks) >= MaxTracksPerParticipant {
			return nil
		}
		t = &track{trackID: id, source: source}
		p.tracks[id] = t
	}
	t.kind = info.Kind
	t.sid = info.SID
	return d.updatedLocked(p)
}

// TrackUnpublished forgets a track the SFU ended.
func (d *Directory) TrackUnpublished(p *Participant, info sfu.TrackInfo) {
	d.mu.Lock()
	var dl *delivery
	if t := p.trackBySIDLocked(info.SID); t != nil {
		delete(p.tracks, t.trackID)
		dl = d.updatedLocked(p)
	}
	d.release(dl)
}

// ForgetTrack handles the client's "unpublish"; it returns the SFU sid to
// unpublish ("" if the SFU never reported the track), ok false for an
// unknown track.
func (d *Directory) ForgetTrack(p *Participant, trackID string) (sid string, ok bool) {
	d.mu.Lock()
	t := p.tracks[trackID]
	if t == nil {
		d.mu.Unlock()
		return "", false
	}
	delete(p.tracks, trackID)
	var dl *delivery
	if t.sid != "" {
		dl = d.updatedLocked(p)
	}
	d.release(dl)
	return t.sid, true
}

// SetMuted records a mute change by client track id and returns the sid,
// ok false for an unknown track.
func (d *Directory) SetMuted(p *Participant, trackID string, muted bool) (sid string, ok bool) {
	d.mu.Lock()
	t := p.tracks[trackID]
	if t == nil {
		d.mu.Unlock()
		return "", false
	}
	var dl *delivery
	if t.muted != muted {
		t.muted = muted
		if t.sid != "" {
			dl = d.updatedLocked(p)
		}
	}
	d.release(dl)
	return t.sid, true
}
