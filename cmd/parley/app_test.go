package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// listener is one socket the server binds, named by its config key.
type listener struct {
	key     string // as the start-up error names it
	network string // "udp4" or "tcp4"
	port    int
}

// allListeners gives every listener of the server a free loopback port
// and writes a config file that enables them all.
func allListeners(t *testing.T) (file string, ls []listener) {
	t.Helper()
	ls = []listener{
		{"sfu.udp_port", "udp4", testkit.FreeUDPPort(t)},
		{"sfu.tcp_port", "tcp4", testkit.FreeTCPPort(t)},
		{"turn.listen_udp", "udp4", testkit.FreeUDPPort(t)},
		{"turn.listen_tcp", "tcp4", testkit.FreeTCPPort(t)},
		{"rtmp listen", "tcp4", testkit.FreeTCPPort(t)},
		{"signaling.listen", "tcp4", testkit.FreeTCPPort(t)},
	}
	dir := t.TempDir()
	// serverConfig ends in the sfu section, which interfaces extends.
	cfg := "dev: true\n" + serverConfig(filepath.Join(dir, "data"), ls[5].port, ls[0].port, ls[1].port) + fmt.Sprintf(`  interfaces: [lo]
turn:
  enabled: true
  listen_udp: [127.0.0.1:%d]
  listen_tcp: [127.0.0.1:%d]
  public_ipv4: 127.0.0.1
  relay_bind_ipv4: 127.0.0.1
rtmp:
  enabled: true
  listen: 127.0.0.1:%d
`, ls[2].port, ls[3].port, ls[4].port)
	file = filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, ls
}

// take binds l's port, as another program holding it would.
func (l listener) take(t *testing.T) (release func()) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", l.port)
	if l.network == "udp4" {
		c, err := net.ListenPacket(l.network, addr)
		if err != nil {
			t.Fatalf("take %s: %v", l.key, err)
		}
		return func() { c.Close() }
	}
	ln, err := net.Listen(l.network, addr)
	if err != nil {
		t.Fatalf("take %s: %v", l.key, err)
	}
	return func() { ln.Close() }
}

// assertFree binds every port again: a socket the failed start left open
// would refuse it.
func assertFree(t *testing.T, ls []listener) {
	t.Helper()
	for _, l := range ls {
		l.take(t)()
	}
}

// TestServeFailsCleanlyWhenAPortIsTaken takes each listener's port in
// turn. The server must fail naming that listener, and give back every
// socket the components before it had opened (the SFU's and TURN's are
// opened at build time, signaling's and RTMP's when they run) and leave
// no goroutine behind.
func TestServeFailsCleanlyWhenAPortIsTaken(t *testing.T) {
	_, names := allListeners(t)
	for i, name := range names {
		t.Run(name.key, func(t *testing.T) {
			// Fresh ports for each case: loopback tests of other packages
			// may run meanwhile and take a port as a client's source.
			file, ls := allListeners(t)
			busy := ls[i]
			leaks := testkit.GoroutineBaseline(t, 10*time.Second)
			release := busy.take(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out testkit.SyncBuffer
			err := run(ctx, []string{"--config", file}, nil, &out, &out)
			release()
			if ctx.Err() != nil {
				t.Fatalf("serve did not fail on its own within 30s (err %v); output:\n%s", err, out.String())
			}
			if err == nil || !strings.Contains(err.Error(), busy.key) {
				t.Fatalf("error %v, want one naming %q; output:\n%s", err, busy.key, out.String())
			}
			assertFree(t, ls)
			leaks()
		})
	}
}

// TestBuiltAppClosedWithoutRun is the path of a caller that builds the
// app and then does not run it: Close alone must release everything.
func TestBuiltAppClosedWithoutRun(t *testing.T) {
	file, ls := allListeners(t)
	leaks := testkit.GoroutineBaseline(t, 10*time.Second)
	var out testkit.SyncBuffer
	cfg, logger, err := serveConfig([]string{"--config", file}, nil, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", ls[0].port)); err == nil {
		c.Close()
		t.Fatal("the SFU's UDP port is free after buildApp; the test would prove nothing")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertFree(t, ls)
	leaks()
}
