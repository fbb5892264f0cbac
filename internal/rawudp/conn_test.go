package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func receive(t *testing.T, c *net.UDPConn) (string, netip.AddrPort) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n]), from
}

func TestConnSendsAndReceives(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			peer := listen(t, tc.network, tc.addr)
			c := Wrap(listen(t, tc.network, tc.addr))
			if runtime.GOOS == "linux" && !c.Raw() {
				t.Fatal("on Linux the socket should take the raw path")
			}
			to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			if n, err := c.WriteToAddrPort([]byte("hello"), to); err != nil || n != 5 {
				t.Fatalf("write: %d %v", n, err)
			}
			got, from := receive(t, peer)
			if got != "hello" || from.Port() != c.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
				t.Fatalf("peer got %q from %s", got, from)
			}
			// And the other way: reads stay on Go's poller.
			if _, err := peer.WriteToUDPAddrPort([]byte("back"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 10)
			n, _, err := c.ReadFromAddrPort(buf)
			if err != nil || string(buf[:n]) != "back" {
				t.Fatalf("read %q %v", buf[:n], err)
			}
			if _, err := c.WriteTo([]byte("x"), &net.IPAddr{}); !errors.Is(err, ErrFamily) {
				t.Fatalf("write to a non-UDP address: %v", err)
			}
		})
	}
}

func TestConnIPv4MappedOnIPv4Socket(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
	if _, err := c.WriteToAddrPort([]byte("mapped"), mapped); err != nil {
		t.Fatal(err)
	}
	if got, _ := receive(t, peer); got != "mapped" {
		t.Fatalf("got %q", got)
	}
	if !c.Raw() {
		return
	}
	if _, err := c.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[::1]:9")); !errors.Is(err, ErrFamily) {
		t.Fatalf("IPv6 destination on an IPv4 socket: %v", err)
	}
}

func TestConnWriteAfterCloseFails(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.WriteToAddrPort([]byte("late"), peer.LocalAddr().(*net.UDPAddr).AddrPort())
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

func TestConnWriteDoesNotAllocate(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	p := make([]byte, 1200)
	if a := testing.AllocsPerRun(200, func() { _, _ = c.WriteToAddrPort(p, to) }); a != 0 {
		t.Fatalf("%.1f allocations per send, want 0", a)
	}
}

func BenchmarkWrite(b *testing.B) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	_ = peer.SetReadBuffer(1 << 20)
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	p := make([]byte, 1200)
	for _, tc := range []struct {
		name string
		raw  bool
	}{{"net.UDPConn", false}, {"raw", true}} {
		b.Run(tc.name, func(b *testing.B) {
			u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			c := Wrap(u)
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				if tc.raw {
					_, _ = c.WriteToAddrPort(p, to)
				} else {
					_, _ = u.WriteToUDPAddrPort(p, to)
				}
			}
		})
	}
}
