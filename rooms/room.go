package rooms

import (
	"cmp"
	"slices"
	"sync"
)

type room struct {
	name         string
	participants map[string]*Participant // by identity
	// out orders the room's deliveries: taken under Directory.mu, held
	// while queueing, released after (see the package comment).
	out sync.Mutex
}

// sortedLocked returns the room's participants in join order.
func (r *room) sortedLocked() []*Participant {
	out := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Participant) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), cmp.Compare(a.SID, b.SID))
	})
	return out
}

// delivery is what one change of a room sends, in order: collected
// under Directory.mu, queued after it is released.
type delivery struct {
	r    *room
	acts []action
}

// action is one message for a member, or (bye set) its goodbye.
type action struct {
	to  Member
	msg []byte
	bye string
}

// to queues msg for p (nothing for a stream, which has no connection).
func (dl *delivery) to(p *Participant, msg []byte) {
	if p.Member != nil {
		dl.acts = append(dl.acts, action{to: p.Member, msg: msg})
	}
}

// broadcast queues msg for every participant of the room except skip.
func (dl *delivery) broadcast(skip *Participant, msg []byte) {
	for _, p := range dl.r.participants {
		if p != skip {
			dl.to(p, msg)
		}
	}
}

// bye says goodbye to p with reason.
func (dl *delivery) bye(p *Participant, reason string) {
	if p.Member != nil {
		dl.acts = append(dl.acts, action{to: p.Member, bye: reason})
	}
}

func (dl *delivery) run() {
	for _, a := range dl.acts {
		if a.bye != "" {
			a.to.Bye(a.bye)
		} else {
			a.to.Send(a.msg)
		}
	}
}
