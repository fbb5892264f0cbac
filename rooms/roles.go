package rooms

import "slices"

// What moderation needs of the directory: roles as the room sees them,
// messages to moderators or one participant in the room's order, a
// participant's tracks by source, and taking participants out.

// SetModerator shows p as a moderator of its room (or no longer one);
// the room, p included, receives "participant_updated".
func (d *Directory) SetModerator(p *Participant, on bool) {
	d.mu.Lock()
	var dl *delivery
	if p.Moderator != on {
		p.Moderator = on
		dl = d.updatedLocked(p)
	}
	d.release(dl)
}

// IsModerator reports whether p is shown as a moderator.
func (d *Directory) IsModerator(p *Participant) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return p.Moderator
}

// HasModerator reports whether a moderator is in the room.
func (d *Directory) HasModerator(roomName string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.rooms[roomName]; r != nil {
		for _, p := range r.participants {
			if p.Moderator {
				return true
			}
		}
	}
	return false
}

// Count is how many participants the room has.
func (d *Directory) Count(roomName string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.rooms[roomName]; r != nil {
		return len(r.participants)
	}
	return 0
}

// Members lists the room's participants with a connection (not ingest
// streams), in join order.
func (d *Directory) Members(roomName string) []*Participant {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rooms[roomName]
	if r == nil {
		return nil
	}
	out := r.sortedLocked()
	return slices.DeleteFunc(out, func(p *Participant) bool { return p.Member == nil })
}

// SendModerators queues msg for every moderator in the room.
func (d *Directory) SendModerators(roomName string, msg []byte) {
	d.mu.Lock()
	r := d.rooms[roomName]
	if r == nil {
		d.mu.Unlock()
		return
	}
	dl := &delivery{r: r}
	for _, p := range r.participants {
		if p.Moderator {
			dl.to(p, msg)
		}
	}
	d.release(dl)
}

// Send queues msg for p, in the order of its room's messages; nothing
// once p left.
func (d *Directory) Send(p *Participant, msg []byte) {
	d.mu.Lock()
	r := d.rooms[p.Room]
	if p.removed || r == nil {
		d.mu.Unlock()
		return
	}
	dl := &delivery{r: r}
	dl.to(p, msg)
	d.release(dl)
}

// TrackSIDs lists the sids of p's published tracks whose source is one
// of sources.
func (d *Directory) TrackSIDs(p *Participant, sources ...string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, t := range p.tracks {
		if t.sid != "" && slices.Contains(sources, t.source) {
			out = append(out, t.sid)
		}
	}
	slices.Sort(out)
	return out
}

// Expel takes p out of its room: p receives notice (if any), then bye
// with reason (a proto.Bye*), and the others "participant_left". It reports false if p
// had already left.
func (d *Directory) Expel(p *Participant, notice []byte, reason string) bool {
	d.mu.Lock()
	r := d.rooms[p.Room]
	if p.removed || r == nil || r.participants[p.Identity] != p {
		d.mu.Unlock()
		return false
	}
	dl := &delivery{r: r}
	if notice != nil {
		dl.to(p, notice)
	}
	d.detachLocked(dl, p)
	dl.bye(p, reason)
	d.release(dl)
	return true
}

// EndRoom takes every participant with a connection out of the room:
// each receives notice, then bye with reason (and no "participant_left"
// of the others). It returns them, so their
// media can be closed. Ingest streams stay.
func (d *Directory) EndRoom(roomName string, notice []byte, reason string) []*Participant {
	d.mu.Lock()
	r := d.rooms[roomName]
	if r == nil {
		d.mu.Unlock()
		return nil
	}
	dl := &delivery{r: r}
	var out []*Participant
	for _, p := range r.sortedLocked() {
		if p.Member == nil {
			continue
		}
		dl.to(p, notice)
		out = append(out, p)
	}
	for _, p := range out {
		// Everyone leaves: no "participant_left" to those leaving too.
		d.detachLocked(&delivery{r: r}, p)
		dl.bye(p, reason)
	}
	d.release(dl)
	return out
}

// SourceOf is the source of p's track with client id trackID ("" if p
// has none).
func (d *Directory) SourceOf(p *Participant, trackID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := p.tracks[trackID]; t != nil {
		return t.source
	}
	return ""
}
