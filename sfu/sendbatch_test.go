package sfu

import (
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/rawudp"
)

// A batched datagram the kernel refuses (port 0) was already reported
// sent to pion; the operator sees it in parley_sfu_udp_send_errors_total,
// summed over the mux's sockets.
func TestUDPSendErrorsMetric(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched sends are Linux-only; elsewhere nothing is batched, so nothing is counted here")
	}
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sendErrorsMetric(t, reg); got != 0 {
		t.Fatalf("before any socket: %v", got)
	}
	var set corkSet
	for range 2 {
		uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c := rawudp.Wrap(uc)
		t.Cleanup(func() { _ = c.Close() })
		set.add(c)
	}
	m.udpSockets.Store(&set)
	conns := set.cork()
	for _, c := range conns {
		if _, err := c.WriteToAddrPort([]byte("refused"), netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatalf("a corked write reports the datagram queued: %v", err)
		}
	}
	uncork(conns)
	if got := sendErrorsMetric(t, reg); got != 2 {
		t.Fatalf("parley_sfu_udp_send_errors_total = %v, want 2 (one refused datagram per socket)", got)
	}
}

func sendErrorsMetric(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "parley_sfu_udp_send_errors_total" {
			var sum float64
			for _, mm := range mf.GetMetric() {
				sum += mm.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatal("parley_sfu_udp_send_errors_total not registered")
	return 0
}
