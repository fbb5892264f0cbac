package turn

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleyhq/parley/internal/testkit"
)

// Lifetimes (refresh over 40 minutes, expiry to the second) run on pion's
// vnet inside testing/synctest (vnet_test.go). vnet carries UDP only, so
// TCP, TLS, IPv6, RFC 6062 and the coturn client run on loopback with real
// sockets, where synctest cannot help: goroutines blocked in real socket
// reads are not durably blocked. Timeouts are short and every loop is
// bounded.

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Realm = testRealm
	cfg.ListenUDP = []string{"127.0.0.1:0"}
	cfg.ListenTCP = []string{"127.0.0.1:0"}
	cfg.ListenTLS = nil
	cfg.UDPSocketsPerAddress = 2
	cfg.PublicIPv4 = "127.0.0.1"
	cfg.RelayBindIPv4 = "127.0.0.1"
	cfg.RelayPortMin = 20000
	cfg.RelayPortMax = 29999
	cfg.SharedSecrets = []string{testSecret}
	cfg.MaxAllocationsPerUser = 0
	cfg.MaxAllocations = 0

	return cfg
}

type testServer struct {
	*Server
	reg *prometheus.Registry
	udp string
	tcp string
}

// startServer runs a server until the test ends and fails the test if Run
// does not return promptly after cancellation.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()

	return startServerDeps(t, cfg, Deps{})
}

func startServerDeps(t testing.TB, cfg Config, deps Deps) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	deps.Registerer = reg
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunInBackground(t, "Run", s.Run)
	ts := &testServer{Server: s, reg: reg}
	a := s.Addrs()
	if len(a.UDP) > 0 {
		ts.udp = a.UDP[0].String()
	}
	if len(a.TCP) > 0 {
		ts.tcp = a.TCP[0].String()
	}

	return ts
}

func (ts *testServer) opts(transport string) CheckOptions {
	addr := ts.udp
	if transport == "tcp" {
		addr = ts.tcp
	}

	return CheckOptions{Addr: addr, Transport: transport, Realm: testRealm}
}

// alloc makes a pion client allocation with a REST credential for user.
func (ts *testServer) alloc(t testing.TB, transport, secret, user string) (*turnAlloc, error) {
	t.Helper()
	u, p := RESTCredentials(secret, user, time.Hour, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := dialTURN(ctx, ts.opts(transport), u, p)
	if err == nil {
		t.Cleanup(a.close)
	}

	return a, err
}

// counter reads a counter or gauge. (client_golang's testutil would pull
// a module that is not in go.mod.)
func counter(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}

	return m.Gauge.GetValue()
}

// udpEcho answers every datagram on 127.0.0.1 until the test ends.
func udpEcho(t testing.TB) net.Addr {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); echoLoop(c) }()
	t.Cleanup(func() { _ = c.Close(); <-done })

	return c.LocalAddr()
}

// canary counts bytes that reach it; a denied relay must leave it at zero.
type canary struct {
	conn  net.PacketConn
	mu    sync.Mutex
	bytes int
	done  chan struct{}
}

func newCanary(t testing.TB) *canary {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &canary{conn: c, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			k.mu.Lock()
			k.bytes += n
			k.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-k.done })

	return k
}

func (k *canary) received() int {
	k.mu.Lock()
	defer k.mu.Unlock()

	return k.bytes
}

// rawClient speaks TURN by hand over one UDP socket so tests can send
// requests pion's client never sends (ChannelBind without a permission, a
// tiny LIFETIME) and see exact error codes.
type rawClient struct {
	t        testing.TB
	conn     net.Conn
	datagram bool // retransmit on timeout
	user     string
	password string
	nonce    stun.Nonce
}

func newRawClient(t testing.TB, network, server, user, password string) *rawClient {
	t.Helper()
	c, err := net.Dial(network, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	return &rawClient{t: t, conn: c, datagram: network == "udp", user: user, password: password}
}

// do sends one request (signed when a nonce is known) and returns the
// response and its error code: 0 on success, -1 when no answer came (pion
// stays silent on some requests, e.g. a Refresh of an unknown allocation).
func (r *rawClient) do(method stun.Method, attrs ...stun.Setter) (*stun.Message, int) {
	r.t.Helper()
	for range 2 { // at most one round for a fresh nonce
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if r.nonce != nil {
			setters = append(setters, stun.NewUsername(r.user), stun.NewRealm(testRealm), r.nonce,
				stun.NewLongTermIntegrity(r.user, testRealm, r.password))
		}
		setters = append(setters, stun.Fingerprint)
		req := stun.MustBuild(setters...)
		res := r.roundTrip(req)
		if res == nil {
			return nil, -1
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			return res, 0
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(res); err != nil {
			r.t.Fatalf("%s: error response without code", method)
		}
		if (code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce) && res.Contains(stun.AttrNonce) && r.nonce == nil {
			var n stun.Nonce
			if err := n.GetFrom(res); err != nil {
				r.t.Fatal(err)
			}
			r.nonce = n

			continue
		}

		return res, int(code.Code)
	}
	r.t.Fatalf("%s: no answer after a nonce round", method)

	return nil, 0
}

func (r *rawClient) roundTrip(req *stun.Message) *stun.Message {
	r.t.Helper()
	buf := make([]byte, 2048)
	for attempt := range 5 {
		if attempt == 0 || r.datagram {
			if _, err := r.conn.Write(req.Raw); err != nil {
				r.t.Fatal(err)
			}
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := r.conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := res.Decode(); err != nil {
			r.t.Fatal(err)
		}
		if res.TransactionID == req.TransactionID {
			return res
		}
	}
	return nil
}

func requestedTransport(proto byte) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{proto, 0, 0, 0}}
}

func lifetime(d time.Duration) stun.RawAttribute {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(d/time.Second))

	return stun.RawAttribute{Type: stun.AttrLifetime, Value: v}
}

func channelNumber(n uint16) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(n >> 8), byte(n), 0, 0}}
}

type peerAddr struct {
	ip   net.IP
	port int
}

func (p peerAddr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.ip, Port: p.port}.AddToAs(m, stun.AttrXORPeerAddress)
}

// newTCPClient makes a pion client speaking over an established TCP
// control connection.
func newTCPClient(ctrl net.Conn, server, user, pass string) (*pionturn.Client, error) {
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Username:       user,
		Password:       pass,
		Realm:          testRealm,
		Conn:           pionturn.NewSTUNConn(ctrl),
		LoggerFactory:  quietPion(),
	})
	if err != nil {
		return nil, err
	}
	if err := c.Listen(); err != nil {
		c.Close()

		return nil, err
	}

	return c, nil
}
