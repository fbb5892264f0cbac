//go:build linux

package rawudp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// silent asserts that nothing arrives at c within a short wait.
func silent(t *testing.T, c *net.UDPConn, why string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 100)
	if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("%s: got %q", why, buf[:n])
	}
}

// expect reads want from c, in that order.
func expect(t *testing.T, c *net.UDPConn, want ...string) {
	t.Helper()
	for _, w := range want {
		if got, _ := receive(t, c); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
}

func write(t *testing.T, c *Conn, s string, to netip.AddrPort) {
	t.Helper()
	if n, err := c.WriteToAddrPort([]byte(s), to); err != nil || n != len(s) {
		t.Fatalf("write %q: %d %v", s, n, err)
	}
}

func TestBatchKeepsOrderAndDestinations(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			a, b := listen(t, tc.network, tc.addr), listen(t, tc.network, tc.addr)
			c := Wrap(listen(t, tc.network, tc.addr))
			c.Cork()
			for i := range 10 {
				to := addrOf(a)
				if i%2 == 1 {
					to = addrOf(b)
				}
				write(t, c, fmt.Sprint("p", i), to)
			}
			silent(t, a, "corked")
			c.Uncork()
			expect(t, a, "p0", "p2", "p4", "p6", "p8")
			expect(t, b, "p1", "p3", "p5", "p7", "p9")
			if from := func() netip.AddrPort { write(t, c, "x", addrOf(a)); _, f := receive(t, a); return f }(); from.Port() != addrOf(c.UDPConn).Port() {
				t.Fatalf("datagram came from %s, not the socket's port", from)
			}
		})
	}
}

func TestBatchFlushesWhenLastCorkIsReleased(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	c.Cork()
	c.Cork()
	write(t, c, "one", addrOf(peer))
	c.Uncork()
	silent(t, peer, "one cork still held")
	write(t, c, "two", addrOf(peer))
	c.Uncork()
	expect(t, peer, "one", "two")
	write(t, c, "uncorked", addrOf(peer)) // goes out at once
	expect(t, peer, "uncorked")
}

func TestBatchFlushesWhenFull(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	_ = peer.SetReadBuffer(1 << 20)
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	c.Cork()
	want := make([]string, batchSize)
	for i := range want {
		want[i] = fmt.Sprint("d", i)
		write(t, c, want[i], addrOf(peer))
	}
	expect(t, peer, want...) // a full batch leaves while still corked
	write(t, c, "next", addrOf(peer))
	silent(t, peer, "the next batch waits for Uncork")
	c.Uncork()
	expect(t, peer, "next")
}

func TestBatchOversizedDatagramKeepsOrder(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	big := make([]byte, slotSize+1)
	c.Cork()
	write(t, c, "small", addrOf(peer))
	if _, err := c.WriteToAddrPort(big, addrOf(peer)); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2*slotSize)
	for i, want := range []int{5, len(big)} {
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil || n != want {
			t.Fatalf("datagram %d: %d bytes (%v), want %d", i, n, err, want)
		}
	}
	c.Uncork()
}

// TestBatchFullSocketBufferSendsTheRest makes the kernel take three
// datagrams, then report a full socket buffer: the fourth goes through
// Go's poller and the rest in a second call, in order.
func TestBatchFullSocketBufferSendsTheRest(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	calls := 0
	sendBatchCall = func(fd int, v6 bool, b *batch, from, to int) (int, error) {
		calls++
		switch calls {
		case 1:
			return sendMmsg(fd, v6, b, from, from+3)
		case 2:
			return 0, syscall.EAGAIN
		}
		return sendMmsg(fd, v6, b, from, to)
	}
	t.Cleanup(func() { sendBatchCall = sendMmsg })
	c.Cork()
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprint("d", i)
		write(t, c, want[i], addrOf(peer))
	}
	c.Uncork()
	expect(t, peer, want...)
	if calls != 3 || c.SendErrors() != 0 {
		t.Fatalf("%d calls, %d errors; want 3 calls, 0 errors", calls, c.SendErrors())
	}
}

// TestBatchRefusedDatagramIsCounted: the kernel refuses a datagram to
// port 0 (EINVAL); the datagrams after it still go out.
func TestBatchRefusedDatagramIsCounted(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	c.Cork()
	write(t, c, "before", addrOf(peer))
	write(t, c, "refused", netip.MustParseAddrPort("127.0.0.1:0"))
	write(t, c, "after", addrOf(peer))
	c.Uncork()
	expect(t, peer, "before", "after")
	if n := c.SendErrors(); n != 1 {
		t.Fatalf("%d send errors, want 1", n)
	}
	c.Cork()
	if _, err := c.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Fatal("IPv6 destination on an IPv4 socket was queued")
	}
	c.Uncork()
}

func TestBatchPendingAtCloseIsCounted(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	c.Cork()
	write(t, c, "late", addrOf(peer))
	_ = c.Close()
	c.Uncork()
	silent(t, peer, "closed before the flush")
	if n := c.SendErrors(); n != 1 {
		t.Fatalf("%d send errors, want 1", n)
	}
}

// TestBatchConcurrentCorks: writers cork, write and uncork at the same
// time; every datagram arrives once, each writer's in its order.
func TestBatchConcurrentCorks(t *testing.T) {
	const writers, each = 8, 40
	peer := listen(t, "udp4", "127.0.0.1:0")
	_ = peer.SetReadBuffer(4 << 20)
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	to := addrOf(peer)

	got := make(chan [writers]int, 1)
	go func() {
		var next [writers]int
		buf := make([]byte, 64)
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range writers * each {
			n, _, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			var w, i int
			if _, err := fmt.Sscanf(string(buf[:n]), "w%d-%d", &w, &i); err != nil || w >= writers || i != next[w] {
				next[w] = -1 << 20 // out of order or garbled
				continue
			}
			next[w]++
		}
		got <- next
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				c.Cork()
				for k := 0; k < 1+w%5 && i < each; k++ {
					if _, err := c.WriteToAddrPort(fmt.Appendf(nil, "w%d-%d", w, i), to); err != nil {
						t.Error(err)
					}
					i++
				}
				c.Uncork()
			}
		})
	}
	wg.Wait()
	next := <-got
	for w, n := range next {
		if n != each {
			t.Errorf("writer %d: %d datagrams in order, want %d", w, n, each)
		}
	}
}

func TestBatchDoesNotAllocate(t *testing.T) {
	peer := listen(t, "udp4", "127.0.0.1:0")
	_ = peer.SetReadBuffer(1 << 20)
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	to := addrOf(peer)
	p := make([]byte, 1200)
	burst := func() {
		c.Cork()
		for range 10 {
			_, _ = c.WriteToAddrPort(p, to)
		}
		c.Uncork()
	}
	burst() // the first batch is made once
	if a := testing.AllocsPerRun(100, burst); a != 0 {
		t.Fatalf("%.1f allocations per burst, want 0", a)
	}
}

func BenchmarkBatch(b *testing.B) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	_ = peer.SetReadBuffer(1 << 20)
	to := addrOf(peer)
	p := make([]byte, 1200)
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	c := Wrap(u)
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		c.Cork()
		for range 10 {
			_, _ = c.WriteToAddrPort(p, to)
		}
		c.Uncork()
	}
}

// TestBatchSegmentsRunsToOneDestination: a frame's packets to one
// receiver leave as one UDP GSO message where the kernel has it; the
// receiver still gets each datagram by itself, whole and in order.
func TestBatchSegmentsRunsToOneDestination(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	_ = a.SetReadBuffer(1 << 20)
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	t.Logf("UDP GSO: %v", c.gso.Load())
	sizes := []int{1200, 1200, 1200, 1000, 1200, 1200, 500, 1200, 7, 7}
	c.Cork()
	for i, n := range sizes {
		p := make([]byte, n)
		for k := range p {
			p[k] = byte(i)
		}
		if _, err := c.WriteToAddrPort(p, addrOf(a)); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			write(t, c, "other", addrOf(b)) // breaks the run
		}
	}
	c.Uncork()
	buf := make([]byte, 2000)
	_ = a.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i, want := range sizes {
		n, _, err := a.ReadFromUDPAddrPort(buf)
		if err != nil || n != want || buf[0] != byte(i) || buf[n-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d (%v), want %d bytes of %d", i, n, buf[0], err, want, i)
		}
	}
	expect(t, b, "other")
	silent(t, a, "all sent")
	if n := c.SendErrors(); n != 0 {
		t.Fatalf("%d send errors", n)
	}
}

// TestBatchSlowSenderHoldsWritersBack: while the kernel is slow, batches
// pile up to maxReady and then writers wait; nothing is lost or
// reordered, and no batch overflows.
func TestBatchSlowSenderHoldsWritersBack(t *testing.T) {
	const writers, each = 4, 200
	peer := listen(t, "udp4", "127.0.0.1:0")
	_ = peer.SetReadBuffer(4 << 20)
	c := Wrap(listen(t, "udp4", "127.0.0.1:0"))
	sendBatchCall = func(fd int, v6 bool, b *batch, from, to int) (int, error) {
		time.Sleep(2 * time.Millisecond)
		return sendMmsg(fd, v6, b, from, to)
	}
	t.Cleanup(func() { sendBatchCall = sendMmsg })
	to := addrOf(peer)
	got := make(chan int, 1)
	go func() {
		var next [writers]int
		buf := make([]byte, 64)
		_ = peer.SetReadDeadline(time.Now().Add(20 * time.Second))
		ok := 0
		for range writers * each {
			n, _, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			var w, i int
			if _, err := fmt.Sscanf(string(buf[:n]), "w%d-%d", &w, &i); err == nil && w < writers && i == next[w] {
				next[w]++
				ok++
			}
		}
		got <- ok
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c.Cork() // held through all of this writer's datagrams: only full batches leave
			for i := range each {
				if _, err := c.WriteToAddrPort(fmt.Appendf(nil, "w%d-%d", w, i), to); err != nil {
					t.Error(err)
				}
			}
			c.Uncork()
		})
	}
	wg.Wait()
	if ok := <-got; ok != writers*each {
		t.Fatalf("%d datagrams arrived in order, want %d", ok, writers*each)
	}
}
