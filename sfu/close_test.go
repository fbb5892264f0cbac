package sfu

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestCloseReleasesListeners is the built-but-never-run case: a caller
// whose later start-up step fails must get the ports back and keep no
// goroutine of the SFU's.
func TestCloseReleasesListeners(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = testkit.FreeTCPPort(t)
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.CIDRs = []string{"127.0.0.0/8"}
	leaks := testkit.GoroutineBaseline(t, 5*time.Second)

	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", cfg.UDPPort)); err == nil {
		c.Close()
		t.Fatalf("udp port %d was free after New; the test would prove nothing", cfg.UDPPort)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Join("r", "PA_late", JoinOptions{CanSubscribe: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v, want ErrClosed", err)
	}
	c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", cfg.UDPPort))
	if err != nil {
		t.Fatalf("udp port not released by Close: %v", err)
	}
	c.Close()
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", cfg.TCPPort))
	if err != nil {
		t.Fatalf("ICE-TCP port not released by Close: %v", err)
	}
	l.Close()
	leaks()
}
