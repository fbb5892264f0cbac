package signaling

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// counterValue sums a counter or gauge over all its labels; a metric
// missing from the registry fails the test.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mf := testkit.MetricFamily(t, reg, name)
	if mf == nil {
		t.Fatalf("metric %s not found", name)
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// A client whose send queue fills (its writer is stuck behind a socket the
// client stopped reading) is disconnected instead of blocking the sender,
// and the drop is counted.
func TestSlowClientDisconnected(t *testing.T) {
	cfg := testConfig()
	cfg.SendQueue = 8
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Media: newFakeMedia(), Keys: keys, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	upgraded := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := s.upgr.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		upgraded <- ws
	}))
	defer hs.Close()
	cli, _, err := websocket.DefaultDialer.Dial(strings.Replace(hs.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ws := <-upgraded
	defer ws.Close()

	// No writer runs: the queue only fills, as behind a stuck write.
	c := newWSConn(s, ws, s.log)
	start := time.Now()
	for i := 0; i < cfg.SendQueue+5; i++ {
		c.enqueue([]byte(`{"type":"ping","data":{"ts":1}}`))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("enqueue blocked for %s", d)
	}
	if got := counterValue(t, reg, "parley_signaling_send_queue_drops_total"); got != 1 {
		t.Fatalf("drops counted %v, want 1", got)
	}
	if !c.closing.Load() {
		t.Fatal("slow connection not marked closing")
	}
	_ = cli.SetReadDeadline(time.Now().Add(waitLimit))
	if _, _, err := cli.ReadMessage(); err == nil {
		t.Fatal("slow client still connected")
	}
}
