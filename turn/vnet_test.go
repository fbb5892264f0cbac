package turn

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/vnet"
	pionturn "github.com/pion/turn/v5"
)

// These tests run on pion's virtual network inside a synctest bubble, so
// lifetimes of minutes pass in no real time. vnet carries UDP only; TCP and
// TLS are covered by the loopback tests. The virtual addresses are
// public-looking (1.2.3.0/24), so the default peer policy admits them
// without an allow-list; no packet leaves the process.

type vnetWorld struct {
	wan                     *vnet.Router
	server, client, peerNet *vnet.Net
}

func newVNetWorld(t *testing.T) *vnetWorld {
	t.Helper()
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "1.2.3.0/24", LoggerFactory: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(ip string) *vnet.Net {
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}

		return n
	}
	w := &vnetWorld{wan: wan, server: mk("1.2.3.4"), client: mk("1.2.3.5"), peerNet: mk("1.2.3.6")}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })

	return w
}

func (w *vnetWorld) startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cfg.ListenUDP = []string{"1.2.3.4:3478"}
	cfg.ListenTCP = nil
	cfg.PublicIPv4, cfg.RelayBindIPv4 = "1.2.3.4", "1.2.3.4"
	cfg.AllowedPeerCIDRs = nil

	return startServerDeps(t, cfg, Deps{Net: w.server})
}

func (w *vnetWorld) echo(t *testing.T) net.Addr {
	t.Helper()
	c, err := w.peerNet.ListenPacket("udp4", "1.2.3.6:5000")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); echoLoop(c) }()
	t.Cleanup(func() { _ = c.Close(); <-done })

	return c.LocalAddr()
}

func (w *vnetWorld) dial(t *testing.T, user string) (*pionturn.Client, net.PacketConn) {
	t.Helper()
	conn, err := w.client.ListenPacket("udp4", "1.2.3.5:0")
	if err != nil {
		t.Fatal(err)
	}
	u, p := RESTCredentials(testSecret, user, time.Hour, time.Now())
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: "1.2.3.4:3478", TURNServerAddr: "1.2.3.4:3478",
		Username: u, Password: p, Realm: testRealm, Conn: conn, Net: w.client, LoggerFactory: quietPion(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close(); c.Close(); _ = conn.Close() })

	return c, relay
}

func TestVNetRefreshKeepsAllocationAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newVNetWorld(t)
		ts := w.startServer(t, testConfig()) // 10 minute allocation lifetime
		echo := w.echo(t)
		_, relay := w.dial(t, "long-call")
		relayRoundTrip(t, relay, echo, []byte("minute 0"))
		// 42.5 minutes: pion's client refreshes the allocation every 5
		// minutes and the permission and channel on whole minutes too. The
		// checks fall on half minutes so the test never closes the client
		// while a refresh is in flight (pion's client can then leave a
		// goroutine waiting forever, which synctest reports as a deadlock).
		time.Sleep(150 * time.Second)
		for range 9 {
			relayRoundTrip(t, relay, echo, []byte("still here"))
			time.Sleep(5 * time.Minute)
		}
		if n := counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteExpired)); n != 0 || ts.AllocationCount() != 1 {
			t.Fatalf("allocation expired despite refreshes (expired=%v, count=%d)", n, ts.AllocationCount())
		}
	})
}

func TestVNetAllocationExpiresOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newVNetWorld(t)
		ts := w.startServer(t, testConfig())
		conn, err := w.client.Dial("udp", "1.2.3.4:3478")
		if err != nil {
			t.Fatal(err)
		}
		u, p := RESTCredentials(testSecret, "short", time.Hour, time.Now())
		rc := &rawClient{t: t, conn: conn, datagram: true, user: u, password: p}
		t.Cleanup(func() { _ = conn.Close() })
		if _, code := rc.do(stun.MethodAllocate, requestedTransport(17), lifetime(3*time.Minute)); code != 0 {
			t.Fatalf("allocate: %d", code)
		}
		start := time.Now()
		time.Sleep(3*time.Minute - time.Second)
		synctest.Wait()
		if ts.AllocationCount() != 1 {
			t.Fatal("allocation gone before its lifetime")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ts.AllocationCount() != 0 || counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteExpired)) != 1 {
			t.Fatalf("allocation alive %s after a 3 minute lifetime", time.Since(start))
		}
	})
}

// TestVNetPrivatePeerRefused checks the policy on a virtual network whose
// peer sits in a private range behind the same router.
func TestVNetPrivatePeerRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newVNetWorld(t)
		ts := w.startServer(t, testConfig())
		_, relay := w.dial(t, "prober")
		_, err := relay.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22})
		if err == nil {
			t.Fatal("write to a private peer allowed")
		}
		if counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose)) != 1 {
			t.Fatal("denial not counted")
		}
	})
}
