package turn

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/parleyhq/parley/internal/testkit"
)

// relayRoundTrip sends msg through relay to peer and waits for the echo.
func relayRoundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, msg []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	for range 10 {
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("relay write: %v", err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			continue
		}
		if !bytes.Equal(buf[:n], msg) || from.String() != peer.String() {
			t.Fatalf("got %q from %v; want %q from %v", buf[:n], from, msg, peer)
		}

		return
	}
	t.Fatal("no echo through the relay")
}

func TestRelayUDPAndTCPTransports(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.AllocationLifetime = 2 * time.Second // the client refreshes every second
	ts := startServer(t, cfg)
	echo := udpEcho(t)

	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			created := counter(ts.metrics.allocationsCreated)
			a, err := ts.alloc(t, transport, testSecret, "alice-"+transport)
			if err != nil {
				t.Fatal(err)
			}
			if got := counter(ts.metrics.allocationsCreated); got != created+1 {
				t.Fatalf("allocations created %v, want %v", got, created+1)
			}
			relayIP := a.relay.LocalAddr().(*net.UDPAddr).IP
			if !relayIP.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Fatalf("relay address %v, want the public address", a.relay.LocalAddr())
			}
			// The first write creates the permission; later ones go over a
			// channel once pion's client has bound one.
			relayRoundTrip(t, a.relay, echo, []byte("hello over "+transport))
			testkit.Eventually(t, 3*time.Second, "channel binding", func() bool { return counter(ts.metrics.channelsActive) >= 1 })
			relayRoundTrip(t, a.relay, echo, []byte("over the channel"))
			if counter(ts.metrics.permissionsCreated) < 1 {
				t.Error("no permission counted")
			}
			// Outlive the 2 s lifetime: only refreshes keep the relay alive.
			time.Sleep(3 * time.Second)
			relayRoundTrip(t, a.relay, echo, []byte("after refresh"))
			if counter(ts.metrics.bytesToPeer) == 0 || counter(ts.metrics.bytesToClient) == 0 {
				t.Error("relayed bytes not counted")
			}
		})
	}
}

func TestDeniedPeerGetsNothing(t *testing.T) {
	cfg := testConfig() // no allow-list: loopback is refused
	ts := startServer(t, cfg)
	k := newCanary(t)
	a, err := ts.alloc(t, "udp", testSecret, "eve")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.relay.WriteTo([]byte("should never arrive"), k.conn.LocalAddr())
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("write to a loopback peer: err=%v, want a 403 refusal", err)
	}

	// ChannelBind and Connect are refused too (pion's client always asks for
	// a permission first, so send these by hand).
	u, p := RESTCredentials(testSecret, "eve", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17)); code != 0 {
		t.Fatalf("raw allocate: %d", code)
	}
	kp := k.conn.LocalAddr().(*net.UDPAddr)
	if _, code := rc.do(stun.MethodChannelBind, channelNumber(0x4000), peerAddr{kp.IP, kp.Port}); code <= 0 {
		t.Fatal("ChannelBind to loopback accepted")
	}
	if _, code := rc.do(stun.MethodCreatePermission, peerAddr{net.IPv4(169, 254, 169, 254), 80}); code != 403 {
		t.Fatalf("CreatePermission to metadata: code %d, want 403", code)
	}
	// Send without a permission is dropped by pion.
	send := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAddr{kp.IP, kp.Port}, stun.RawAttribute{Type: stun.AttrData, Value: []byte("sneaky")}, stun.Fingerprint)
	if _, err := rc.conn.Write(send.Raw); err != nil {
		t.Fatal(err)
	}

	tc := newRawClient(t, "tcp", ts.tcp, u, p)
	if _, code := tc.do(stun.MethodAllocate, requestedTransport(6)); code != 0 {
		t.Fatalf("raw TCP allocate: %d", code)
	}
	if _, code := tc.do(stun.MethodConnect, peerAddr{net.IPv4(127, 0, 0, 1), 22}); code != 403 {
		t.Fatalf("Connect to loopback: code %d, want 403", code)
	}

	time.Sleep(300 * time.Millisecond)
	if n := k.received(); n != 0 {
		t.Fatalf("canary received %d bytes", n)
	}
	if got := counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose)); got < 4 {
		t.Fatalf("denials counted %v, want >= 4", got)
	}
}

func TestCredentialsRefused(t *testing.T) {
	cfg := testConfig()
	cfg.SharedSecrets = []string{testSecret2, testSecret} // rotation: two secrets
	ts := startServer(t, cfg)

	for _, transport := range []string{"udp", "tcp"} {
		// Both secrets work, over both transports (the TCP path exercises
		// the stream framer that finds the secret).
		for _, secret := range []string{testSecret, testSecret2} {
			if _, err := ts.alloc(t, transport, secret, "rot"); err != nil {
				t.Fatalf("%s with secret %s: %v", transport, secret[:5], err)
			}
		}
	}

	expiredU, expiredP := RESTCredentials(testSecret, "late", -time.Minute, time.Now())
	goodU, goodP := RESTCredentials(testSecret, "mallory", time.Hour, time.Now())
	cases := []struct{ name, user, pass, reason string }{
		{"expired", expiredU, expiredP, authExpired},
		{"wrong hmac", goodU, goodP + "x", authBadCredential},
		{"unknown secret", goodU, restPassword("not-our-secret-at-all", goodU), authBadCredential},
		{"malformed", "mallory", "pw", authMalformed},
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": ts.udp, "tcp": ts.tcp}[network]
		for _, c := range cases {
			before := counter(ts.metrics.authFailures.WithLabelValues(c.reason))
			rc := newRawClient(t, network, addr, c.user, c.pass)
			res, code := rc.do(stun.MethodAllocate, requestedTransport(17))
			// pion itself answers 400; the server rewrites it to the 401
			// (with REALM and NONCE) that RFC 8489 asks for.
			if code != 401 || !res.Contains(stun.AttrRealm) || !res.Contains(stun.AttrNonce) {
				t.Errorf("%s/%s: code %d, want 401 with realm and nonce", network, c.name, code)
			}
			if got := counter(ts.metrics.authFailures.WithLabelValues(c.reason)); got != before+1 {
				t.Errorf("%s/%s: auth failures(%s) %v, want %v", network, c.name, c.reason, got, before+1)
			}
		}
	}
	// A bad request with a good credential keeps its 400.
	rc := newRawClient(t, "udp", ts.udp, goodU, goodP)
	if _, code := rc.do(stun.MethodAllocate); code != 400 {
		t.Errorf("Allocate without REQUESTED-TRANSPORT: code %d, want 400", code)
	}
	if n := ts.AllocationCount(); n != 4 {
		t.Fatalf("allocations %d, want the 4 valid ones", n)
	}
}

func TestQuotas(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAllocationsPerUser = 2
	cfg.MaxAllocations = 3
	ts := startServer(t, cfg)

	a1, err := ts.alloc(t, "udp", testSecret, "quota")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.alloc(t, "tcp", testSecret, "quota"); err != nil {
		t.Fatal(err)
	}
	_, err = ts.alloc(t, "udp", testSecret, "quota")
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation of one user: %v, want 486", err)
	}
	if _, err := ts.alloc(t, "udp", testSecret, "other"); err != nil {
		t.Fatal(err)
	}
	_, err = ts.alloc(t, "udp", testSecret, "third-user")
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("fourth allocation overall: %v, want 486", err)
	}
	if counter(ts.metrics.quotaRejections.WithLabelValues(quotaScopeUser)) != 1 ||
		counter(ts.metrics.quotaRejections.WithLabelValues(quotaScopeTotal)) != 1 {
		t.Fatal("quota rejections not counted by scope")
	}
	// Releasing one allocation frees its slot.
	_ = a1.relay.Close() // sends Refresh with LIFETIME 0
	testkit.Eventually(t, 3*time.Second, "allocation release", func() bool { return ts.AllocationCount() == 2 })
	if counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteReleased)) != 1 {
		t.Fatal("release not counted as released")
	}
	if _, err := ts.alloc(t, "udp", testSecret, "quota"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestQuotaSlotFreedWhenCreationFails(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAllocationsPerUser = 1
	var skew atomic.Int64
	ts := startServerDeps(t, cfg, Deps{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	u, p := RESTCredentials(testSecret, "zero", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	// A LIFETIME of 0 passes the quota check and then fails in pion.
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17), lifetime(0)); code == 0 {
		t.Fatal("allocation with lifetime 0 succeeded")
	}
	skew.Store(int64(pendingTTL)) // the failed attempt's pending slot lapses
	if _, err := ts.alloc(t, "udp", testSecret, "zero"); err != nil {
		t.Fatalf("slot not freed: %v", err)
	}
}

func TestAllocationExpires(t *testing.T) {
	ts := startServer(t, testConfig())
	u, p := RESTCredentials(testSecret, "brief", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17), lifetime(time.Second)); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	if ts.AllocationCount() != 1 || counter(ts.metrics.allocationsActive) != 1 {
		t.Fatal("allocation not active")
	}
	testkit.Eventually(t, 5*time.Second, "expiry", func() bool { return ts.AllocationCount() == 0 })
	if counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteExpired)) != 1 || counter(ts.metrics.allocationsActive) != 0 {
		t.Fatal("expiry not counted")
	}
	// A refresh of the gone allocation fails.
	if _, code := rc.do(stun.MethodRefresh, lifetime(time.Minute)); code != -1 && code < 400 {
		t.Fatal("refresh after expiry succeeded")
	}
}

func TestTCPRelayRFC6062(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	t.Cleanup(func() { _ = ln.Close(); <-echoDone })

	ctrl, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	u, p := RESTCredentials(testSecret, "tcpuser", time.Hour, time.Now())
	client, err := newTCPClient(ctrl, ts.tcp, u, p)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	alloc, err := client.AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer alloc.Close()
	conn, err := alloc.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial peer through TCP relay: %v", err)
	}
	defer conn.Close()
	msg := []byte("tcp relay works")
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func TestRunClosesListenersAndReturns(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	baseline := runtime.NumGoroutine()
	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Leave a live allocation and a TCP client connection open.
	ts := &testServer{Server: s, udp: addrs.UDP[0].String(), tcp: addrs.TCP[0].String()}
	a, err := dialTURN(ctx, ts.opts("tcp"), "", "")
	if err == nil {
		a.close()
		t.Fatal("allocation without credential succeeded")
	}
	u, p := RESTCredentials(testSecret, "x", time.Hour, time.Now())
	a, err = dialTURN(ctx, ts.opts("tcp"), u, p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := dialTURN(ctx, ts.opts("udp"), u, p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	// Every port is free again.
	for _, ad := range addrs.UDP {
		c, err := net.ListenPacket("udp4", ad.String())
		if err != nil {
			t.Fatalf("UDP %v still bound: %v", ad, err)
		}
		_ = c.Close()
	}
	l, err := net.Listen("tcp4", addrs.TCP[0].String())
	if err != nil {
		t.Fatalf("TCP still bound: %v", err)
	}
	_ = l.Close()
	if err := s.Run(context.Background()); err != ErrAlreadyRun {
		t.Fatalf("second Run: %v", err)
	}
	// pion's server goroutines (read loops, relay loops, TCP connection
	// loops) are gone while the clients are still connected.
	testkit.Eventually(t, 3*time.Second, "pion server goroutines to exit", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "turn/v5.(*Server)") && !strings.Contains(stacks, "turn/v5/internal/allocation") &&
			!strings.Contains(stacks, "turn/v5/internal/server")
	})
	a.close()
	b.close()
	testkit.Eventually(t, 3*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestBandwidthCapDrops(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.AllocationBandwidth = 20_000 // bytes per second
	ts := startServer(t, cfg)
	k := newCanary(t)
	a, err := ts.alloc(t, "udp", testSecret, "hog")
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	for range 100 { // 100 kB at once: far above a 4 kB burst
		if _, err := a.relay.WriteTo(payload, k.conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 3*time.Second, "drops", func() bool { return counter(ts.metrics.droppedBandwidthOut) > 0 })
	time.Sleep(200 * time.Millisecond)
	if got := k.received(); got <= 0 || got > 30_000 {
		t.Fatalf("peer received %d bytes; want some, at most the burst plus a moment of rate", got)
	}
}

func TestIPv6Relay(t *testing.T) {
	cfg := testConfig()
	cfg.ListenUDP = []string{"127.0.0.1:0", "[::1]:0"}
	cfg.ListenTCP = []string{"[::1]:0"}
	cfg.PublicIPv6 = "::1"
	cfg.RelayBindIPv6 = "::1"
	cfg.AllowedPeerCIDRs = []string{"::1/128"}
	ts := startServer(t, cfg)
	a := ts.Addrs()
	if len(a.UDP) != 4 || len(a.TCP) != 1 { // two SO_REUSEPORT sockets per UDP address
		t.Fatalf("listeners %v", a)
	}
	for _, o := range []CheckOptions{
		{Addr: a.UDP[2].String(), Transport: "udp"},
		{Addr: a.TCP[0].String(), Transport: "tcp"},
	} {
		o.Realm, o.Secret, o.PeerIP, o.Timeout = testRealm, testSecret, "::1", 5*time.Second
		report, err := Check(context.Background(), o)
		if err != nil || !strings.Contains(report, "relay [::1]:") {
			t.Fatalf("IPv6 over %s: %q %v", o.Transport, report, err)
		}
	}
	// An IPv4 client asking for an IPv6 relay gets one too (RFC 6156).
	u, p := RESTCredentials(testSecret, "v6", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	res, code := rc.do(stun.MethodAllocate, requestedTransport(17),
		stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{0x02, 0, 0, 0}})
	if code != 0 {
		t.Fatalf("IPv6 allocation from an IPv4 client: %d", code)
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil || !relayed.IP.Equal(net.IPv6loopback) {
		t.Fatalf("relayed address %v %v", relayed, err)
	}
}

func TestDeletionReasonConnectionClosed(t *testing.T) {
	ts := startServer(t, testConfig())
	a, err := ts.alloc(t, "tcp", testSecret, "leaver")
	if err != nil {
		t.Fatal(err)
	}
	_ = a.conn.Close() // drop the TCP connection without releasing
	testkit.Eventually(t, 3*time.Second, "allocation deletion", func() bool { return ts.AllocationCount() == 0 })
	if counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteConnClosed)) != 1 ||
		counter(ts.metrics.allocationsDeleted.WithLabelValues(deleteExpired)) != 0 {
		t.Fatal("deletion not counted as connection_closed")
	}
}
