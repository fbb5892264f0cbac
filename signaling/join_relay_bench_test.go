package signaling

import (
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/proto"
)

// BenchmarkJoinRelay measures what cluster.relay_signaling costs a
// request: a participant sends a request the hosting node answers (a
// mute of a track it does not have, answered with an error) and waits
// for the answer, one at a time; "direct": connected to the hosting
// node; "relayed": connected to another node that relays the session
// there (join_relay.go). Both nodes run in this process, so the CPU per
// round trip (user+system of the process: both nodes and the client) of
// "relayed" less "direct" is the relaying node's cost of one request and
// its answer.
//
//	nice -n 10 go test ./signaling -run '^$' -bench JoinRelay -benchtime 5000x -count 3
func BenchmarkJoinRelay(b *testing.B) {
	for _, where := range []string{"direct", "relayed"} {
		b.Run(where, func(b *testing.B) {
			front, host := relayPair(b, func(c *Config) {
				c.RatePerSecond, c.RateBurst = 1_000_000, 1_000_000
				c.PingInterval, c.PingTimeout = 5*time.Second, 10*time.Minute
			}, func(h *testEnv) string { return h.base })
			via := host
			if where == "relayed" {
				via = front
			}
			c, _ := via.join("ada", "bench", allGrants)
			yes := true
			body := proto.MuteBody{TrackID: "TR_none", Muted: &yes}
			st := relayStats{lat: make([]time.Duration, 0, b.N), per: "request"}
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				id := strconv.Itoa(i)
				start := time.Now()
				c.send(proto.TypeMute, id, body)
				for {
					m, err := c.next(false)
					if err != nil {
						b.Fatal(err)
					}
					if m.Re == id {
						break
					}
				}
				st.lat = append(st.lat, time.Since(start))
			}
			b.StopTimer()
			st.cpu = cpuTime(b) - cpu0
			st.report(b)
		})
	}
}
