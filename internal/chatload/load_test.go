package chatload

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestRawPushRecordsWindowedDeliveries(t *testing.T) {
	l := &Load{}
	st := &stepStats{from: 1000, to: 2000}
	l.cur.Store(st)
	frame := func(ts int64) []byte {
		return fmt.Appendf(nil, `{"type":"message","data":{"conversationId":"c","seq":1,"text":"t=%d load-00001 xx","kind":"text"}}`, ts)
	}
	for _, ts := range []int64{999, 1000, 1500, 2000} {
		if !l.rawPush(frame(ts)) {
			t.Fatalf("message frame with ts %d not consumed", ts)
		}
	}
	if got := st.deliveries.Load(); got != 2 {
		t.Errorf("deliveries = %d, want 2 (send times 1000 and 1500 are inside [1000, 2000))", got)
	}
	if l.rawPush([]byte(`{"type":"presence","data":{}}`)) {
		t.Error("a presence frame was consumed")
	}
	l.rawPush([]byte(`{"type":"message","data":{"text":"t=notanumber x"}}`))
	if st.errors.Snapshot()["unparsable_push"] != 1 {
		t.Errorf("errors = %v, want one unparsable_push", st.errors.Snapshot())
	}
	// Another field order still counts, through the decoding path.
	l.onPush(proto.TypeMessage, []byte(`{"text":"t=1700 load-00002 y","seq":2}`))
	if got := st.deliveries.Load(); got != 3 {
		t.Errorf("deliveries = %d after a decoded push, want 3", got)
	}
}

// TestLoadEndToEnd drives the load runner against the real binary at a
// low rate in both modes: every message sent in the window is acked and
// delivered to every other member, and no error is counted. It checks the
// tool's accounting, not performance.
func TestLoadEndToEnd(t *testing.T) {
	for _, mode := range []string{ModeRoom, ModeGroup} {
		t.Run(mode, func(t *testing.T) {
			srv := newServer(t, nil)
			srv.start()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			load, err := Connect(ctx, LoadOptions{
				URL: srv.wsURL(), Origin: srv.base(), MetricsURL: srv.base() + "/metrics",
				Clients: 30, Rooms: 3, Mode: mode, Settle: 100 * time.Millisecond, GCWait: 100 * time.Millisecond,
				Token: func(identity, room string) (string, error) {
					return srv.keys.Issue(testKeyID, auth.Claims{Identity: identity, Room: room, Grants: auth.Grants{Chat: true}}, time.Hour)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer load.Close()
			if load.Idle.RSSAfter <= 0 {
				t.Errorf("no memory figures from /metrics: %+v", load.Idle)
			}
			res, err := load.Step(ctx, StepOptions{Rate: 40, Warmup: 200 * time.Millisecond, Duration: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", res)
			if res.Sent < 10 || res.Acked != res.Sent {
				t.Errorf("sent %d acked %d: want about 40 sent, all acked", res.Sent, res.Acked)
			}
			if res.Expected != res.Acked*9 || res.Deliveries != res.Expected {
				t.Errorf("deliveries %d, expected %d (acked %d x 9 other members)", res.Deliveries, res.Expected, res.Acked)
			}
			if len(res.Errors) != 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			if res.DeliveryP50 <= 0 || res.DeliveryP99 < res.DeliveryP50 || res.AckP50 <= 0 {
				t.Errorf("latencies not recorded: %s", res)
			}
			if load.Live() != 30 {
				t.Errorf("%d of 30 clients still connected", load.Live())
			}
		})
	}
}
