package signaling

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/promreg"
	"github.com/parleyhq/parley/signaling/proto"
)

// Refill after a cluster bus outage (docs/cluster.md, failure cases).
// Pushes relayed between nodes are lost while Redis is away, and a
// client notices such a gap only at the conversation's next event or its
// next reconnect. So when a node's bus works again (cluster.Bus
// OnRecover), the node itself pushes to its sessions what the outage may
// have cost them, read from the store: for every connected identity,
// the conversations it joined meanwhile (the "conversation" push) and
// the message events stored since the outage began, as the same
// "message" pushes a live relay would have made (clients ignore a seq
// they hold, so an event pushed twice is harmless). Publications that
// this node failed to send are lost for the other nodes even when their
// own bus never noticed anything, so this node also sends them a refill
// hint on each lost topic, and they refill that conversation (or
// identity) the same way. Presence changes are refilled from the merged
// view (presence_cluster_refill.go), after this node's outage and on a
// hint for the presence topic. Typing and receipts lost in the outage
// are not (watermarks are sent again at the next sync).
//
// The work runs on Run's goroutine (never on the bus's) and is bounded
// per round; what is left out shows to clients as a gap at the next
// event, as before.

const (
	// refillPage is the events per store read.
	refillPage = 100
	// maxRefillPerConversation: at most the newest this many events of a
	// conversation are pushed; a client missing more sees the gap below
	// them and fills it with chat_range.
	maxRefillPerConversation = 200
	// maxRefillEvents bounds the events pushed per round; past it each
	// further conversation gets only its newest event, which shows its
	// clients the gap.
	maxRefillEvents = 10000
	// maxRefillConversations bounds the conversations read per round.
	maxRefillConversations = 5000
	// maxRefillIdentities bounds the identities whose conversations are
	// listed per round.
	maxRefillIdentities = 5000
	// maxRefillPending bounds the hints waiting for a round; beyond it
	// the node refills every local identity instead.
	maxRefillPending = 4096
	// refillGap separates rounds: a Redis that comes and goes makes one
	// round per second at most, each covering the outages queued
	// meanwhile, instead of a store read per session per flap.
	refillGap = time.Second
	// A round's reads that failed (the store or Redis away) are tried
	// again after refillRetryFirst, doubling, up to maxRefillRetries
	// times; then what is left shows to clients as a gap at the next
	// event, as before.
	refillRetryFirst = time.Second
	maxRefillRetries = 5
)

// Refill causes, the label of parley_signaling_cluster_refills_total.
const (
	refillOutage = "outage" // this node's bus was interrupted
	refillPeer   = "peer"   // another node lost publications (a hint)
	refillNode   = "node"   // another node left, maybe with publications queued
)

// ClusterRefill repairs what a bus outage cost the sessions of this node
// and of the others. Outage and the hints that arrive through
// DeliverRemote queue work; Run does it.
type ClusterRefill struct {
	s    *Server
	wake chan struct{}

	mu  sync.Mutex
	job refillJob

	rounds *prometheus.CounterVec
	events prometheus.Counter
}

// refillJob is the work queued for the next round; each since is the
// earliest asked for.
type refillJob struct {
	all       time.Time            // refill every connected identity (zero: no)
	announce  map[string]time.Time // lost topics to send a hint on
	everyConv time.Time            // more topics were lost than listed: hint every indexed conversation
	convs     map[string]time.Time // conversations another node lost publications of
	ids       map[string]time.Time // identities another node lost publications to
	presence  time.Time            // presence changes may have missed this node since (zero: no)
	departed  time.Time            // another node left: refill every connected identity since (zero: no)
}

func (j *refillJob) empty() bool {
	return j.all.IsZero() && j.everyConv.IsZero() && j.presence.IsZero() && j.departed.IsZero() &&
		len(j.announce) == 0 && len(j.convs) == 0 && len(j.ids) == 0
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// queue sets m[key] to the earliest since; false when m is full.
func queue(m *map[string]time.Time, key string, since time.Time) bool {
	if *m == nil {
		*m = map[string]time.Time{}
	}
	if old, ok := (*m)[key]; ok {
		(*m)[key] = earliest(old, since)
		return true
	}
	if len(*m) >= maxRefillPending {
		return false
	}
	(*m)[key] = since
	return true
}

func newClusterRefill(s *Server, reg prometheus.Registerer, clustered bool) (*ClusterRefill, error) {
	r := &ClusterRefill{
		s:    s,
		wake: make(chan struct{}, 1),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_cluster_refills_total",
			Help: "Refills of chat sessions from storage after a cluster bus outage, by cause: outage (this node's bus), peer (another node's lost publications) or node (another node left).",
		}, []string{"cause"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signaling_cluster_refill_events_total",
			Help: "Stored chat events pushed to this node's sessions by refills after a cluster bus outage.",
		}),
	}
	if !clustered {
		return r, nil // a single node has no bus: no such series
	}
	if err := promreg.Register(reg, "signaling", r.rounds, r.events); err != nil {
		return nil, err
	}
	return r, nil
}

// ClusterRefill is the refill of this server's sessions after a cluster
// bus outage; cmd/parley runs it in cluster mode.
func (s *Server) ClusterRefill() *ClusterRefill { return s.refill }

// Outage queues the refill after this node's bus recovered from an
// outage that began at since. unsubscribed: its subscription was
// interrupted, so its sessions are refilled; lost are the topics of
// this node's publications that did not go out (lostMore: more than
// listed), which the other nodes are told of. It does not block.
func (r *ClusterRefill) Outage(since time.Time, unsubscribed bool, lost []string, lostMore bool) {
	// The chat store keeps times in milliseconds: an event stored in the
	// outage's first millisecond reads back as before since.
	since = since.Truncate(time.Millisecond)
	r.mu.Lock()
	if unsubscribed {
		r.job.all = earliest(r.job.all, since)
		r.job.presence = earliest(r.job.presence, since)
	}
	for _, t := range lost {
		if !queue(&r.job.announce, t, since) {
			lostMore = true
			break
		}
	}
	if lostMore {
		r.job.everyConv = earliest(r.job.everyConv, since)
	}
	r.mu.Unlock()
	r.signal()
}

// Departed queues the refill after another node left the cluster (its
// lease lapsed): the publications it had queued, stored since since,
// may never have reached this node's sessions. since is the node's last
// renewal less cluster.LossMargin. It does not block.
func (r *ClusterRefill) Departed(since time.Time) {
	since = since.Truncate(time.Millisecond) // as in Outage
	r.mu.Lock()
	r.job.departed = earliest(r.job.departed, since)
	r.mu.Unlock()
	r.signal()
}

// hint queues the refill another node asked for: of one conversation
// (conv), of one identity's conversations, or (neither) of presence.
func (r *ClusterRefill) hint(conv, identity string, since time.Time) {
	r.mu.Lock()
	ok := true
	switch {
	case conv != "":
		ok = queue(&r.job.convs, conv, since)
	case identity != "":
		ok = queue(&r.job.ids, identity, since)
	default:
		r.job.presence = earliest(r.job.presence, since)
	}
	if !ok { // too many: refill everyone here instead
		r.job.all = earliest(r.job.all, since)
	}
	r.mu.Unlock()
	r.signal()
}

func (r *ClusterRefill) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run does the queued refills, one round at a time and at most one per
// refillGap, until ctx ends. The reads of a round that failed are
// queued again after a backoff (retry).
func (r *ClusterRefill) Run(ctx context.Context) error {
	gap := time.NewTimer(0)
	defer gap.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var failed refillJob // waiting for retry
	tries := 0           // of what failed, since a round last did all it had
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-retry.C:
			r.mu.Lock()
			r.job.merge(failed)
			r.mu.Unlock()
			failed = refillJob{}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-gap.C:
		}
		r.mu.Lock()
		job := r.job
		r.job = refillJob{}
		r.mu.Unlock()
		if !job.empty() {
			left := r.round(ctx, job)
			switch {
			case left.empty() || ctx.Err() != nil:
				tries = 0
			case tries < maxRefillRetries:
				failed.merge(left)
				retry.Reset(refillRetryFirst << tries)
				tries++
			default:
				r.s.log.Warn("cluster refill: reads still failing, given up (clients see the gap at the next event)", "tries", tries)
				tries = 0
			}
		}
		gap.Reset(refillGap)
	}
}

// merge adds the work of o to j, each since the earliest.
func (j *refillJob) merge(o refillJob) {
	j.all = earliest(j.all, o.all)
	j.everyConv = earliest(j.everyConv, o.everyConv)
	j.presence = earliest(j.presence, o.presence)
	j.departed = earliest(j.departed, o.departed)
	for _, m := range []struct{ dst, src *map[string]time.Time }{
		{&j.announce, &o.announce}, {&j.convs, &o.convs}, {&j.ids, &o.ids},
	} {
		for k, since := range *m.src {
			if !queue(m.dst, k, since) {
				j.all = earliest(j.all, since)
			}
		}
	}
}

// refillRound is one round's state: what is done and what is left of
// its bounds.
type refillRound struct {
	done   map[string]time.Time // conversation -> since it was refilled from
	convs  int
	events int
	capped int       // conversations left out by maxRefillConversations
	failed refillJob // what a failed read left undone, to try again
}

// round does job and returns what failed reads left undone.
func (r *ClusterRefill) round(ctx context.Context, job refillJob) refillJob {
	h := r.s.hub
	// Hints first: they cost one publication each, and the other nodes
	// then work in parallel with this one.
	for topic, since := range job.announce {
		r.announce(topic, since)
	}
	if !job.everyConv.IsZero() {
		r.announce(topicPresence, job.everyConv) // it may have been among those lost
		for _, conv := range h.indexedConversations(maxRefillPending) {
			r.announce(topicConv(conv), job.everyConv)
		}
	}
	rd := &refillRound{done: map[string]time.Time{}}
	// Presence next: one read of the merged view, before the store's
	// reads, which take longer.
	if !job.presence.IsZero() && r.s.cpres != nil {
		if _, err := r.s.cpres.refill(ctx, job.presence); err != nil {
			rd.failed.presence = job.presence
		}
	}
	if !job.all.IsZero() {
		r.rounds.WithLabelValues(refillOutage).Inc()
	}
	if !job.departed.IsZero() {
		r.rounds.WithLabelValues(refillNode).Inc()
		job.all = earliest(job.all, job.departed)
	}
	if !job.all.IsZero() {
		for _, id := range h.chatIdentities(maxRefillIdentities) {
			r.identity(ctx, rd, id, job.all)
		}
	}
	if len(job.ids) > 0 || len(job.convs) > 0 {
		r.rounds.WithLabelValues(refillPeer).Inc()
	}
	for id, since := range job.ids {
		if h.chatting(id) {
			r.identity(ctx, rd, id, since)
		}
	}
	for conv, since := range job.convs {
		if members := h.members(conv); len(members) > 0 {
			r.conversation(ctx, rd, conv, members[0], since)
		}
	}
	if rd.capped > 0 {
		r.s.log.Warn("cluster refill: conversations left out (their clients see the gap at the next event)", "left_out", rd.capped)
	}
	r.s.log.Info("cluster refill done", "conversations", rd.convs, "events", rd.events)
	return rd.failed
}

// retry queues a failed read for the next try: add queues it, and when
// too many are queued already, every identity here is refilled instead.
func (rd *refillRound) retry(add func(*refillJob) bool, since time.Time) {
	if !add(&rd.failed) {
		rd.failed.all = earliest(rd.failed.all, since)
	}
}

// announce sends the other nodes a refill hint for a lost topic.
func (r *ClusterRefill) announce(topic string, since time.Time) {
	ev := relayEvent{Kind: relayRefill, Since: since.UnixMilli()}
	switch {
	case strings.HasPrefix(topic, "c:"):
		ev.Conv = strings.TrimPrefix(topic, "c:")
	case strings.HasPrefix(topic, "u:"):
		ev.Identity = strings.TrimPrefix(topic, "u:")
	case topic == topicPresence:
		// Neither: the other nodes refill the presence their sessions
		// watch.
	default:
		return
	}
	r.s.hub.publish(topic, ev)
}

// identity refills one connected identity: conversations it is a member
// of that this node did not index for it (made during the outage) are
// indexed and announced to its sessions, and those active since since
// are refilled.
func (r *ClusterRefill) identity(ctx context.Context, rd *refillRound, id string, since time.Time) {
	if ctx.Err() != nil {
		return // shutting down: no warning per identity
	}
	cctx, cancel := context.WithTimeout(ctx, chatCallTimeout)
	sums, err := r.s.chat.Conversations(cctx, id)
	cancel()
	if err != nil {
		r.s.log.Warn("cluster refill: listing conversations", "identity", id, "err", err)
		rd.retry(func(j *refillJob) bool { return queue(&j.ids, id, since) }, since)
		return
	}
	h := r.s.hub
	for _, sum := range sums {
		conv := sum.Conversation
		if len(h.addMembers(conv.ID, conv.Kind, id)) > 0 {
			view := proto.NewConversationView(sum, id)
			n := h.pushIdentityLocal(id, proto.Encode(proto.TypeConversation, "", proto.ConversationBody{Conversation: view}), nil)
			r.s.metrics.chatPushes.Add(float64(n))
		}
		if conv.LastSeq > 0 && !sum.LastActivity.Before(since) {
			r.conversation(ctx, rd, conv.ID, id, since)
		}
	}
}

// conversation pushes the events of conv stored since since (the newest
// maxRefillPerConversation of them) to this node's sessions of its
// members, in seq order. member is a member, for the store's check.
func (r *ClusterRefill) conversation(ctx context.Context, rd *refillRound, conv, member string, since time.Time) {
	if done, ok := rd.done[conv]; ok && !since.Before(done) || ctx.Err() != nil {
		return
	}
	rd.done[conv] = since
	if rd.convs >= maxRefillConversations {
		rd.capped++
		return
	}
	rd.convs++
	limit := maxRefillPerConversation
	if rd.events >= maxRefillEvents {
		limit = 1
	}
	var got []chat.Message // newest first
	before := int64(0)
	for len(got) < limit && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, chatCallTimeout)
		page, err := r.s.chat.History(cctx, member, conv, before, min(refillPage, limit-len(got)))
		cancel()
		if err != nil {
			r.s.log.Warn("cluster refill: reading events", "conversation", conv, "err", err)
			rd.retry(func(j *refillJob) bool { return queue(&j.convs, conv, since) }, since)
			break
		}
		older := false
		for _, m := range page.Messages {
			if m.CreatedAt.Before(since) {
				older = true
				break
			}
			got = append(got, m)
		}
		if older || !page.More || len(page.Messages) == 0 {
			break
		}
		before = page.Messages[len(page.Messages)-1].Seq
	}
	h := r.s.hub
	n := 0
	for i := len(got) - 1; i >= 0; i-- {
		m := got[i]
		n += h.pushOrderedLocal(conv, m.Seq, proto.Encode(proto.TypeMessage, "", proto.NewMessageView(m)), nil)
	}
	r.s.metrics.chatPushes.Add(float64(n))
	r.events.Add(float64(len(got)))
	rd.events += len(got)
}

// chatIdentities lists up to max identities with a session here whose
// token grants chat: only those have their conversations indexed
// (chatSession.enter), so only those are refilled; a call-only session
// must not get conversations through a refill that it would not get
// live.
func (h *hub) chatIdentities(max int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, min(max, len(h.sessions)))
	for id := range h.sessions {
		if len(out) == max {
			break
		}
		if h.chattingLocked(id) {
			out = append(out, id)
		}
	}
	return out
}

// chatting reports whether identity has a session here that may chat.
func (h *hub) chatting(identity string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chattingLocked(identity)
}

func (h *hub) chattingLocked(identity string) bool {
	for c := range h.sessions[identity] {
		if c.ss.claims.Grants.Chat { // claims never change after the join
			return true
		}
	}
	return false
}

// indexedConversations lists up to max conversations in the index.
func (h *hub) indexedConversations(max int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, min(max, len(h.convs)))
	for id := range h.convs {
		if len(out) == max {
			break
		}
		out = append(out, id)
	}
	return out
}
