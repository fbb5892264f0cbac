package relay

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestRawSockReadDeadline: pion never sets deadlines on these sockets,
// but a net.PacketConn must honour them: a deadline ends a blocked read,
// and moving it ends a read already waiting.
func TestRawSockReadDeadline(t *testing.T) {
	loops := startLoops(t, 1)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dropped countDrops
	s, err := loops.Socket(pc, 0, &dropped)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Attach(nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := s.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = s.SetReadDeadline(time.Time{})
	got := make(chan error, 1)
	go func() { _, _, err := s.ReadFrom(buf); got <- err }()
	time.Sleep(20 * time.Millisecond)
	_ = s.SetReadDeadline(time.Now())
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("moved deadline: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a waiting read ignored the new deadline")
	}
	// And data still arrives through the loop.
	c, err := net.Dial("udp4", s.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, from, err := s.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != c.LocalAddr().String() {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
}

// startLoops runs n event loops until the test ends.
func startLoops(t *testing.T, n int) *Loops {
	t.Helper()
	loops, err := NewLoops(n)
	if err != nil {
		t.Fatal(err)
	}
	loops.Start()
	t.Cleanup(loops.Close)

	return loops
}

// countDrops is a Counter for tests.
type countDrops struct{ n atomic.Int64 }

func (c *countDrops) Inc() { c.n.Add(1) }
