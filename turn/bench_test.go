package turn

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// BenchmarkRelayUDP measures the relay path of one allocation: each
// operation is one 1000-byte datagram client -> server -> echo peer ->
// server -> client (two relay traversals), with up to 32 in flight.
// Run: go test ./turn -run '^$' -bench RelayUDP -benchtime 20000x
func BenchmarkRelayUDP(b *testing.B) {
	for _, bw := range []int{0, 1 << 30} { // no cap; a cap too high to bite (limiter cost)
		b.Run(fmt.Sprintf("cap=%d", bw), func(b *testing.B) {
			cfg := testConfig()
			cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
			cfg.AllocationBandwidth = bw
			ts := startServer(b, cfg)
			echo := udpEcho(b)
			a, err := ts.alloc(b, "udp", testSecret, "bench")
			if err != nil {
				b.Fatal(err)
			}
			payload := bytes.Repeat([]byte{0xab}, 1000)
			// Warm up: permission and channel binding.
			buf := make([]byte, 2048)
			for range 20 {
				_, _ = a.relay.WriteTo(payload, echo)
				_ = a.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, _, _ = a.relay.ReadFrom(buf)
			}
			const window = 32
			tokens := make(chan struct{}, window)
			got := make(chan int, 1)
			var ru0 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			go func() {
				n := 0
				for n < b.N {
					_ = a.relay.SetReadDeadline(time.Now().Add(time.Second))
					if _, _, err := a.relay.ReadFrom(buf); err != nil {
						break // lost datagrams: stop counting
					}
					n++
					<-tokens
				}
				got <- n
			}()
			for range b.N {
				tokens <- struct{}{}
				if _, err := a.relay.WriteTo(payload, echo); err != nil {
					b.Fatal(err)
				}
			}
			n := <-got
			b.StopTimer()
			var ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(b.N-n)/float64(b.N)*100, "loss%")
			// Client, echo and server share this process: this is the
			// whole loop's CPU, an upper bound for the server's.
			b.ReportMetric(cpu.Seconds()/float64(b.N)*1e5, "cpu-s/100k-roundtrips")
		})
	}
}

// The load used to compare servers: 50 clients (-uclient.m to change),
// 2000 messages of 1000 bytes each, 1 ms apart (-m 50 -n 2000 -l 1000 -z 1).
var loadClientsFlag = flag.Int("uclient.m", 50, "turnutils_uclient clients (-m) for the Uclient benchmarks")

const (
	loadMessages = 2000
	loadSize     = 1000
	loadInterval = 1
)

// BenchmarkUclientParley drives this server with coturn's
// turnutils_uclient and reports server CPU per 100k relayed messages.
// The server runs in the benchmark process, so RUSAGE_SELF is its CPU.
// Run: go test ./turn -run '^$' -bench Uclient -benchtime 1x
func BenchmarkUclientParley(b *testing.B) {
	peer := startPeer(b)
	cfg := testConfig()
	cfg.UDPSocketsPerAddress = 0 // one per CPU
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.MaxAllocationsPerUser = 0
	ts := startServer(b, cfg)
	for _, tr := range []struct{ name, addr string }{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		b.Run(tr.name, func(b *testing.B) {
			for range b.N {
				var ru0, ru1 syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				cs0 := ctxSwitches(os.Getpid())
				start := time.Now()
				r := runUclient(b, uclientRun{server: tr.addr, transport: tr.name, peerPort: peer,
					clients: *loadClientsFlag, msgs: loadMessages, size: loadSize, intervalMs: loadInterval})
				wall := time.Since(start)
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				reportLoad(b, r, cpu, wall, ctxSwitches(os.Getpid())-cs0, os.Getpid())
			}
		})
	}
}

// BenchmarkUclientCoturn runs the same load against coturn's turnserver
// (loopback only, REST secret, loopback peers allowed) and reports its CPU
// from /proc.
func BenchmarkUclientCoturn(b *testing.B) {
	bin := needTool(b, "turnserver")
	peer := startPeer(b)
	port := testkit.FreeUDPPort(b)
	dir := b.TempDir()
	turnserver := testkit.StartProcess(b, context.Background(), bin, "-n", "--no-cli", "--no-tls", "--no-dtls",
		"--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
		"--min-port", "30000", "--max-port", "39999", "--use-auth-secret", "--static-auth-secret", testSecret,
		"--realm", testRealm, "--allow-loopback-peers", "--no-multicast-peers", "--log-file", "stdout",
		"--pidfile", filepath.Join(dir, "turn.pid"), "--userdb", filepath.Join(dir, "turn.db"), "--simple-log")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	testkit.Eventually(b, 10*time.Second, "turnserver listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()

		return true
	})
	for _, tr := range []string{"udp", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			for range b.N {
				cpu0 := procCPU(b, turnserver.Pid())
				cs0 := ctxSwitches(turnserver.Pid())
				start := time.Now()
				r := runUclient(b, uclientRun{server: addr, transport: tr, peerPort: peer,
					clients: *loadClientsFlag, msgs: loadMessages, size: loadSize, intervalMs: loadInterval})
				wall := time.Since(start)
				reportLoad(b, r, procCPU(b, turnserver.Pid())-cpu0, wall, ctxSwitches(turnserver.Pid())-cs0, turnserver.Pid())
			}
		})
	}
}

func reportLoad(b *testing.B, r uclientResult, cpu, wall time.Duration, switches int, pid int) {
	b.Helper()
	if r.recv == 0 {
		b.Fatalf("nothing relayed\n%s", tail(r.out))
	}
	lossPct := 0.0
	if r.sent > 0 {
		lossPct = float64(r.sent-r.recv) / float64(r.sent) * 100
	}
	b.ReportMetric(float64(r.recv), "msgs")
	b.ReportMetric(lossPct, "loss%")
	// Each echoed message crosses the relay twice.
	b.ReportMetric(cpu.Seconds()/float64(2*r.recv)*1e5, "server-cpu-s/100k-relayed")
	b.ReportMetric(wall.Seconds(), "wall-s")
	// Thread wake-ups are what a server's CPU goes to once nothing is
	// allocated per packet: every switch costs a trip through the kernel.
	b.ReportMetric(float64(switches)/float64(2*r.recv)*1e5, "ctx-switches/100k-relayed")
	b.ReportMetric(float64(procStatusKiB(pid, "VmHWM"))/1024, "peak-rss-MiB")
}

// procCPU reads a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 Hz on Linux).
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)

	return time.Duration(ut+st) * (time.Second / 100)
}

// ctxSwitches sums the context switches of every thread of a process.
func ctxSwitches(pid int) int {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	total := 0
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "voluntary_ctxt_switches:") || strings.HasPrefix(line, "nonvoluntary_ctxt_switches:") {
				v, _ := strconv.Atoi(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]))
				total += v
			}
		}
	}

	return total
}

// procStatusKiB reads a kB field (VmHWM, VmRSS) of /proc/<pid>/status.
// For this test process it includes the benchmark itself, a few MiB.
func procStatusKiB(pid int, field string) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))

			return kb
		}
	}

	return 0
}
