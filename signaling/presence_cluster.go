package signaling

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// Cluster-wide presence (cluster mode, docs/cluster.md). Each node
// writes its own status of each identity connected to it into the merged
// view (ClusterPresence, Redis), and what a user sees is the merged
// status: online on any node is online. Writing returns whether the
// cluster-wide status changed; only then is the change announced, once,
// on the relay topic every node watches ("presence"), with the
// identity's direct and group conversations: each node pushes it to its
// own sessions of those conversations' members (and of the identity),
// as a single node pushes to contacts (presence.go). A change carries
// the merged view's version, so a node drops one that arrives after a
// newer one (two nodes' publications are not ordered with each other).
//
// A node's status of an identity is its local one (hub.statusLocked);
// writes are made per identity one at a time and always write the
// current local status rather than the change that prompted them, so
// writes racing on the bus's way cannot leave Redis behind. A failed
// write is retried every second (RunPresence).
//
// When a node dies, package cluster's reaper on a surviving node drops
// its entries and hands the transitions to PresenceReaped, which
// announces them like the others (reading the identity's conversations
// from the chat store, since no node indexes them any more).

const (
	topicPresence = "presence"
	// relayPresenceChange is a cluster-wide transition: Identity, its
	// presence Msg, the version in Seq and its conversations in Convs.
	relayPresenceChange = "pc"
	// presenceTimeout bounds one read or write of the merged view; they
	// run on a joining or leaving session's reader.
	presenceTimeout = time.Second
	// presenceSeenFor is how long a node remembers the newest version it
	// delivered of an identity; reordering on the bus is far shorter.
	presenceSeenFor = time.Minute
	// maxPresenceSeen bounds that memory; beyond it new versions are not
	// remembered (a late older change may then show briefly, until the
	// next).
	maxPresenceSeen = 100_000
	// presenceStripes serialise writes per identity without one lock for
	// the whole node.
	presenceStripes = 64
)

// ClusterGroups is an optional part of a ClusterPresence (package
// cluster's Presence has it): the members of groups, listed in Redis, so
// a node knows the members of a group none of whom is connected to it.
type ClusterGroups interface {
	// GroupPresences adds identity to the members of groups and returns
	// the merged status of the other members of groups and of also
	// (offline ones left out), in one round trip.
	GroupPresences(ctx context.Context, identity string, groups, also []string) (map[string]PresenceState, error)
	// AddGroupMembers lists members as members of group.
	AddGroupMembers(ctx context.Context, group string, members []string) error
}

// ClusterPresenceRefill is an optional part of a ClusterPresence
// (package cluster's Presence has it): what a node needs to catch up on
// the changes its bus missed (refill).
type ClusterPresenceRefill interface {
	// PresencesChangedSince returns the merged status and version of
	// those of identities whose last cluster-wide change was made at
	// since or later, offline ones included.
	PresencesChangedSince(ctx context.Context, since time.Time, identities []string) (map[string]PresenceState, error)
	// GroupMembers returns the members listed of each of groups.
	GroupMembers(ctx context.Context, groups []string) (map[string][]string, error)
}

type clusterPresence struct {
	s      *Server
	h      *hub
	view   ClusterPresence
	groups ClusterGroups         // nil: the view cannot list groups' members
	since  ClusterPresenceRefill // nil: the view cannot tell what changed

	stripes [presenceStripes]sync.Mutex

	// mu guards the maps below; taken before hub.mu, never after.
	mu sync.Mutex
	// written is what this node wrote of each identity (absent: offline).
	written map[string]string
	// dirty are identities whose last write failed (RunPresence retries).
	dirty map[string]struct{}
	// seen is the newest version delivered to this node's sessions.
	seen map[string]seenVersion
	// peers are the direct peers of each identity connected here, as its
	// sessions read them at entry (sendSnapshot) and as direct
	// conversations made since add them (joined), for refill; dropped
	// when the identity has no session here any more.
	peers map[string][]string
	// last is the newest change this node announced of each identity
	// connected here, sent again to a conversation the identity joins
	// later (joined).
	last map[string]announced
	// relist: the merged view lost this node's entries, and with them
	// maybe the groups' member lists; run lists the members connected
	// here again.
	relist bool

	// failedAt is when a read or write of the merged view last failed
	// (Unix nanoseconds; 0: the last one worked).
	failedAt atomic.Int64
}

// announced is a presence change as announced: its version and message.
type announced struct {
	version int64
	msg     []byte
}

type seenVersion struct {
	v  int64
	at time.Time
}

func newClusterPresence(s *Server, view ClusterPresence) *clusterPresence {
	p := &clusterPresence{s: s, h: s.hub, view: view,
		written: map[string]string{}, dirty: map[string]struct{}{}, seen: map[string]seenVersion{},
		peers: map[string][]string{}, last: map[string]announced{}}
	p.groups, _ = view.(ClusterGroups)
	p.since, _ = view.(ClusterPresenceRefill)
	s.hub.watch(topicPresence, true)
	s.hub.watch(topicNode(view.NodeID()), true) // call_cluster.go
	return p
}

func (p *clusterPresence) stripe(identity string) *sync.Mutex {
	f := fnv.New32a()
	_, _ = f.Write([]byte(identity))
	return &p.stripes[f.Sum32()%presenceStripes]
}

// sync writes identity's local status into the merged view if it is not
// what this node last wrote, and announces the cluster-wide change that
// made, if any. convs are the identity's conversations when the index no
// longer has them (its last session here just left). It runs on a
// joining or leaving session's reader: while Redis has just failed it
// only leaves the write to run's retries, so sessions do not each wait
// for a Redis that is away.
func (p *clusterPresence) sync(identity string, convs []string) {
	if p.failing() {
		p.mu.Lock()
		p.dirty[identity] = struct{}{}
		p.mu.Unlock()
		return
	}
	p.write(identity, convs, false)
}

// failBackoff is how long after a failed read or write of the merged
// view sessions do not try again (run's retries do).
const failBackoff = time.Second

func (p *clusterPresence) failing() bool {
	at := p.failedAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < failBackoff
}

func (p *clusterPresence) noteResult(err error) {
	if err != nil {
		p.failedAt.Store(time.Now().UnixNano())
	} else if p.failedAt.Load() != 0 {
		p.failedAt.Store(0)
	}
}

// write is sync without the back-off. lookup lets announce read the
// identity's conversations from the chat store (not on a session's
// reader: with PostgreSQL away it would wait for the chat timeout).
func (p *clusterPresence) write(identity string, convs []string, lookup bool) {
	mu := p.stripe(identity)
	mu.Lock()
	defer mu.Unlock()
	now := p.h.status(identity)
	p.mu.Lock()
	was, ok := p.written[identity]
	if !ok {
		was = proto.PresenceOffline
	}
	if now == was {
		delete(p.dirty, identity) // a retry that the identity's leaving made moot
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.s.baseCtx, presenceTimeout)
	ch, err := p.view.SetPresence(ctx, identity, now)
	cancel()
	p.noteResult(err)
	p.mu.Lock()
	if err != nil {
		_, again := p.dirty[identity]
		p.dirty[identity] = struct{}{}
		p.mu.Unlock()
		if !again { // a Redis away for a while does not log every retry
			p.s.log.Warn("cluster presence: write failed; retrying every second", "identity", identity, "err", err)
		}
		return
	}
	delete(p.dirty, identity)
	if now == proto.PresenceOffline {
		delete(p.written, identity)
	} else {
		p.written[identity] = now
	}
	p.mu.Unlock()
	if ch.Before != ch.After {
		p.announce(identity, ch.After, ch.Version, convs, lookup)
	}
}

// announce delivers a cluster-wide change to this node's sessions and
// relays it to the other nodes. Its conversations are the given ones,
// else the index's, else, with lookup, the chat store's (a reaped
// identity is connected nowhere).
func (p *clusterPresence) announce(identity, status string, version int64, convs []string, lookup bool) {
	if convs == nil {
		convs = p.h.contactConvs(identity)
	}
	if convs == nil && lookup {
		convs = p.storedConvs(identity)
	}
	msg := proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: identity, Status: status})
	if p.h.connected(identity) {
		p.mu.Lock()
		if a, ok := p.last[identity]; !ok || a.version <= version {
			p.last[identity] = announced{version: version, msg: msg}
		}
		p.mu.Unlock()
	}
	p.deliver(identity, version, msg, convs)
	p.h.publish(topicPresence, relayEvent{Kind: relayPresenceChange, Identity: identity, Seq: version, Msg: msg, Convs: convs})
}

// joined is told that identity, connected here, was added to conv, a
// conversation made on this node or another. A direct peer joins the
// identity's peers (for refill). And the identity's newest change this
// node announced goes again to conv's members, here and on the other
// nodes: the announcement may have gone out before this node knew conv,
// listing only the conversations it knew, while the node that made conv
// read the merged view before this node's write (seen in CI: a member
// coming online as the other opened a direct conversation with them
// showed offline until their next change). Nothing is read from Redis:
// a receiver that delivered a newer change of the identity drops this
// one (newerLocked).
func (p *clusterPresence) joined(identity string, conv chat.Conversation) {
	if conv.Kind == chat.KindRoom {
		return
	}
	p.mu.Lock()
	if conv.Kind == chat.KindDirect {
		peers := p.peers[identity]
		if peer := proto.DirectPeer(conv.Key, identity); peer != "" && !slices.Contains(peers, peer) && len(peers) < maxPresenceContacts {
			p.peers[identity] = append(peers, peer)
		}
	}
	a, ok := p.last[identity]
	p.mu.Unlock()
	if !ok {
		return
	}
	convs := []string{conv.ID}
	p.deliver(identity, a.version, a.msg, convs)
	p.h.publish(topicPresence, relayEvent{Kind: relayPresenceChange, Identity: identity, Seq: a.version, Msg: a.msg, Convs: convs})
}

// storedConvs lists identity's direct and group conversations from the
// chat store (at most maxPresenceContacts).
func (p *clusterPresence) storedConvs(identity string) []string {
	if p.s.chat == nil {
		return nil
	}
	ctx, cancel := p.s.chatCtx()
	defer cancel()
	sums, err := p.s.chat.Conversations(ctx, identity)
	if err != nil {
		p.s.log.Warn("cluster presence: listing conversations", "identity", identity, "err", err)
		return nil
	}
	var out []string
	for _, sum := range sums {
		if sum.Conversation.Kind != chat.KindRoom && len(out) < maxPresenceContacts {
			out = append(out, sum.Conversation.ID)
		}
	}
	return out
}

// deliver pushes identity's presence msg of the given version to this
// node's sessions of identity and of the members of convs, unless a
// newer version was delivered already.
func (p *clusterPresence) deliver(identity string, version int64, msg []byte, convs []string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.newerLocked(identity, version) {
		return 0
	}
	return p.h.pushPresenceLocal(identity, msg, convs)
}

// newerLocked records version as the newest of identity unless a newer
// one was delivered; it reports whether version is to be delivered.
func (p *clusterPresence) newerLocked(identity string, version int64) bool {
	if s, ok := p.seen[identity]; ok {
		if s.v > version {
			return false
		}
	} else if len(p.seen) >= maxPresenceSeen {
		return true
	}
	p.seen[identity] = seenVersion{v: version, at: time.Now()}
	return true
}

// sendSnapshot queues to c the merged status of each of its contacts
// that is not offline: those connected to this node, its direct peers
// and the members of its groups, wherever they are connected (one read
// of the merged view, bounded by presenceTimeout; while it fails, this
// node's own view).
func (p *clusterPresence) sendSnapshot(c *chatSession) {
	ids := p.h.contacts(c.identity())
	p.mu.Lock()
	// Added to, not replaced: a direct conversation made on another
	// node may have reached joined between this session's entry, when
	// c.peers was read, and now (CI saw the peer lost that way).
	peers := p.peers[c.identity()]
	for _, peer := range c.peers {
		if !slices.Contains(peers, peer) && len(peers) < maxPresenceContacts {
			peers = append(peers, peer)
		}
	}
	p.peers[c.identity()] = peers
	p.mu.Unlock()
	for _, peer := range c.peers {
		if !slices.Contains(ids, peer) {
			ids = append(ids, peer)
		}
	}
	if len(ids) > maxPresenceContacts {
		ids = ids[:maxPresenceContacts]
	}
	states, ok := p.readGroups(c.identity(), ids)
	if !ok {
		states = p.read(ids)
	}
	shown := make([]string, 0, len(states))
	for id := range states {
		shown = append(shown, id)
	}
	slices.Sort(shown)
	if len(shown) > maxPresenceContacts {
		shown = shown[:maxPresenceContacts]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range shown {
		st := states[id]
		// A change delivered since the read is newer than what was read
		// (this node's own view, version 0, is current).
		if s, ok := p.seen[id]; ok && st.Version != 0 && s.v > st.Version {
			continue
		}
		c.enqueue(proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: id, Status: st.Status}))
	}
}

// readGroups lists identity as a member of its indexed groups and
// returns the merged status of their members and of also; false when
// the view cannot list groups or Redis failed (now or within the last
// failBackoff).
func (p *clusterPresence) readGroups(identity string, also []string) (map[string]PresenceState, bool) {
	if p.groups == nil || p.failing() {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(p.s.baseCtx, presenceTimeout)
	states, err := p.groups.GroupPresences(ctx, identity, p.h.groupConvs(identity), also)
	cancel()
	p.noteResult(err)
	if err != nil {
		p.s.log.Warn("cluster presence: reading groups failed; showing this node's view", "err", err)
		return nil, false
	}
	return states, true
}

// groupMembers are the members of group convID online anywhere but
// caller (whom it lists as a member), with their merged status; false
// when they cannot be read.
func (p *clusterPresence) groupMembers(caller, convID string) (map[string]PresenceState, bool) {
	if p.groups == nil || p.failing() {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(p.s.baseCtx, presenceTimeout)
	states, err := p.groups.GroupPresences(ctx, caller, []string{convID}, nil)
	cancel()
	p.noteResult(err)
	if err != nil {
		p.s.log.Warn("cluster presence: reading a group's members failed; ringing this node's", "conversation", convID, "err", err)
		return nil, false
	}
	return states, true
}

// noteGroup lists the members of a new group in the merged view, so
// that members connected before it existed are known on every node (the
// group's creator's node calls it; members connecting later list
// themselves in readGroups).
func (p *clusterPresence) noteGroup(conv chat.Conversation, members []string) {
	if p.groups == nil || conv.Kind != chat.KindGroup || p.failing() {
		return
	}
	ctx, cancel := context.WithTimeout(p.s.baseCtx, presenceTimeout)
	err := p.groups.AddGroupMembers(ctx, conv.ID, members)
	cancel()
	p.noteResult(err)
	if err != nil {
		p.s.log.Warn("cluster presence: listing a group's members failed", "conversation", conv.ID, "err", err)
	}
}

// read returns the merged status of ids; when the view cannot be read,
// this node's own view (a contact connected elsewhere then shows
// offline until its next change).
func (p *clusterPresence) read(ids []string) map[string]PresenceState {
	if !p.failing() {
		ctx, cancel := context.WithTimeout(p.s.baseCtx, presenceTimeout)
		states, err := p.view.Presences(ctx, ids)
		cancel()
		p.noteResult(err)
		if err == nil {
			return states
		}
		p.s.log.Warn("cluster presence: read failed; showing this node's view", "err", err)
	}
	states := map[string]PresenceState{}
	for _, id := range ids {
		if st := p.h.status(id); st != proto.PresenceOffline {
			states[id] = PresenceState{Status: st}
		}
	}
	return states
}

// status is identity's merged status (the call table rings by it).
func (p *clusterPresence) status(identity string) string {
	if st, ok := p.read([]string{identity})[identity]; ok {
		return st.Status
	}
	return proto.PresenceOffline
}

// deliverRemote applies a change another node announced.
func (p *clusterPresence) deliverRemote(ev relayEvent) int {
	if ev.Identity == "" || len(ev.Convs) > maxPresenceContacts {
		return 0
	}
	return p.deliver(ev.Identity, ev.Seq, ev.Msg, ev.Convs)
}

// reaped announces the changes a dead node's leaving made.
func (p *clusterPresence) reaped(changes []PresenceChange) {
	for _, ch := range changes {
		if ch.Before != ch.After {
			p.announce(ch.Identity, ch.After, ch.Version, nil, true)
		}
	}
}

// lost marks every identity this node wrote for writing again: its
// entries are gone from the merged view.
func (p *clusterPresence) lost() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.written {
		p.dirty[id] = struct{}{}
		delete(p.written, id)
	}
	p.relist = p.groups != nil
}

// maxRelistGroups bounds the groups relistGroups lists after a loss;
// the members of others list themselves when they next connect.
const maxRelistGroups = 5000

// relistGroups lists the members connected here of the groups indexed
// here (at most maxRelistGroups), after the merged view lost its data;
// false when Redis failed (the next round tries again).
func (p *clusterPresence) relistGroups(ctx context.Context) bool {
	for convID, members := range p.h.localGroups(maxRelistGroups) {
		if ctx.Err() != nil {
			return false
		}
		wctx, cancel := context.WithTimeout(ctx, presenceTimeout)
		err := p.groups.AddGroupMembers(wctx, convID, members)
		cancel()
		p.noteResult(err)
		if err != nil {
			return false
		}
	}
	return true
}

// run retries failed writes and forgets old versions, every second,
// until ctx ends.
func (p *clusterPresence) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		retry := make([]string, 0, len(p.dirty))
		for id := range p.dirty {
			retry = append(retry, id)
		}
		for id, s := range p.seen {
			if time.Since(s.at) > presenceSeenFor {
				delete(p.seen, id)
			}
		}
		for id := range p.peers {
			if !p.h.connected(id) {
				delete(p.peers, id)
			}
		}
		for id := range p.last {
			if !p.h.connected(id) {
				delete(p.last, id)
			}
		}
		relist := p.relist
		p.relist = false
		p.mu.Unlock()
		for _, id := range retry {
			if ctx.Err() != nil {
				return
			}
			p.write(id, nil, true)
			if p.failing() {
				break // Redis is still away: the next round tries again
			}
		}
		if relist && (p.failing() || !p.relistGroups(ctx)) {
			p.mu.Lock()
			p.relist = true
			p.mu.Unlock()
		}
	}
}

// PresenceReaped announces the presence changes caused by a dead node's
// entries leaving the merged view (package cluster's reaper calls it).
func (s *Server) PresenceReaped(changes []PresenceChange) {
	if s.cpres != nil {
		s.cpres.reaped(changes)
	}
}

// PresenceLost makes this node write its identities' presence again:
// its entries are gone from the merged view (package cluster noticed).
func (s *Server) PresenceLost() {
	if s.cpres != nil {
		s.cpres.lost()
	}
}

// RunPresence retries failed presence writes and answers calls for
// sessions on other nodes until ctx ends (cluster mode; returns at once
// on a single node).
func (s *Server) RunPresence(ctx context.Context) error {
	if s.cpres == nil {
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.ccalls.run(ctx) }) // call_cluster.go
	s.cpres.run(ctx)
	wg.Wait()
	return nil
}

// contactConvsLocked are identity's indexed direct and group
// conversations (at most maxPresenceContacts); nil when it has none
// here. hub.mu is held.
func (h *hub) contactConvsLocked(identity string) []string {
	var out []string
	for convID := range h.memberOf[identity] {
		if e := h.convs[convID]; e == nil || e.kind == chat.KindRoom {
			continue
		}
		if len(out) == maxPresenceContacts {
			break
		}
		out = append(out, convID)
	}
	return out
}

func (h *hub) contactConvs(identity string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.contactConvsLocked(identity)
}

// localGroups are the indexed groups (at most limit) with their members
// connected here.
func (h *hub) localGroups(limit int) map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for convID, e := range h.convs {
		if e.kind != chat.KindGroup || len(e.members) == 0 {
			continue
		}
		if len(out) == limit {
			break
		}
		members := make([]string, 0, len(e.members))
		for id := range e.members {
			members = append(members, id)
		}
		out[convID] = members
	}
	return out
}

// groupConvs are identity's indexed group conversations (at most
// maxPresenceContacts).
func (h *hub) groupConvs(identity string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for convID := range h.memberOf[identity] {
		if e := h.convs[convID]; e == nil || e.kind != chat.KindGroup {
			continue
		}
		if len(out) == maxPresenceContacts {
			break
		}
		out = append(out, convID)
	}
	return out
}

func (h *hub) contacts(identity string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.contactsLocked(identity)
}

// pushPresenceLocal queues msg, identity's presence, to this node's
// sessions of identity and of the other members of convs, once each.
func (h *hub) pushPresenceLocal(identity string, msg []byte, convs []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	to := map[string]struct{}{identity: {}}
	for _, convID := range convs {
		e := h.convs[convID]
		if e == nil || e.kind == chat.KindRoom {
			continue
		}
		for id := range e.members {
			to[id] = struct{}{}
		}
	}
	n := 0
	for id := range to {
		for c := range h.sessions[id] {
			c.enqueue(msg)
			n++
		}
	}
	return n
}
