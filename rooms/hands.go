package rooms

import "time"

// Raised hands and room-wide events (reactions).

// SetHand raises p's hand at at, or lowers it; the room, p included,
// receives "participant_updated" when that changes anything. A hand
// raised again keeps its first time, so its place in the queue.
func (d *Directory) SetHand(p *Participant, raised bool, at time.Time) (changed bool) {
	d.mu.Lock()
	var dl *delivery
	if raised != !p.handRaisedAt.IsZero() {
		if raised {
			p.handRaisedAt = at
		} else {
			p.handRaisedAt = time.Time{}
		}
		dl = d.updatedLocked(p)
		changed = true
	}
	d.release(dl)
	return changed
}

// HandRaised reports whether p's hand is raised.
func (d *Directory) HandRaised(p *Participant) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !p.handRaisedAt.IsZero()
}

// Broadcast queues msg for everyone in the room with a connection, in
// the order of the room's messages.
func (d *Directory) Broadcast(roomName string, msg []byte) {
	d.mu.Lock()
	r := d.rooms[roomName]
	if r == nil {
		d.mu.Unlock()
		return
	}
	dl := &delivery{r: r}
	dl.broadcast(nil, msg)
	d.release(dl)
}
