package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Presence is the cluster-wide presence of identities, merged from every
// node's own view. Each identity has a hash in Redis,
// <prefix>presence:<identity>, with one field per node that has sessions
// of it ("n:<node id>" -> "<node run> <status>") and the version of its
// last cluster-wide change ("v"). An entry counts while the lease of the
// node run that wrote it lives, so a node that dies stops counting the
// moment its lease lapses; the merged status is the strongest counted
// one (in_call, then online; none: offline).
//
// Changes are made by scripts that compute the merged status before and
// after, atomically, so exactly one node sees each cluster-wide
// transition (first device online anywhere, last offline everywhere, a
// change of status) and announces it. Versions are Redis's clock in
// microseconds, bumped past the previous one, so receivers can drop an
// announcement that arrives after a newer one (two nodes' publications
// are not ordered with each other).
//
// Group members are listed in Redis too, for the nodes that do not index
// a group (none of its members is connected to them): a set
// <prefix>group:<conversation id> of the identities known as members.
// Members add themselves when they connect (GroupStatuses), and a
// group's creator's node adds every member (AddGroupMembers). Group
// membership only grows in Parley, so the sets are not pruned; a set is
// a superset of the members online, whose status is read from their
// presence hashes as always.
//
// A dead node's entries are removed by the survivors (Run): each node
// run keeps the set of identities it has entries for, and lists itself
// in <prefix>presence-nodes; a node whose run in that list has no live
// lease is reaped, its identities popped in batches (SPOP, so several
// survivors share the work and each identity is handled once), and the
// transitions its death caused are handed to onReap.
type Presence struct {
	node   *Node
	id     string // this node's id and run, fixed at New
	inc    string
	onReap func([]PresenceChange)
	onLost func()
	log    *slog.Logger
	set    *redis.Script
	read   *redis.Script
	dead   *redis.Script
	reap   *redis.Script
	groups *redis.Script
}

// PresenceChange is a cluster-wide transition of identity's presence.
// Version orders the transitions of one identity.
type PresenceChange struct {
	Identity, Before, After string
	Version                 int64
}

// PresenceState is an identity's merged status and the version of its
// last transition (0: none known).
type PresenceState struct {
	Status  string
	Version int64
}

// Statuses, as the signaling protocol names them.
const (
	StatusOffline = "offline"
	StatusOnline  = "online"
	StatusInCall  = "in_call"
)

// reapBatch bounds the identities one reap script handles, so a dead
// node with many users does not block Redis for long.
const reapBatch = 200

// maxStatusQuery bounds the identities one Statuses call reads.
const maxStatusQuery = 1000

// presenceKeep is how long an identity's hash is kept once no node has
// it (only its version is left; presenceLib's keepMs says it again): a node whose bus was down can tell a
// change made during the outage, going offline included, from an old
// one (ChangedSince).
const presenceKeep = time.Hour

// maxChangedQuery bounds the identities one ChangedSince call reads (in
// round trips of maxStatusQuery).
const maxChangedQuery = 50_000

// NewPresence makes node n's presence. onReap receives the transitions
// caused by a dead node's entries leaving (on Run's goroutine); onLost
// is called when this node's own entries are gone from Redis (its lease
// lapsed and another node reaped them, or Redis lost its data), so the
// caller writes its identities' statuses again.
func NewPresence(n *Node, onReap func([]PresenceChange), onLost func(), log *slog.Logger) *Presence {
	return &Presence{
		node: n, id: n.self.ID, inc: n.self.Inc, onReap: onReap, onLost: onLost, log: log,
		set:    redis.NewScript(presenceLib + presenceSetScript),
		read:   redis.NewScript(presenceLib + presenceReadScript),
		dead:   redis.NewScript(presenceLib + presenceDeadScript),
		reap:   redis.NewScript(presenceLib + presenceReapScript),
		groups: redis.NewScript(presenceLib + presenceGroupsScript),
	}
}

func (p *Presence) key(identity string) string { return p.node.cfg.KeyPrefix + "presence:" + identity }
func (p *Presence) keyPrefix() string          { return p.node.cfg.KeyPrefix + "presence:" }
func (p *Presence) groupPrefix() string        { return p.node.cfg.KeyPrefix + "group:" }
func (p *Presence) registry() string           { return p.node.cfg.KeyPrefix + "presence-nodes" }
func (p *Presence) runSet(node, inc string) string {
	return p.node.cfg.KeyPrefix + "presence-node:" + node + ":" + inc
}

// NodeID is this node's id.
func (p *Presence) NodeID() string { return p.id }

// Set records this node's status of identity (StatusOffline: it has no
// session of it any more) and returns the cluster-wide transition it
// made; Before equals After when there was none.
func (p *Presence) Set(ctx context.Context, identity, status string) (PresenceChange, error) {
	res, err := p.set.Run(ctx, p.node.rdb,
		[]string{p.key(identity), p.runSet(p.id, p.inc), p.registry()},
		p.node.nodeKey(""), p.id, p.inc, status, identity).Slice()
	if err != nil {
		return PresenceChange{}, fmt.Errorf("cluster: presence of %s: %w", identity, err)
	}
	if len(res) != 3 {
		return PresenceChange{}, fmt.Errorf("cluster: presence of %s: unexpected reply %v", identity, res)
	}
	before, _ := res[0].(string)
	after, _ := res[1].(string)
	v, _ := res[2].(int64)
	return PresenceChange{Identity: identity, Before: before, After: after, Version: v}, nil
}

// Statuses returns the merged status of each identity (at most
// maxStatusQuery; the others are not read). Offline identities are
// left out.
func (p *Presence) Statuses(ctx context.Context, identities []string) (map[string]PresenceState, error) {
	if len(identities) > maxStatusQuery {
		identities = identities[:maxStatusQuery]
	}
	out := map[string]PresenceState{}
	if len(identities) == 0 {
		return out, nil
	}
	states, err := p.readStates(ctx, identities)
	if err != nil {
		return nil, fmt.Errorf("cluster: read presence: %w", err)
	}
	for i, st := range states {
		if st.Status != "" && st.Status != StatusOffline {
			out[identities[i]] = st
		}
	}
	return out, nil
}

// readStates runs the read script over identities (one round trip) and
// returns their merged states in the same order (fewer if Redis
// answered fewer).
func (p *Presence) readStates(ctx context.Context, identities []string) ([]PresenceState, error) {
	args := make([]any, 0, 2+len(identities))
	args = append(args, p.node.nodeKey(""), p.keyPrefix())
	for _, id := range identities {
		args = append(args, id)
	}
	res, err := p.read.Run(ctx, p.node.rdb, nil, args...).Slice()
	if err != nil {
		return nil, err
	}
	states := make([]PresenceState, 0, len(identities))
	for i := 0; i+1 < len(res) && i/2 < len(identities); i += 2 {
		st, _ := res[i].(string)
		v, _ := res[i+1].(int64)
		states = append(states, PresenceState{Status: st, Version: v})
	}
	return states, nil
}

// ChangedSince returns the merged status and version of those of
// identities (at most maxChangedQuery) whose last cluster-wide change was
// made at since or later, offline ones included: what a node whose bus
// was down from since missed. Versions are Redis's clock, so Redis's and
// the caller's clocks must agree within the margin the caller took off
// since (LossMargin). An offline identity's version is kept for
// presenceKeep; after an outage longer than that, offline identities
// with no version left are returned too (as offline, version 0), since
// their change cannot be dated. One round trip per maxStatusQuery
// identities.
func (p *Presence) ChangedSince(ctx context.Context, since time.Time, identities []string) (map[string]PresenceState, error) {
	if len(identities) > maxChangedQuery {
		identities = identities[:maxChangedQuery]
	}
	from := since.UnixMicro()
	undated := time.Since(since) >= presenceKeep
	out := map[string]PresenceState{}
	for len(identities) > 0 {
		chunk := identities[:min(len(identities), maxStatusQuery)]
		identities = identities[len(chunk):]
		states, err := p.readStates(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("cluster: read presence changes: %w", err)
		}
		for i, st := range states {
			if st.Version >= from || st.Version == 0 && undated && st.Status == StatusOffline {
				out[chunk[i]] = st
			}
		}
	}
	return out, nil
}

// GroupMembers returns the members listed of each of groups, in one
// round trip.
func (p *Presence) GroupMembers(ctx context.Context, groups []string) (map[string][]string, error) {
	out := make(map[string][]string, len(groups))
	if len(groups) == 0 {
		return out, nil
	}
	pipe := p.node.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(groups))
	for i, g := range groups {
		cmds[i] = pipe.SMembers(ctx, p.groupPrefix()+g)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("cluster: members of groups: %w", err)
	}
	for i, g := range groups {
		out[g] = cmds[i].Val()
	}
	return out, nil
}

// GroupStatuses adds identity (unless "") to the members of groups, and
// returns the merged status of the other members of groups and of also:
// at most maxStatusQuery identities, groups' members first; offline ones
// are left out. It is one round trip, however many groups and
// identities.
func (p *Presence) GroupStatuses(ctx context.Context, identity string, groups, also []string) (map[string]PresenceState, error) {
	out := map[string]PresenceState{}
	if len(groups) == 0 && len(also) == 0 {
		return out, nil
	}
	args := make([]any, 0, 6+len(groups)+len(also))
	args = append(args, p.node.nodeKey(""), p.keyPrefix(), p.groupPrefix(), identity, maxStatusQuery, len(groups))
	for _, g := range groups {
		args = append(args, g)
	}
	for _, id := range also {
		args = append(args, id)
	}
	res, err := p.groups.Run(ctx, p.node.rdb, nil, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("cluster: read group presence: %w", err)
	}
	for i := 0; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		st, _ := res[i+1].(string)
		v, _ := res[i+2].(int64)
		out[id] = PresenceState{Status: st, Version: v}
	}
	return out, nil
}

// AddGroupMembers records members as members of group (its creator's
// node calls it, so members connected before the group existed are
// listed too).
func (p *Presence) AddGroupMembers(ctx context.Context, group string, members []string) error {
	if len(members) == 0 {
		return nil
	}
	ms := make([]any, len(members))
	for i, m := range members {
		ms[i] = m
	}
	if err := p.node.rdb.SAdd(ctx, p.groupPrefix()+group, ms...).Err(); err != nil {
		return fmt.Errorf("cluster: members of group %s: %w", group, err)
	}
	return nil
}

// Run reaps the entries of dead node runs until ctx ends, checking every
// sixth of the lease (a killed node's users show offline within about
// lease_ttl and a sixth of it after its last renewal), and checks that
// this node's own entries are still there.
func (p *Presence) Run(ctx context.Context) error {
	t := time.NewTicker(p.node.cfg.LeaseTTL / 6)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.tick(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("cluster: presence", "err", err)
			}
		}
	}
}

// maxReapRounds bounds the reap scripts one tick runs (the rest waits
// for the next tick, or is taken by another survivor).
const maxReapRounds = 50

func (p *Presence) tick(ctx context.Context) error {
	res, err := p.dead.Run(ctx, p.node.rdb, []string{p.registry()}, p.node.nodeKey(""), p.id+" "+p.inc).Slice()
	if err != nil {
		return fmt.Errorf("list dead nodes: %w", err)
	}
	if len(res) == 0 {
		return nil
	}
	// The first element says whether this run is still registered.
	if registered, _ := res[0].(int64); registered == 0 && p.onLost != nil {
		p.onLost()
	}
	rounds := 0
	for _, r := range res[1:] {
		run, _ := r.(string)
		node, inc, ok := cutRun(run)
		if !ok {
			continue
		}
		for ; rounds < maxReapRounds; rounds++ {
			changes, more, err := p.reapOnce(ctx, node, inc)
			if err != nil {
				return err
			}
			if len(changes) > 0 && p.onReap != nil {
				p.onReap(changes)
			}
			if !more {
				break
			}
		}
	}
	return nil
}

func cutRun(run string) (node, inc string, ok bool) {
	for i := len(run) - 1; i >= 0; i-- {
		if run[i] == ' ' {
			return run[:i], run[i+1:], i > 0 && i < len(run)-1
		}
	}
	return "", "", false
}

// reapOnce removes up to reapBatch entries of the dead run inc of node.
func (p *Presence) reapOnce(ctx context.Context, node, inc string) ([]PresenceChange, bool, error) {
	res, err := p.reap.Run(ctx, p.node.rdb, []string{p.runSet(node, inc), p.registry()},
		p.node.nodeKey(""), p.keyPrefix(), node, inc, reapBatch).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("reap node %s: %w", node, err)
	}
	if len(res) == 0 {
		return nil, false, nil
	}
	more, _ := res[0].(int64)
	var out []PresenceChange
	for i := 1; i+3 < len(res); i += 4 {
		id, _ := res[i].(string)
		before, _ := res[i+1].(string)
		after, _ := res[i+2].(string)
		v, _ := res[i+3].(int64)
		out = append(out, PresenceChange{Identity: id, Before: before, After: after, Version: v})
	}
	return out, more == 1, nil
}

// presenceLib is shared by the presence scripts. ARGV[1] is always the
// node key prefix. live(node) is the run id of node's live lease (false
// when it has none); merged(key, except, extra) is the strongest status
// among key's live entries, leaving out field except and counting extra;
// tidy(key) lets a hash left with only its version expire after
// presenceKeep (the version of an offline identity's last change is kept
// that long, for ChangedSince).
const presenceLib = `
local nodePrefix = ARGV[1]
local runs = {}
local function live(node)
  local r = runs[node]
  if r == nil then
    r = false
    local rec = redis.call('GET', nodePrefix .. node)
    if rec then
      local ok, n = pcall(cjson.decode, rec)
      if ok and type(n) == 'table' and type(n.inc) == 'string' then r = n.inc end
    end
    runs[node] = r
  end
  return r
end
local rank = {online = 1, in_call = 2}
local function stronger(a, b)
  if (rank[b] or 0) > (rank[a] or 0) then return b end
  return a
end
local function merged(key, except, extra)
  local best = extra or 'offline'
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    local f, v = h[i], h[i + 1]
    if f ~= except and string.sub(f, 1, 2) == 'n:' then
      local sp = string.find(v, ' ', 1, true)
      if sp and live(string.sub(f, 3)) == string.sub(v, 1, sp - 1) then
        best = stronger(best, string.sub(v, sp + 1))
      end
    end
  end
  return best
end
local function bump(key)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local old = tonumber(redis.call('HGET', key, 'v') or '0') or 0
  if v <= old then v = old + 1 end
  redis.call('HSET', key, 'v', string.format('%.0f', v))
  return v
end
local keepMs = 3600000 -- presenceKeep
local function tidy(key)
  if redis.call('HLEN', key) <= 1 then redis.call('PEXPIRE', key, keepMs) end
end
`

// presenceSetScript: KEYS[1] the identity's hash, KEYS[2] this run's
// set of identities, KEYS[3] the registry of runs; ARGV[2] node id,
// ARGV[3] run id, ARGV[4] status, ARGV[5] identity. Returns {before,
// after, version} (version 0 when nothing changed cluster-wide).
const presenceSetScript = `
local field = 'n:' .. ARGV[2]
local before = merged(KEYS[1])
if ARGV[4] == 'offline' then
  redis.call('HDEL', KEYS[1], field)
  redis.call('SREM', KEYS[2], ARGV[5])
else
  redis.call('HSET', KEYS[1], field, ARGV[3] .. ' ' .. ARGV[4])
  redis.call('PERSIST', KEYS[1])
  redis.call('SADD', KEYS[2], ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[2] .. ' ' .. ARGV[3])
end
local after = merged(KEYS[1])
local v = 0
if before ~= after then v = bump(KEYS[1]) end
tidy(KEYS[1])
return {before, after, v}
`

// presenceReadScript: ARGV[2] the hash key prefix, ARGV[3..] identities.
// Returns {status, version, ...} in their order.
const presenceReadScript = `
local out = {}
for i = 3, #ARGV do
  local key = ARGV[2] .. ARGV[i]
  out[#out + 1] = merged(key)
  out[#out + 1] = tonumber(redis.call('HGET', key, 'v') or '0') or 0
end
return out
`

// presenceGroupsScript: ARGV[2] the presence hash key prefix, ARGV[3]
// the group set key prefix, ARGV[4] the identity to add to the groups
// ("" none, and left out of the answer), ARGV[5] the most identities to
// read, ARGV[6] the number of groups, then the groups, then further
// identities. Returns {identity, status, version, ...} for those not
// offline.
const presenceGroupsScript = `
local self, limit, ng = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local seen, ids = {}, {}
local function add(id)
  if id ~= self and not seen[id] and #ids < limit then
    seen[id] = true
    ids[#ids + 1] = id
  end
end
for i = 7, 6 + ng do
  local key = ARGV[3] .. ARGV[i]
  if self ~= '' then redis.call('SADD', key, self) end
  for _, id in ipairs(redis.call('SMEMBERS', key)) do add(id) end
end
for i = 7 + ng, #ARGV do add(ARGV[i]) end
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local st = merged(key)
  if st ~= 'offline' then
    out[#out + 1] = id
    out[#out + 1] = st
    out[#out + 1] = tonumber(redis.call('HGET', key, 'v') or '0') or 0
  end
end
return out
`

// presenceDeadScript: KEYS[1] the registry of runs; ARGV[2] the caller's
// own run ("<node> <run>"). Returns {1 if the caller's run is still
// registered else 0, dead runs...}.
const presenceDeadScript = `
local out = {redis.call('SISMEMBER', KEYS[1], ARGV[2])}
for _, run in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sp = string.find(run, ' [^ ]*$')
  if sp and live(string.sub(run, 1, sp - 1)) ~= string.sub(run, sp + 1) then
    out[#out + 1] = run
  end
end
return out
`

// presenceReapScript: KEYS[1] the dead run's set of identities, KEYS[2]
// the registry; ARGV[2] the hash key prefix, ARGV[3] node id, ARGV[4]
// run id, ARGV[5] batch size. Returns {1 if more remain else 0,
// identity, before, after, version, ...} for the transitions made.
// Nothing happens if the run is live again (its lease came back).
const presenceReapScript = `
if live(ARGV[3]) == ARGV[4] then return {0} end
local field = 'n:' .. ARGV[3]
local out = {0}
for _, id in ipairs(redis.call('SPOP', KEYS[1], ARGV[5])) do
  local key = ARGV[2] .. id
  local val = redis.call('HGET', key, field)
  local sp = val and string.find(val, ' ', 1, true)
  if sp and string.sub(val, 1, sp - 1) == ARGV[4] then
    local before = merged(key, field, string.sub(val, sp + 1))
    redis.call('HDEL', key, field)
    local after = merged(key)
    if before ~= after then
      out[#out + 1] = id
      out[#out + 1] = before
      out[#out + 1] = after
      out[#out + 1] = bump(key)
    end
    tidy(key)
  end
end
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[3] .. ' ' .. ARGV[4])
else
  out[1] = 1
end
return out
`
