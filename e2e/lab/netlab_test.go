package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/netlab"
)

// TestRateCapAndLoss: a host's downlink capped at 2 Mbit/s carries about
// that much TCP, and 30% loss on its uplink drops about 30% of its UDP.
// The lab's own check, before any scenario relies on it.
func TestLabRateCapAndLoss(t *testing.T) {
	lab := netlab.New(t)
	h := lab.AddHost("ada")

	ln, err := net.Listen("tcp", netlab.ServerAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		buf := make([]byte, 32<<10)
		_ = c.SetWriteDeadline(time.Now().Add(6 * time.Second))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	if err := h.SetRate(netlab.Down, 2_000_000); err != nil {
		t.Fatal(err)
	}
	c, err := h.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Skip the first second (TCP's start and tbf's burst), measure 3 s.
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, c)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	_ = c.Close()
	<-done
	rate := float64(n) * 8 / 3
	t.Logf("downlink capped at 2 Mbit/s: %.0f bit/s", rate)
	if rate < 1_500_000 || rate > 2_300_000 {
		t.Errorf("downlink capped at 2 Mbit/s carried %.0f bit/s", rate)
	}
	if err := h.SetRate(netlab.Down, 0); err != nil {
		t.Fatal(err)
	}

	pc, err := net.ListenPacket("udp", netlab.ServerAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	if err := h.SetLoss(netlab.Up, 30); err != nil {
		t.Fatal(err)
	}
	u, err := h.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	const sent = 1000
	// Read while sending: the socket's buffer holds fewer than sent.
	count := make(chan int)
	go func() {
		got := 0
		buf := make([]byte, 64)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				count <- got
				return
			}
			got++
		}
	}()
	for i := range sent {
		_, _ = fmt.Fprintf(u, "%d", i)
		time.Sleep(200 * time.Microsecond)
	}
	_ = u.Close()
	got := <-count
	t.Logf("uplink 30%% loss: %d of %d arrived", got, sent)
	if got < 600 || got > 800 {
		t.Errorf("uplink 30%% loss: %d of %d arrived, want about 700", got, sent)
	}
}
