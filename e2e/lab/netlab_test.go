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
// that much TCP; its uplink capped at 1 Mbit/s carries about that much
// of the 3 Mbit/s of UDP the host sends; 30% loss on its uplink drops about
// 30% of its UDP, and bursts of 10 in 50 drop exactly that.
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
	uplinkCap(t, h, pc)
	if err := h.SetLoss(netlab.Up, 30); err != nil {
		t.Fatal(err)
	}
	u, err := h.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	const sent = 1000
	arrived := sendNumbered(t, u, pc, sent)
	t.Logf("uplink 30%% loss: %d of %d arrived", len(arrived), sent)
	if len(arrived) < 600 || len(arrived) > 800 {
		t.Errorf("uplink 30%% loss: %d of %d arrived, want about 700", len(arrived), sent)
	}

	// Bursts: 10 of every 50 packets, consecutive.
	if err := h.SetBurstLoss(netlab.Up, 10, 50); err != nil {
		t.Fatal(err)
	}
	u, err = h.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	arrived = sendNumbered(t, u, pc, sent)
	var runs []int
	for i := 0; i < sent; i++ {
		if !arrived[i] {
			if i == 0 || arrived[i-1] {
				runs = append(runs, 0)
			}
			runs[len(runs)-1]++
		}
	}
	t.Logf("uplink bursts of 10 in 50: %d of %d arrived, lost in runs %v", len(arrived), sent, runs)
	if len(arrived) != sent-sent/5 || len(runs) < sent/50 || len(runs) > sent/50+1 {
		t.Errorf("uplink bursts of 10 in 50: %d of %d arrived in %d runs, want %d in %d runs of 10", len(arrived), sent, len(runs), sent-sent/5, sent/50)
	}
	for i, n := range runs {
		if n != 10 && i != 0 && i != len(runs)-1 {
			t.Errorf("uplink bursts of 10 in 50: a run of %d lost", n)
		}
	}
}

// sendNumbered sends n datagrams numbered 0..n-1 on u, closes it, and
// returns the numbers pc received (reading while sending: the socket's
// buffer holds fewer than n).
func sendNumbered(t *testing.T, u net.Conn, pc net.PacketConn, n int) map[int]bool {
	t.Helper()
	got := make(chan map[int]bool)
	go func() {
		seen := make(map[int]bool)
		buf := make([]byte, 64)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(time.Second))
			m, _, err := pc.ReadFrom(buf)
			if err != nil {
				got <- seen
				return
			}
			var i int
			if _, err := fmt.Sscan(string(buf[:m]), &i); err == nil {
				seen[i] = true
			}
		}
	}()
	for i := range n {
		_, _ = fmt.Fprintf(u, "%d", i)
		time.Sleep(200 * time.Microsecond)
	}
	_ = u.Close()
	return <-got
}

// uplinkCap caps h's uplink at 1 Mbit/s, sends 3 Mbit/s of UDP to pc for
// 2 s and checks that about 1 Mbit/s arrives.
func uplinkCap(t *testing.T, h *netlab.Host, pc net.PacketConn) {
	t.Helper()
	const (
		capBPS  = 1_000_000
		sendBPS = 3_000_000
		size    = 1200
		span    = 2 * time.Second
	)
	if err := h.SetRate(netlab.Up, capBPS); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.SetRate(netlab.Up, 0); err != nil {
			t.Error(err)
		}
	}()
	c, err := h.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	got := make(chan int)
	go func() {
		n, buf := 0, make([]byte, 2048)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(time.Second))
			m, _, err := pc.ReadFrom(buf)
			if err != nil {
				got <- n
				return
			}
			n += m
		}
	}()
	// Ten packets a tick, ticks paced to sendBPS.
	tick := time.Duration(float64(10*size*8) / sendBPS * float64(time.Second))
	pkt := make([]byte, size)
	began, sent := time.Now(), 0
	for time.Since(began) < span {
		for range 10 {
			if _, err := c.Write(pkt); err == nil {
				sent += size
			}
		}
		time.Sleep(time.Until(began.Add(time.Duration(sent/(10*size)) * tick)))
	}
	took := time.Since(began)
	received := <-got
	// The queue holds queueLatency (200 ms) more at the end.
	gotBPS := float64(received) * 8 / (took.Seconds() + 0.2)
	t.Logf("uplink capped at 1 Mbit/s: the host sent %.0f bit/s for %v, %.0f bit/s arrived",
		float64(sent)*8/took.Seconds(), took.Round(time.Millisecond), gotBPS)
	if gotBPS < 0.7*capBPS || gotBPS > 1.3*capBPS {
		t.Errorf("uplink capped at 1 Mbit/s: %.0f bit/s arrived", gotBPS)
	}
}
