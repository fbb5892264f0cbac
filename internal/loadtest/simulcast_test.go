package loadtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

var parley testkit.ParleyBuild

func TestMain(m *testing.M) {
	os.Exit(testkit.ParleyMain(m, &parley, testkit.BuildOptions{BinEnv: "PARLEY_BIN"}))
}

// TestSimulcastRun runs a short simulcast load against the real binary:
// every subscriber must get the layer its tile size asks for (its packets
// say so, and so does the admin API) with next to no loss.
func TestSimulcastRun(t *testing.T) {
	// Bandwidth estimation off: this checks the load tool's accounting
	// of the layers asked for, and with estimation a subscriber's layer
	// is also what its estimate allows (on a loaded CI machine, under
	// -race, one run of two saw the estimate move a subscriber off f).
	srv := testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: map[string]any{
		"log": map[string]any{"level": "warn"},
		"sfu": map[string]any{"bandwidth_estimation": false},
	}})
	keys, err := auth.NewKeySet(map[string]string{testkit.ParleyAPIKey: testkit.ParleyAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const pubs, subs = 2, 3
	rep, err := Run(ctx, Options{
		WSURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", Origin: srv.URL, Room: "sim",
		Publishers: pubs, Subscribers: subs, Duration: 3 * time.Second, Warmup: 3 * time.Second,
		VideoPPS: 240, VideoBytes: 1000, AudioPPS: 50, Simulcast: true,
		AdminKey: testkit.ParleyAPIKey, AdminSecret: testkit.ParleyAPISecret,
		Token: func(identity string, publish bool) (string, error) {
			return keys.Issue(testkit.ParleyAPIKey, auth.Claims{Identity: identity, Room: "sim",
				Grants: auth.Grants{Publish: publish, Subscribe: !publish}}, time.Minute)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if len(rep.Layers) != 3 {
		t.Fatalf("want a report for each of 3 layers: %v", rep)
	}
	for _, l := range rep.Layers {
		if l.Subscribers != 1 || l.Received == 0 {
			t.Errorf("layer %s: %d subscribers received %d packets", l.RID, l.Subscribers, l.Received)
		}
		// Loopback does not drop; NACKs recover what a slow machine loses.
		if l.LossPercent > 1 {
			t.Errorf("layer %s: loss %.2f%%", l.RID, l.LossPercent)
		}
	}
	// q carries 1/8 and h 1/4 of f's packets: the per-layer accounting
	// must see that, or the subscribers are not getting their layers.
	q, h, f := rep.Layers[0].Expected, rep.Layers[1].Expected, rep.Layers[2].Expected
	if !(q < h && h < f) {
		t.Errorf("expected packets q %d, h %d, f %d: not rising with the layer", q, h, f)
	}
	if rep.WrongLayer != 0 {
		t.Errorf("%d packets of the measured window came from a layer the subscriber did not ask for", rep.WrongLayer)
	}
	if rep.ReceiversError != "" || rep.ReceiversChecked != pubs*subs || len(rep.ReceiversWrong) != 0 {
		t.Errorf("admin API: checked %d of %d, wrong %v, error %q", rep.ReceiversChecked, pubs*subs, rep.ReceiversWrong, rep.ReceiversError)
	}
}
