package signaling

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/proto"
)

// BenchmarkChatRoomFanout measures chat as users feel it: senders in a
// call room with 100 other members send b.N messages in all through the
// WebSocket; every message is stored durably (SQLite, synchronous=FULL,
// group commit) and pushed to the 100 members (and the other senders). Reported: messages/s in, deliveries/s out, and
// send->receive latency p50/p99 over all deliveries. Clients run in the
// same process and share the CPU with the server.
//
//	go test ./signaling -run '^$' -bench ChatRoomFanout -benchtime 2000x
func BenchmarkChatRoomFanout(b *testing.B) {
	// window 1 shows the latency of one message at a time; 32 shows the
	// throughput of a pipelining client and the latency under that load.
	// senders=10 has ten members sending at once (one unacknowledged
	// message each), which exercises group commit and push ordering.
	for _, tc := range []struct{ senders, window int }{{1, 1}, {1, 32}, {10, 1}} {
		b.Run(fmt.Sprintf("senders=%d/window=%d", tc.senders, tc.window), func(b *testing.B) {
			benchChatFanout(b, tc.senders, tc.window)
		})
	}
}

func benchChatFanout(b *testing.B, senders, window int) {
	const members = 100
	env := startChatServer(b, func(c *Config) {
		c.MaxParticipantsPerRoom = members + senders
		c.RatePerSecond, c.RateBurst = 1_000_000, 1_000_000
		c.ChatRatePerSecond, c.ChatRateBurst = 1_000_000, 1_000_000
		c.SendQueue = 4096
		c.PingInterval, c.PingTimeout = 5*time.Second, 10*time.Minute
	}, nil)
	wsURL := strings.Replace(env.base, "http", "ws", 1) + "/ws"
	join := func(identity string) (*websocket.Conn, proto.JoinedBody) {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ws.Close() })
		raw, _ := json.Marshal(map[string]any{"type": "join", "data": proto.JoinBody{Token: env.token(identity, "bench", allGrants), Protocol: 1}})
		if err := ws.WriteMessage(websocket.TextMessage, raw); err != nil {
			b.Fatal(err)
		}
		for {
			_, raw, err := ws.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			var m msg
			_ = json.Unmarshal(raw, &m)
			if m.Type == "joined" {
				var jb proto.JoinedBody
				m.decode(b, &jb)
				return ws, jb
			}
		}
	}

	type push struct {
		Type string `json:"type"`
		Data struct {
			Seq  int64  `json:"seq"`
			Text string `json:"text"`
		} `json:"data"`
	}
	latencies := make([][]time.Duration, members)
	var wg sync.WaitGroup
	var start sync.WaitGroup
	start.Add(1)
	perSender := (b.N + senders - 1) / senders
	want := perSender * senders
	receivers := make([]*websocket.Conn, members)
	for i := range members {
		ws, _ := join(fmt.Sprintf("member%03d", i))
		receivers[i] = ws
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			lat := make([]time.Duration, 0, want)
			_ = ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
			for len(lat) < want {
				_, raw, err := ws.ReadMessage()
				if err != nil {
					break
				}
				var p push
				if json.Unmarshal(raw, &p) != nil || p.Type != proto.TypeMessage {
					continue
				}
				sent, err := strconv.ParseInt(p.Data.Text, 10, 64)
				if err == nil {
					lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
				}
			}
			latencies[i] = lat
		}()
	}
	type sender struct {
		ws   *websocket.Conn
		acks chan struct{}
		done chan struct{}
	}
	var conv string
	all := make([]sender, senders)
	for i := range all {
		ws, jb := join(fmt.Sprintf("sender%02d", i))
		conv = jb.ConversationID
		sd := sender{ws: ws, acks: make(chan struct{}, window), done: make(chan struct{})}
		all[i] = sd
		go func() {
			defer close(sd.done)
			for n := 0; n < perSender; {
				_, raw, err := sd.ws.ReadMessage()
				if err != nil {
					return
				}
				var m msg
				_ = json.Unmarshal(raw, &m)
				switch m.Type {
				case proto.TypeChatAck:
					n++
					<-sd.acks
				case "error":
					b.Errorf("sender got error %s", m.Data)
					return
				}
			}
		}()
	}
	start.Done()
	b.ResetTimer()
	began := time.Now()
	var sendWG sync.WaitGroup
	for i, sd := range all {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for j := range perSender {
				select {
				case sd.acks <- struct{}{}:
				case <-sd.done:
					// The ack reader ended early (connection dropped); do
					// not wait for acks that cannot come.
					b.Errorf("sender %d: connection ended after %d messages", i, j)
					return
				}
				raw, _ := json.Marshal(map[string]any{"type": proto.TypeChatSend, "id": fmt.Sprintf("%d-%d", i, j), "data": proto.ChatSendBody{
					ConversationID: conv, ClientMsgID: newClientID(), Text: strconv.FormatInt(time.Now().UnixNano(), 10),
				}})
				if err := sd.ws.WriteMessage(websocket.TextMessage, raw); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	sendWG.Wait()
	for _, sd := range all {
		<-sd.done
	}
	if b.Failed() {
		// Members would wait for messages that were never sent.
		for _, ws := range receivers {
			_ = ws.Close()
		}
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()

	var lat []time.Duration
	for i, l := range latencies {
		if len(l) != want {
			b.Fatalf("member %d received %d of %d messages", i, len(l), want)
		}
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(want)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(want*members)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
