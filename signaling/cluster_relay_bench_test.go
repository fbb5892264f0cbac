package signaling

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// BenchmarkClusterRelay measures what the cluster bus costs a signaling
// push: two signaling servers as cluster nodes a and b, joined by
// cluster.Bus on the real Redis of 127.0.0.1:6379; node a makes a push
// and the benchmark waits until the receiving session's WebSocket client
// has it, one push at a time. "local": the receiver is on node a (a
// cluster node still publishes the push on the bus; no other node
// watches it); "relayed": on node b, so the push goes through Redis
// pub/sub. Cases: a chat push to a conversation's members (receipts,
// typing and messages travel this way), a presence change announced to
// a contact, and one presence change to 1,000 contacts' sessions (four
// groups of 250). Reported: latency p50/p99 (push to the last receiver)
// and the process's CPU time (user+system: both nodes, the clients, the
// go-redis side; not Redis's own) per push.
//
//	nice -n 10 go test ./signaling -run '^$' -bench 'ClusterRelay/^(chat|presence)$/' -benchtime 2000x
//	nice -n 10 go test ./signaling -run '^$' -bench 'ClusterRelay/presence-fanout' -benchtime 200x
func BenchmarkClusterRelay(b *testing.B) {
	for _, where := range []string{"local", "relayed"} {
		b.Run("chat/"+where, func(b *testing.B) { benchRelayChat(b, where == "relayed") })
		b.Run("presence/"+where, func(b *testing.B) { benchRelayPresence(b, where == "relayed", 1) })
		b.Run("presence-fanout-1000/"+where, func(b *testing.B) { benchRelayPresence(b, where == "relayed", 1000) })
	}
}

func benchCluster(b *testing.B) (a, bn *chatEnv) {
	nodes := startRedisClusterWith(b, redisCluster{prefix: newRedisPrefix(b), realBus: true, mutate: func(c *Config) {
		c.RatePerSecond, c.RateBurst = 1_000_000, 1_000_000
		c.ChatRatePerSecond, c.ChatRateBurst = 1_000_000, 1_000_000
		c.SendQueue = 4096
		c.PingInterval, c.PingTimeout = 5*time.Second, 10*time.Minute
	}}, "a", "b")
	return nodes[0], nodes[1]
}

// relayStats collects per-push latencies and the CPU time of the timed
// part.
type relayStats struct {
	lat []time.Duration
	cpu time.Duration
	per string // what one measurement is; "push" if empty
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *relayStats) report(b *testing.B) {
	slices.Sort(s.lat)
	q := func(p float64) float64 { return float64(s.lat[int(p*float64(len(s.lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(s.cpu.Microseconds())/float64(len(s.lat)), "cpu-µs/"+cmp.Or(s.per, "push"))
	b.ReportMetric(0, "ns/op") // wall time per push is the latency above
}

// waitIn reads c's messages until one matches pred, within 5 s.
func waitIn(b *testing.B, c *cc, what string, pred func(msg) bool) {
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case m := <-c.in:
			if pred(m) {
				return
			}
		case <-timer.C:
			b.Fatalf("no %s within 5 s", what)
		}
	}
}

func benchRelayChat(b *testing.B, relayed bool) {
	a, nb := benchCluster(b)
	to := a
	if relayed {
		to = nb
	}
	ada := a.joinMessaging("ada")
	conv := ada.direct("bob")
	bob := to.joinMessaging("bob") // indexes conv on its node, which watches its topic
	mark := func(i int) []byte {
		return proto.Encode("bench", "", map[string]int{"i": i})
	}
	got := func(i int) func(msg) bool {
		want := `{"i":` + strconv.Itoa(i) + `}`
		return func(m msg) bool { return m.Type == "bench" && string(m.Data) == want }
	}
	// Until the first push arrives, b's subscription may not be in place.
	deadline := time.Now().Add(5 * time.Second)
	for !seesWithin(bob, 50*time.Millisecond, got(-1)) {
		if time.Now().After(deadline) {
			b.Fatal("the first push never reached bob")
		}
		a.srv.hub.pushConv(conv.ID, mark(-1), nil, "ada")
	}
	seesWithin(bob, 100*time.Millisecond, func(msg) bool { return false })
	st := relayStats{lat: make([]time.Duration, 0, b.N)}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		a.srv.hub.pushConv(conv.ID, mark(i), nil, "ada") // ada, the "sender", is left out
		waitIn(b, bob, "push "+strconv.Itoa(i), got(i))
		st.lat = append(st.lat, time.Since(start))
	}
	b.StopTimer()
	st.cpu = cpuTime(b) - cpu0
	st.report(b)
}

// benchRelayPresence announces carol's presence changes from node a (or
// b, relayed) to watchers sessions on node a, contacts of carol (ada
// through a direct conversation when there is one watcher, else
// members of carol's groups of 250), and waits until every watcher has
// each change.
func benchRelayPresence(b *testing.B, relayed bool, watchers int) {
	a, nb := benchCluster(b)
	from := a
	if relayed {
		from = nb
	}
	var convs []string
	arrivals := make(chan struct{}, 8192) // more than a round's; its senders never block
	if watchers == 1 {
		ada := a.joinMessaging("ada")
		convs = append(convs, ada.direct("carol").ID)
		go func() { // ada's messages, counted as the fan-out's clients' are
			for m := range ada.in {
				if m.Type == proto.TypePresence && bytes.Contains(m.Data, []byte(`"carol"`)) {
					select {
					case arrivals <- struct{}{}:
					default:
					}
				}
			}
		}()
	} else {
		ctx := context.Background()
		const groupSize = 250
		for g := 0; g < watchers; g += groupSize {
			var members []chat.Identity
			for i := g; i < min(g+groupSize, watchers); i++ {
				members = append(members, chat.Identity{ID: fmt.Sprintf("w%04d", i)})
			}
			conv, err := a.svc.CreateGroup(ctx, chat.Identity{ID: "carol"}, "fan-out", members)
			if err != nil {
				b.Fatal(err)
			}
			convs = append(convs, conv.ID)
		}
		for i := range watchers {
			joinCounter(b, a, fmt.Sprintf("w%04d", i), arrivals)
		}
		// A session indexes its conversations after "joined": the last
		// ones joined need a moment before they get their groups' pushes.
		time.Sleep(500 * time.Millisecond)
	}
	drain := func(d time.Duration) {
		for {
			select {
			case <-arrivals:
			case <-time.After(d):
				return
			}
		}
	}
	version := time.Now().UnixMicro()
	status := func(i int) string {
		if i%2 == 0 {
			return proto.PresenceInCall
		}
		return proto.PresenceOnline
	}
	announce := func(i int) {
		version++
		from.srv.cpres.announce("carol", status(i), version, convs, false)
	}
	// The first change shows the subscriptions are in place.
	announce(-1)
	for range watchers {
		select {
		case <-arrivals:
		case <-time.After(5 * time.Second):
			b.Fatal("the first change did not reach every watcher")
		}
	}
	drain(200 * time.Millisecond)
	st := relayStats{lat: make([]time.Duration, 0, b.N)}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		announce(i)
		for range watchers {
			select {
			case <-arrivals:
			case <-time.After(5 * time.Second):
				b.Fatalf("change %d did not reach every watcher within 5 s", i)
			}
		}
		st.lat = append(st.lat, time.Since(start))
	}
	b.StopTimer()
	st.cpu = cpuTime(b) - cpu0
	st.report(b)
}

// joinCounter joins identity to env with a lean client that sends one
// arrival per presence message about carol (the fan-out's watchers are
// too many for cc's buffers).
func joinCounter(b *testing.B, env *chatEnv, identity string, arrivals chan<- struct{}) {
	env.srv.rememberIdentity(identity)
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(env.base, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"type": "join", "data": proto.JoinBody{Token: env.token(identity, "", chatOnly), Protocol: 1}})
	if err := ws.WriteMessage(websocket.TextMessage, raw); err != nil {
		b.Fatal(err)
	}
	for {
		_, raw, err := ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(raw, []byte(`"type":"joined"`)) {
			break
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, raw, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(raw, []byte(`"type":"presence"`)) && bytes.Contains(raw, []byte(`"identity":"carol"`)) {
				select {
				case arrivals <- struct{}{}:
				default:
				}
			}
		}
	}()
	b.Cleanup(func() { _ = ws.Close(); <-done })
}
