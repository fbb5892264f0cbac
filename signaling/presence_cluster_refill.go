package signaling

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// Presence refill after a bus outage (docs/cluster.md). A presence
// change is announced once, on the bus; a node whose subscription was
// down missed it, and its sessions would show the old status until the
// identity's next change. So when the bus works again (the chat refill's
// round, cluster_refill.go), the node reads from the merged view which
// of the identities its sessions watch changed since the outage began
// (versions are Redis's clock; an offline identity's version is kept for
// a while) and delivers each change it has not delivered yet, with the
// version rules of live changes: one delivered meanwhile that is newer
// stands. Two round trips: the listed members of the groups indexed
// here, then the changes (one more per 1,000 watched identities).

const (
	// maxPresenceRefill bounds the watched identities read per refill;
	// beyond it the others show their next change only.
	maxPresenceRefill = 50_000
	// presenceRefillTimeout bounds the reads of one refill.
	presenceRefillTimeout = 5 * time.Second
)

// refill delivers to this node's sessions the presence changes of the
// identities they watch made since since; it returns the sessions
// pushed to, and the error of a read that failed (the caller tries the
// refill again: ClusterRefill's retries).
func (p *clusterPresence) refill(ctx context.Context, since time.Time) (int, error) {
	if p.since == nil {
		return 0, nil
	}
	var failed error
	watchers, groups := p.watchers()
	if len(groups) > 0 {
		gctx, cancel := context.WithTimeout(ctx, presenceTimeout)
		members, err := p.since.GroupMembers(gctx, slices.Collect(maps.Keys(groups)))
		cancel()
		if err != nil {
			// The groups' members connected elsewhere are left out;
			// contacts and peers are still refilled.
			p.s.log.Warn("cluster presence refill: reading groups' members", "err", err)
			failed = err
		}
		for g, ms := range members {
			for _, m := range ms {
				for _, local := range groups[g] {
					watch(watchers, m, local)
				}
			}
		}
	}
	ids := slices.Collect(maps.Keys(watchers))
	if len(ids) > maxPresenceRefill {
		ids = ids[:maxPresenceRefill]
	}
	rctx, cancel := context.WithTimeout(ctx, presenceRefillTimeout)
	states, err := p.since.PresencesChangedSince(rctx, since, ids)
	cancel()
	if err != nil {
		p.s.log.Warn("cluster presence refill: reading changes", "err", err)
		return 0, err
	}
	n := 0
	for id, st := range states {
		msg := proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: id, Status: st.Status})
		p.mu.Lock()
		if s, ok := p.seen[id]; !ok || s.v < st.Version {
			p.newerLocked(id, st.Version)
			n += p.h.pushIdentitiesLocal(slices.Collect(maps.Keys(watchers[id])), msg)
		}
		p.mu.Unlock()
	}
	p.s.log.Info("cluster presence refill done", "watched", len(ids), "changed", len(states), "sessions", n)
	return n, failed
}

// watchers maps each identity whose presence this node's sessions show
// to the identities connected here that watch it (itself included, for
// its own other devices): their contacts connected here and their direct
// peers. groups are the indexed groups with their members connected
// here, whose other members are listed in the merged view.
func (p *clusterPresence) watchers() (watchers map[string]map[string]struct{}, groups map[string][]string) {
	watchers = map[string]map[string]struct{}{}
	groups = map[string][]string{}
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.sessions {
		if !h.chattingLocked(id) {
			continue // call-only sessions get no presence
		}
		watch(watchers, id, id)
		for _, peer := range p.peers[id] {
			watch(watchers, peer, id)
		}
		for convID := range h.memberOf[id] {
			e := h.convs[convID]
			if e == nil || e.kind == chat.KindRoom {
				continue
			}
			for m := range e.members {
				watch(watchers, m, id)
			}
			if e.kind == chat.KindGroup && len(groups) < maxRelistGroups {
				if _, ok := groups[convID]; !ok {
					groups[convID] = slices.Collect(maps.Keys(e.members))
				}
			}
		}
	}
	return watchers, groups
}

func watch(watchers map[string]map[string]struct{}, watched, by string) {
	w := watchers[watched]
	if w == nil {
		w = map[string]struct{}{}
		watchers[watched] = w
	}
	w[by] = struct{}{}
}

// connected reports whether identity has a session here.
func (h *hub) connected(identity string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions[identity]) > 0
}

// pushIdentitiesLocal queues msg to this node's sessions of ids.
func (h *hub) pushIdentitiesLocal(ids []string, msg []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, id := range ids {
		for c := range h.sessions[id] {
			c.enqueue(msg)
			n++
		}
	}
	return n
}
