package e2e

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// turnSecret is the TURN REST shared secret of the relay test's server.
const turnSecret = "e2e-turn-secret-0123456789abcdef"

// candidate and pairInfo mirror window.parley.transport().
type candidate struct {
	Type          string `json:"type"`
	Protocol      string `json:"protocol"`
	RelayProtocol string `json:"relayProtocol"`
	Address       string `json:"address"`
	Port          int    `json:"port"`
}

type pairInfo struct {
	State         string     `json:"state"`
	BytesSent     int64      `json:"bytesSent"`
	BytesReceived int64      `json:"bytesReceived"`
	Local         *candidate `json:"local"`
	Remote        *candidate `json:"remote"`
}

type transportInfo struct {
	Publisher  *pairInfo `json:"publisher"`
	Subscriber *pairInfo `json:"subscriber"`
}

// turnConfig enables the embedded TURN server on free loopback ports,
// relaying to loopback (where the SFU listens) by explicit allow-list.
func turnConfig(t *testing.T) map[string]any {
	udp, tcp := testkit.FreeUDPPort(t), testkit.FreeTCPPort(t)
	return map[string]any{
		"turn": map[string]any{
			"enabled":            true,
			"realm":              "parley.test",
			"listen_udp":         []string{fmt.Sprintf("127.0.0.1:%d", udp)},
			"listen_tcp":         []string{fmt.Sprintf("127.0.0.1:%d", tcp)},
			"listen_tls":         []string{},
			"public_ipv4":        "127.0.0.1",
			"relay_bind_ipv4":    "127.0.0.1",
			"shared_secrets":     []string{turnSecret},
			"allowed_peer_cidrs": []string{"127.0.0.0/8"},
		},
	}
}

// joinRelay joins a room through a dev token with a forced-relay mode.
func joinRelay(t *testing.T, ctx context.Context, srv *server, room, name, relay string) *participant {
	t.Helper()
	b, err := StartBrowser(context.Background(), name, BrowserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	link := fmt.Sprintf("%s/r/%s?name=%s&relay=%s", srv.URL, url.PathEscape(room), url.QueryEscape(name), relay)
	if err := b.Navigate(ctx, link); err != nil {
		t.Fatal(err)
	}
	p.waitState(ctx, 45*time.Second, "joined and publishing through TURN", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
	return p
}

// TestTURNRelayCall: with relay forced in both browsers, a call connects
// only through Parley's embedded TURN server: first with every TURN URL
// (UDP and TCP), then with TURN over TCP alone, as on a network that
// blocks UDP.
func TestTURNRelayCall(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServerWith(t, turnConfig(t))
	for _, tc := range []struct {
		relay, wantRelayProto string
	}{
		{"1", ""},      // any TURN transport; Chromium prefers UDP
		{"tcp", "tcp"}, // TURN over TCP only
	} {
		t.Run("relay="+tc.relay, func(t *testing.T) {
			room := "e2e-turn-" + tc.relay
			ada := joinRelay(t, ctx, srv, room, "Ada", tc.relay)
			bob := joinRelay(t, ctx, srv, room, "Bob", tc.relay)
			adaStats := waitSeesOthers(ctx, ada, bob)
			bobStats := waitSeesOthers(ctx, bob, ada)
			ada.assertFlowing(ctx, flowingFrom(adaStats, "Bob"))
			bob.assertFlowing(ctx, flowingFrom(bobStats, "Ada"))
			for _, p := range []*participant{ada, bob} {
				tr, err := Eval[transportInfo](ctx, p.B, `window.parley.transport()`)
				if err != nil {
					t.Fatal(err)
				}
				for target, pair := range map[string]*pairInfo{"publisher": tr.Publisher, "subscriber": tr.Subscriber} {
					switch {
					case pair == nil || pair.Local == nil:
						t.Errorf("%s %s: no selected candidate pair: %+v", p.Name, target, tr)
					case pair.Local.Type != "relay":
						t.Errorf("%s %s: local candidate is %q (%+v), want relay", p.Name, target, pair.Local.Type, *pair.Local)
					case tc.wantRelayProto != "" && pair.Local.RelayProtocol != tc.wantRelayProto:
						t.Errorf("%s %s: relayed over %q, want %q", p.Name, target, pair.Local.RelayProtocol, tc.wantRelayProto)
					case target == "publisher" && pair.BytesSent == 0, target == "subscriber" && pair.BytesReceived == 0:
						// Media goes up on the publisher and down on the subscriber.
						t.Errorf("%s %s: no media on the relayed pair: %+v", p.Name, target, *pair)
					default:
						t.Logf("%s %s: relay candidate over %s via %s:%d", p.Name, target, pair.Local.RelayProtocol, pair.Local.Address, pair.Local.Port)
					}
				}
			}
			ada.shot(ctx, "relayed")
		})
	}
}

// TestRelayWithoutTURNSaysSo: forcing relay on a server that offers no
// TURN server cannot connect media, and the page says why instead of
// spinning silently.
func TestRelayWithoutTURNSaysSo(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	srv := startServer(t)
	b, err := StartBrowser(context.Background(), "Kim", BrowserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: "Kim", B: b}
	t.Cleanup(func() { p.finish(ctx) })
	if err := b.Navigate(ctx, srv.URL+"/r/e2e-noturn?name=Kim&relay=tcp"); err != nil {
		t.Fatal(err)
	}
	var banner string
	if !poll(ctx, 20*time.Second, func() bool {
		banner, _ = Eval[string](ctx, b, `(() => { const e = document.querySelector('[data-testid="banner"]'); return e && !e.hidden ? e.textContent : ''; })()`)
		return banner != ""
	}) {
		t.Fatal("Kim: no notice that relay-only mode has no TURN server")
	}
	if want := "Relay-only mode (tcp)"; len(banner) < len(want) || banner[:len(want)] != want {
		t.Errorf("Kim: banner %q, want one starting with %q", banner, want)
	}
	tr, err := Eval[transportInfo](ctx, b, `window.parley.transport()`)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Publisher != nil && tr.Publisher.Local != nil {
		t.Errorf("Kim: publisher connected over %+v without any TURN server", *tr.Publisher.Local)
	}
	p.shot(ctx, "no-turn")
}
