package sfu_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// BenchmarkLoopbackCall forwards real SRTP over real loopback UDP: one
// publisher, N subscribers, all pion, all in this process. It reports
// forwarded packets per wall-clock second and the process's CPU time per
// forwarded packet. That CPU time includes the clients (the publisher's
// SRTP encryption and every subscriber's decryption and reads), so the
// SFU's own share is lower; it is an upper bound.
func BenchmarkLoopbackCall(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) { benchLoopback(b, subs) })
	}
}

func benchLoopback(b *testing.B, nsubs int) {
	cfg := sfu.DefaultConfig()
	cfg.UDPPort = 0 // any free port; one socket on lo
	cfg.TCPPort = 0
	env := newLoopbackEnv(b, cfg)
	pub := env.newClientWith("r", "PA_pub", sfu.JoinOptions{CanPublish: true}, sfutest.Options{Manual: true})
	pub.Publish()
	var subs []*sfutest.Client
	for i := range nsubs {
		subs = append(subs, env.newClientWith("r", fmt.Sprintf("PA_sub%d", i), sfu.JoinOptions{CanSubscribe: true},
			sfutest.Options{CountOnly: true}))
	}
	payload := make([]byte, 1100)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: payload}
	seq := uint16(0)
	send := func(key bool) {
		payload[0], payload[1] = 0x10, 0x01
		if key {
			payload[1] = 0
		}
		payload[2], payload[3] = byte(seq>>8), byte(seq)
		pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*3000
		seq++
		if err := pub.Track.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
	}
	minRecv := func() int {
		m := -1
		for _, s := range subs {
			if n := s.TotalReceived(); m < 0 || n < m {
				m = n
			}
		}
		return m
	}
	// Warm up: connect and get every subscriber past its first key frame.
	deadline := time.Now().Add(10 * time.Second)
	for minRecv() < 10 {
		if time.Now().After(deadline) {
			b.Fatal("subscribers never received media")
		}
		send(true)
		time.Sleep(5 * time.Millisecond)
	}
	base := make([]int, len(subs))
	for i, s := range subs {
		base[i] = s.TotalReceived()
	}
	received := func() (total, least int) {
		least = -1
		for i, s := range subs {
			n := s.TotalReceived() - base[i]
			total += n
			if least < 0 || n < least {
				least = n
			}
		}
		return total, least
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		send(false)
		// Keep at most 64 packets in flight per subscriber so that socket
		// buffers and the SFU's queues never drop: this measures cost, not
		// loss.
		for spin := 0; ; spin++ {
			_, least := received()
			if i+1-least <= 64 {
				break
			}
			if spin > 200000 {
				b.Fatalf("subscribers stalled at %d of %d", least, i+1)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	for spin := 0; ; spin++ {
		if _, least := received(); least >= b.N*99/100 || spin > 5000 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	elapsed := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	total, _ := received()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	if total == 0 {
		b.Fatal("nothing forwarded")
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "fwd/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-us/fwd")
	b.ReportMetric(float64(total)/float64(b.N*nsubs)*100, "%delivered")
}
