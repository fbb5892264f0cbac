package sfu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/internal/testkit"
)

// These run against the real listeners on 127.0.0.1 (see
// loopback_test.go for why not vnet). TestLoopbackICETCP is the other
// half: a real client over ICE-TCP still connects through the guard.

func newTCPTestSFU(t *testing.T, perAddr int, firstSTUN time.Duration, log *slog.Logger) *SFU {
	t.Helper()
	cfg := DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = testkit.FreeTCPPort(t)
	cfg.IncludeLoopback = true
	cfg.CIDRs = []string{"127.0.0.0/8"}
	cfg.TCPUnauthenticatedPerAddr = perAddr
	cfg.TCPFirstSTUNTimeout = firstSTUN
	s, err := New(cfg, Deps{Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// stillOpen reports whether the server has not closed c.
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func dialTCP(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestICETCPUnauthenticatedCap(t *testing.T) {
	s := newTCPTestSFU(t, 3, 2*time.Second, nil)
	var conns []net.Conn
	for range 20 {
		conns = append(conns, dialTCP(t, s.cfg.TCPPort))
	}
	time.Sleep(200 * time.Millisecond)
	var held []net.Conn
	for _, c := range conns {
		if stillOpen(c) {
			held = append(held, c)
		}
	}
	if len(held) != 3 {
		t.Fatalf("server holds %d of 20 idle connections from one address, want the cap 3", len(held))
	}
	if got := metricValue(t, s.m.iceTCPRefused[refusedPerAddrCap]); got != 17 {
		t.Errorf("refused{per_addr_cap} = %v, want 17", got)
	}
	if got := metricValue(t, s.m.iceTCPUnauthenticated); got != 3 {
		t.Errorf("unauthenticated gauge = %v, want 3", got)
	}

	// A closed connection gives its slot back.
	_ = held[0].Close()
	testkit.Eventually(t, 2*time.Second, "the gauge drops when a held connection closes", func() bool {
		return metricValue(t, s.m.iceTCPUnauthenticated) == 2
	})
	next := dialTCP(t, s.cfg.TCPPort)
	time.Sleep(100 * time.Millisecond)
	if !stillOpen(next) {
		t.Fatal("a connection was refused although its address is under the cap again")
	}

	// The first-STUN deadline closes the idle ones.
	testkit.Eventually(t, 4*time.Second, "idle connections closed after tcp_first_stun_timeout", func() bool {
		return !stillOpen(held[1]) && !stillOpen(held[2])
	})
	testkit.Eventually(t, 4*time.Second, "the gauge returns to zero", func() bool {
		return metricValue(t, s.m.iceTCPUnauthenticated) == 0
	})
}

// frame4571 is an RFC 4571 frame carrying payload.
func frame4571(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(payload))), payload...)
}

func TestICETCPReadBudgetBeforeAuth(t *testing.T) {
	s := newTCPTestSFU(t, 4, 10*time.Second, nil)
	c := dialTCP(t, s.cfg.TCPPort)
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("nosuchufrag:x"),
		stun.NewShortTermIntegrity("wrong"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	// A binding for a ufrag no agent issued: pion keeps the connection and
	// buffers what follows for an agent that never comes.
	if _, err := c.Write(frame4571(m.Raw)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	for range 4 {
		if _, err := c.Write(frame4571(make([]byte, 8000))); err != nil {
			break // closed by the server mid-stream: what we want
		}
	}
	testkit.Eventually(t, 2*time.Second, "connection closed after the pre-auth read budget", func() bool {
		return !stillOpen(c)
	})
	if got := metricValue(t, s.m.iceTCPRefused[refusedReadBudget]); got != 1 {
		t.Fatalf("refused{read_budget} = %v, want 1", got)
	}
}

// syncBuffer is a bytes.Buffer the server's goroutines may log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), "\n")
}

// scopeLines counts the lines pion's logger of scope wrote.
func (s *syncBuffer) scopeLines(scope string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), "scope="+scope)
}

func TestUDPJunkLogIsRateLimited(t *testing.T) {
	var buf syncBuffer
	s := newTCPTestSFU(t, 4, 5*time.Second, slog.New(slog.NewTextHandler(&buf, nil)))
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.cfg.UDPPort})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	// A STUN header whose attributes are cut off: pion warns about each.
	const sent = 300
	for i := range sent {
		_, _ = conn.Write(m.Raw[:24])
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // let the mux keep up; loopback drops when its buffer fills
		}
	}
	testkit.Eventually(t, 3*time.Second, "the mux has read the junk", func() bool {
		return buf.scopeLines("udpmux") >= logBurst
	})
	time.Sleep(200 * time.Millisecond)
	if got := buf.scopeLines("udpmux"); got > logBurst {
		t.Fatalf("%d junk datagrams wrote %d log lines, want at most %d", sent, got, logBurst)
	}
	if metricValue(t, s.m.iceLogSuppressed) == 0 {
		t.Fatal("suppressed lines are not counted")
	}
}

func TestRateLoggerWindow(t *testing.T) {
	var buf syncBuffer
	now := time.Unix(1000, 0)
	suppressed := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	next := newRateLogger(logging.PionFactory(slog.New(slog.NewTextHandler(&buf, nil))).NewLogger("udpmux"), suppressed)
	next.now = func() time.Time { return now }
	for i := range 100 {
		next.Warnf("junk %d", i)
	}
	if got := buf.lines(); got != logBurst {
		t.Fatalf("%d lines in one window, want %d", got, logBurst)
	}
	if got := metricValue(t, suppressed); got != 100-logBurst {
		t.Fatalf("suppressed = %v, want %d", got, 100-logBurst)
	}
	now = now.Add(logWindow)
	next.Warn("after")
	if got := buf.lines(); got != logBurst+2 {
		t.Fatalf("%d lines after the window, want %d (a summary and the new line)", got, logBurst+2)
	}
	if !strings.Contains(buf.b.String(), fmt.Sprintf("suppressed %d further messages", 100-logBurst)) {
		t.Fatalf("no summary of the suppressed lines in:\n%s", buf.b.String())
	}
}

// flakyListener fails its first Accept with err, then hands out conn,
// then reports itself closed.
type flakyListener struct {
	net.Listener
	err   error
	conn  net.Conn
	calls int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.calls++
	switch l.calls {
	case 1:
		return nil, l.err
	case 2:
		return l.conn, nil
	}
	return nil, net.ErrClosed
}

// pion's TCPMux stops accepting at the first error its listener
// returns: a passing one (out of file descriptors during a flood) must
// be waited out, not handed up, or no later call could use ICE-TCP; the
// listener's close still ends the loop.
func TestGuardedListenerRetriesAcceptErrors(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	inner := &flakyListener{err: fmt.Errorf("accept tcp [::]:7881: %w", syscall.EMFILE), conn: a}
	l, err := newGuardedListener(inner, 4, m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept handed up %v, want it retried", err)
	}
	if c.(*guardedConn).Conn != a {
		t.Fatalf("Accept returned %v, want the next connection", c)
	}
	if n := metricValue(t, m.iceTCPRefused[refusedAcceptError]); n != 1 {
		t.Errorf("accept errors counted %v, want 1", n)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}
