package turn

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// coturn's turnutils_uclient and turnutils_peer are a TURN client and
// echo peer written by people who did not write our server, so they check
// interoperability rather than our reading of the RFCs.

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install -y coturn`", name)
	}

	return p
}

// startPeer runs turnutils_peer (a UDP echo) on loopback.
func startPeer(t testing.TB) int {
	t.Helper()
	bin := needTool(t, "turnutils_peer")
	port := testkit.FreeUDPPort(t)
	peer := testkit.StartProcess(t, context.Background(), bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	// Wait until it echoes.
	c, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range 50 {
		_, _ = c.Write([]byte("ping"))
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
			return port
		}
		time.Sleep(50 * time.Millisecond) // ICMP "port unreachable" fails the read at once
	}
	t.Fatalf("turnutils_peer did not start: %s", peer.Output())

	return 0
}

var (
	reLost = regexp.MustCompile(`Total lost packets (\d+) \(([\d.]+)%\)`)
	reRecv = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	reSent = regexp.MustCompile(`tot_send_msgs=(\d+)`)
)

type uclientResult struct {
	sent, recv, lost int
	out              string
}

// uclientRun is one turnutils_uclient invocation.
type uclientRun struct {
	server, transport string // transport: "udp", "tcp" or "tls"
	peerPort          int
	clients, msgs     int
	size, intervalMs  int
	// rtcp drops uclient's -c: each client then allocates an RTP relay
	// with EVEN-PORT (reserve bit set) and an RTCP relay with the
	// RESERVATION-TOKEN it got, coturn's default flow.
	rtcp bool
	// send adds -s: Send indications instead of channels.
	send bool
}

// runUclient relays clients*msgs messages through server to the peer.
func runUclient(t testing.TB, run uclientRun) uclientResult {
	t.Helper()
	bin := needTool(t, "turnutils_uclient")
	host, port, _ := net.SplitHostPort(run.server)
	args := []string{
		"-W", testSecret, "-u", "uclient", "-e", "127.0.0.1", "-r", strconv.Itoa(run.peerPort),
		"-p", port, "-m", strconv.Itoa(run.clients), "-n", strconv.Itoa(run.msgs), "-l", strconv.Itoa(run.size),
		"-z", strconv.Itoa(run.intervalMs),
	}
	if !run.rtcp {
		args = append(args, "-c")
	}
	if run.send {
		args = append(args, "-s")
	}
	switch run.transport {
	case "tcp":
		args = append(args, "-t")
	case "tls":
		args = append(args, "-t", "-S")
	}
	args = append(args, host)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// uclient exits non-zero on some failures; the output decides.
	out, _ := testkit.StartProcess(t, ctx, bin, args...).Wait()
	res := uclientResult{out: out, lost: -1}
	if m := reLost.FindStringSubmatch(res.out); m != nil {
		res.lost, _ = strconv.Atoi(m[1])
	}
	if m := reRecv.FindAllStringSubmatch(res.out, -1); m != nil {
		res.recv, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := reSent.FindAllStringSubmatch(res.out, -1); m != nil {
		res.sent, _ = strconv.Atoi(m[len(m)-1][1])
	}

	return res
}

func TestTurnutilsUclient(t *testing.T) {
	peer := startPeer(t)
	cfg := testConfig()
	cfg.UDPSocketsPerAddress = 2
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)

	for _, tr := range []struct{ name, addr string }{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		t.Run(tr.name, func(t *testing.T) {
			const clients, msgs = 4, 50
			r := runUclient(t, uclientRun{server: tr.addr, transport: tr.name, peerPort: peer, clients: clients, msgs: msgs, size: 200, intervalMs: 5})
			t.Logf("turnutils_uclient: sent %d, received %d, lost %d", r.sent, r.recv, r.lost)
			if r.lost != 0 || r.recv != clients*msgs || r.sent != clients*msgs {
				t.Fatalf("sent %d recv %d lost %d, want %d each and 0 lost\n%s", r.sent, r.recv, r.lost, clients*msgs, tail(r.out))
			}
		})
	}
}

func TestTurnutilsUclientRefusedWithoutAllowList(t *testing.T) {
	peer := startPeer(t)
	ts := startServer(t, testConfig()) // loopback peers refused
	for _, tr := range []struct{ name, addr string }{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		t.Run(tr.name, func(t *testing.T) {
			before := counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose))
			r := runUclient(t, uclientRun{server: tr.addr, transport: tr.name, peerPort: peer, clients: 1, msgs: 10, size: 100, intervalMs: 5})
			// uclient binds a channel first: refused with 403 as by coturn
			// (forbidden.go), never with 401, which would blame the credentials.
			if !strings.Contains(r.out, "error 403") || strings.Contains(r.out, "error 401") {
				t.Fatalf("uclient did not report a 403 refusal\n%s", tail(r.out))
			}
			if r.recv != 0 {
				t.Fatalf("%d messages relayed to a refused peer\n%s", r.recv, tail(r.out))
			}
			if counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose)) == before {
				t.Fatalf("no denial counted\n%s", tail(r.out))
			}
		})
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return fmt.Sprintf("...%s", s[len(s)-3000:])
	}

	return s
}
