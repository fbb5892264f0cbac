package hostile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/turn"
)

// The TURN attacks: many idle TCP and TLS connections, from one address
// and from several, past the per-address caps and the pools, while a
// legitimate client (coturn's turnutils_uclient, from an address of its
// own) allocates and relays over TCP and over TLS.

const turnSecret = "hostile-turn-secret-0123456789"

// Small limits so the attack passes them with few connections.
const (
	turnPool           = 64 // per listener kind
	turnPerIP          = 32
	turnPendingPerIP   = 8
	turnAuthTimeout    = 3 * time.Second
	spreadAddresses    = 9  // 9 x 8 pending > 64: the pools fill
	attackHeld         = 80 // connections each attacker keeps open: over the caps and the pool
	attackDialInterval = 50 * time.Millisecond
	attackDuration     = 20 * time.Second
	attackMaxDials     = 400 // per attacker goroutine (18 of them)
)

type turnPorts struct{ udp, tcp, tls int }

// startTURN runs parley with TURN on free loopback ports and the limits
// above; loopback peer 127.0.0.1 is allowed so the legitimate client can
// relay to turnutils_peer, every other special range stays refused.
func startTURN(t *testing.T) (*testkit.Parley, turnPorts) {
	t.Helper()
	cert, key, _ := testkit.SelfSignedCert(t)
	ports := turnPorts{udp: testkit.FreeUDPPort(t), tcp: testkit.FreeTCPPort(t), tls: testkit.FreeTCPPort(t)}
	p := start(t, map[string]any{"turn": map[string]any{
		"enabled":                        true,
		"realm":                          "parley",
		"listen_udp":                     []string{fmt.Sprintf("127.0.0.1:%d", ports.udp)},
		"listen_tcp":                     []string{fmt.Sprintf("127.0.0.1:%d", ports.tcp)},
		"listen_tls":                     []string{fmt.Sprintf("127.0.0.1:%d", ports.tls)},
		"tls_cert":                       cert,
		"tls_key":                        key,
		"public_ipv4":                    "127.0.0.1",
		"relay_bind_ipv4":                "127.0.0.1",
		"relay_port_min":                 40000,
		"relay_port_max":                 44999,
		"shared_secrets":                 []string{turnSecret},
		"allowed_peer_cidrs":             []string{"127.0.0.1/32"},
		"max_tcp_connections":            turnPool,
		"max_tls_connections":            turnPool,
		"max_tcp_connections_per_ip":     turnPerIP,
		"max_tcp_unauthenticated_per_ip": turnPendingPerIP,
		"tcp_auth_timeout":               turnAuthTimeout.String(),
	}})

	return p, ports
}

// idleFlood holds up to attackHeld idle connections from one loopback
// address to addr until ctx ends or attackMaxDials, as an attacker who
// wants the places does: it never lets one go, and each tick it checks one
// held connection (round robin) and replaces it if the server closed it.
// It says nothing: no STUN, no TLS handshake. It returns how many dials
// the server accepted at the TCP level.
func idleFlood(ctx context.Context, from, addr string) int {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: time.Second}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	dialed, probe := 0, 0
	one := make([]byte, 1)
	tick := time.NewTicker(attackDialInterval)
	defer tick.Stop()
	for dialed < attackMaxDials {
		select {
		case <-ctx.Done():
			return dialed
		case <-tick.C:
		}
		if len(held) > 0 {
			probe %= len(held)
			c := held[probe]
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(one); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				_ = c.Close()
				held = append(held[:probe], held[probe+1:]...)
			} else {
				probe++
			}
		}
		if len(held) >= attackHeld {
			continue
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			continue
		}
		dialed++
		held = append(held, c)
	}

	return dialed
}

// attack runs idle floods on the TCP and TLS ports from addresses
// loopback addresses (127.0.0.1 and 127.0.0.3 up; 127.0.0.2 is the
// legitimate client's) and returns a function that ends it and waits.
func attack(t *testing.T, ports turnPorts, addresses int) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), attackDuration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := range addresses {
		from := "127.0.0.1"
		if i > 0 {
			from = fmt.Sprintf("127.0.0.%d", i+2)
		}
		for _, port := range []int{ports.tcp, ports.tls} {
			wg.Go(func() {
				n := idleFlood(ctx, from, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
	}
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
		mu.Lock()
		defer mu.Unlock()

		return total
	}
	t.Cleanup(func() { stop() })

	return stop
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y coturn`", name)
	}

	return p
}

// startEchoPeer runs turnutils_peer (a UDP echo) on 127.0.0.1.
func startEchoPeer(t *testing.T) int {
	t.Helper()
	bin := needTool(t, "turnutils_peer")
	port := testkit.FreeUDPPort(t)
	peer := testkit.StartProcess(t, context.Background(), bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	for range 50 {
		_, _ = c.Write([]byte("ping"))
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
			return port
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("turnutils_peer did not start: %s", peer.Output())

	return 0
}

var (
	reUclientRecv = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	reUclientSent = regexp.MustCompile(`tot_send_msgs=(\d+)`)
)

// uclientRelay runs turnutils_uclient from 127.0.0.2 over TCP (or TLS)
// and returns the messages it sent and got back through the relay.
func uclientRelay(t *testing.T, port, peer int, useTLS bool, clients, msgs int) (sent, recv int, out string) {
	t.Helper()
	args := []string{"-t", "-L", "127.0.0.2", "-W", turnSecret, "-u", "legit", "-e", "127.0.0.1",
		"-r", strconv.Itoa(peer), "-p", strconv.Itoa(port), "-m", strconv.Itoa(clients),
		"-n", strconv.Itoa(msgs), "-l", "200", "-z", "5", "-c"}
	if useTLS {
		args = append(args, "-S")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ = testkit.StartProcess(t, ctx, needTool(t, "turnutils_uclient"), append(args, "127.0.0.1")...).Wait()
	if m := reUclientSent.FindAllStringSubmatch(out, -1); m != nil {
		sent, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := reUclientRecv.FindAllStringSubmatch(out, -1); m != nil {
		recv, _ = strconv.Atoi(m[len(m)-1][1])
	}

	return sent, recv, out
}

// turnMetric sums the samples of a parley_turn_ metric whose label text
// contains match (e.g. `listener="tls"`).
func turnMetric(t *testing.T, p *testkit.Parley, name, match string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(p.URL + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, match) {
			continue
		}
		rest := strings.TrimPrefix(line, name)
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric sharing the prefix
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}

	return sum
}

// refusedPeers are special-range peers the relay must refuse during the
// attack as it does without one (only 127.0.0.1 is allowed here).
var refusedPeers = []string{"169.254.169.254", "10.0.0.1", "192.168.1.1", "100.64.0.1", "127.0.0.2", "0.0.0.0"}

// checkSpecialRangesRefused allocates over TCP from 127.0.0.2 with pion's
// client and asks for permissions to refusedPeers: each must fail with 403.
func checkSpecialRangesRefused(t *testing.T, port int) {
	t.Helper()
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", server)
	if err != nil {
		t.Fatalf("dial TURN/TCP: %v", err)
	}
	defer conn.Close()
	user, pass := turn.RESTCredentials(turnSecret, "legit", time.Hour, time.Now())
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server, Username: user, Password: pass,
		Realm: "parley", Conn: pionturn.NewSTUNConn(conn), RTO: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("allocate during the attack: %v", err)
	}
	defer relay.Close()
	for _, ip := range refusedPeers {
		_, err := relay.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP(ip), Port: 80})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("permission to %s during the attack: %v, want a 403 refusal", ip, err)
		}
	}
}

// legitDuringAttack is what must keep working under every attack: a
// TURN/TCP and a TURN/TLS client relay every message, and special-range
// peers are refused as always.
func legitDuringAttack(t *testing.T, ports turnPorts, peer int) {
	t.Helper()
	const clients, msgs = 2, 50
	for _, tr := range []struct {
		name   string
		port   int
		useTLS bool
	}{{"TCP", ports.tcp, false}, {"TLS", ports.tls, true}} {
		t.Run(tr.name+" client relays", func(t *testing.T) {
			sent, recv, out := uclientRelay(t, tr.port, peer, tr.useTLS, clients, msgs)
			if sent != clients*msgs || recv != clients*msgs {
				t.Fatalf("during the attack over %s: sent %d recv %d, want %d each\n%s", tr.name, sent, recv, clients*msgs, out)
			}
		})
	}
	t.Run("special-range peers refused", func(t *testing.T) {
		checkSpecialRangesRefused(t, ports.tcp)
	})
}

// rssDuring reads the server's RSS and fails if it grew more than 64 MiB
// over quiet: at most 128 client connections live at once, whose buffers
// and goroutines are a few MiB; the rest is room for the runtime.
func rssDuring(t *testing.T, p *testkit.Parley, quiet int64) {
	t.Helper()
	rss, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RSS quiet %.1f MiB, under attack %.1f MiB", float64(quiet)/(1<<20), float64(rss)/(1<<20))
	if rss > quiet+64<<20 {
		t.Fatalf("RSS grew from %.1f to %.1f MiB under the attack", float64(quiet)/(1<<20), float64(rss)/(1<<20))
	}
}

// counted fails unless the metric moved past before for both listeners.
func counted(t *testing.T, p *testkit.Parley, name string, before map[string]float64, why string) {
	t.Helper()
	for _, kind := range []string{"tcp", "tls"} {
		if n := turnMetric(t, p, name, fmt.Sprintf(`listener="%s"`, kind)); n <= before[kind] {
			t.Errorf("%s: %s stayed at %v: %s", kind, name, n, why)
		}
	}
}

func snapshot(t *testing.T, p *testkit.Parley, name string) map[string]float64 {
	t.Helper()

	return map[string]float64{
		"tcp": turnMetric(t, p, name, `listener="tcp"`),
		"tls": turnMetric(t, p, name, `listener="tls"`),
	}
}

func TestTurnIdleConnectionFlood(t *testing.T) {
	p, ports := startTURN(t)
	peer := startEchoPeer(t)
	// Baseline: the legitimate client relays on a quiet server.
	if sent, recv, out := uclientRelay(t, ports.tcp, peer, false, 1, 20); sent != 20 || recv != 20 {
		t.Fatalf("quiet server: sent %d recv %d, want 20 each\n%s", sent, recv, out)
	}
	quiet, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}

	// One address tries to hold 80 idle connections per port, ten times
	// its cap of unauthenticated ones and more than the pool.
	t.Run("one address", func(t *testing.T) {
		refused := snapshot(t, p, "parley_turn_tcp_connections_refused_total")
		timeouts := snapshot(t, p, "parley_turn_tcp_auth_timeouts_total")
		stop := attack(t, ports, 1)
		testkit.Eventually(t, 10*time.Second, "the address to reach its caps", func() bool {
			return turnMetric(t, p, "parley_turn_tcp_connections_unauthenticated", "") >= 2*turnPendingPerIP
		})
		legitDuringAttack(t, ports, peer)
		testkit.Eventually(t, turnAuthTimeout+5*time.Second, "idle connections timed out", func() bool {
			return turnMetric(t, p, "parley_turn_tcp_auth_timeouts_total", `listener="tcp"`) > timeouts["tcp"] &&
				turnMetric(t, p, "parley_turn_tcp_auth_timeouts_total", `listener="tls"`) > timeouts["tls"]
		})
		counted(t, p, "parley_turn_tcp_connections_refused_total", refused, "the attack did not pass the per-address caps")
		rssDuring(t, p, quiet)
		t.Logf("%d connections opened", stop())
	})

	// Nine addresses want 72 unauthenticated places in pools of 64.
	t.Run("nine addresses", func(t *testing.T) {
		evicted := snapshot(t, p, "parley_turn_tcp_connections_evicted_total")
		stop := attack(t, ports, spreadAddresses)
		testkit.Eventually(t, 10*time.Second, "the attack to fill both pools", func() bool {
			return turnMetric(t, p, "parley_turn_tcp_connections_active", `listener="tcp"`) >= turnPool &&
				turnMetric(t, p, "parley_turn_tcp_connections_active", `listener="tls"`) >= turnPool
		})
		legitDuringAttack(t, ports, peer)
		counted(t, p, "parley_turn_tcp_connections_evicted_total", evicted, "the attack did not fill the pool")
		for _, kind := range []string{"tcp", "tls"} {
			if n := turnMetric(t, p, "parley_turn_tcp_connections_active", fmt.Sprintf(`listener="%s"`, kind)); n > turnPool {
				t.Errorf("%s: %v connections open, pool is %d", kind, n, turnPool)
			}
		}
		rssDuring(t, p, quiet)
		t.Logf("%d connections opened", stop())
	})

	// Once the attack ends, nothing of it stays.
	testkit.Eventually(t, turnAuthTimeout+5*time.Second, "attack connections gone", func() bool {
		return turnMetric(t, p, "parley_turn_tcp_connections_active", "") == 0
	})
}
