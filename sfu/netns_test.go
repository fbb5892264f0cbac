//go:build linux

package sfu_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
)

// The test host for TestStartsWhileIPv6AddressIsTentative: a veth pair
// between two network namespaces the test makes, so no address outside
// them is touched. The server's end gets an IPv6 address while its link
// is down; with the peer's end down too the link has no carrier, and the
// address stays tentative (duplicate address detection cannot run) for
// exactly as long as the test wants.
const (
	netnsChildEnv = "PARLEY_SFU_NETNS_PEER" // set in the child: the peer namespace's name
	serverIface   = "psrv0"
	peerIface     = "ppeer0"
	tentativeIPv6 = "fd00:db8:77::1"
	laterIPv4     = "10.77.0.1"
)

// TestStartsWhileIPv6AddressIsTentative: an SFU started the moment its
// interface comes up must start although the interface's IPv6 addresses
// cannot be bound yet, and new PeerConnections must get candidates for
// them once they can (and for an IPv4 address added after start), with
// a call connecting over them.
//
// The SFU's sockets are made by pion's goroutines on any OS thread, so
// the whole test process must live in the namespace: the test runs
// itself again under `ip netns exec`, and that child does the work.
func TestStartsWhileIPv6AddressIsTentative(t *testing.T) {
	if peer := os.Getenv(netnsChildEnv); peer != "" {
		tentativeChild(t, peer)
		return
	}
	id := fmt.Sprintf("parley-sfu-%d", os.Getpid())
	srvNS, peerNS := id+"-srv", id+"-peer"
	ipCmd(t, "netns", "add", srvNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", srvNS).Run() })
	ipCmd(t, "netns", "add", peerNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", peerNS).Run() })
	ipCmd(t, "link", "add", serverIface, "netns", srvNS, "type", "veth", "peer", "name", peerIface, "netns", peerNS)
	ipCmd(t, "-n", srvNS, "addr", "add", tentativeIPv6+"/64", "dev", serverIface)
	ipCmd(t, "-n", peerNS, "addr", "add", "fd00:db8:77::2/64", "dev", peerIface)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", srvNS, os.Args[0],
		"-test.run=^TestStartsWhileIPv6AddressIsTentative$", "-test.v", "-test.count=1", "-test.timeout=100s")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+peerNS)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in namespace %s failed (%v):\n%s", srvNS, err, out)
	}
	t.Logf("in namespace %s:\n%s", srvNS, out)
}

// ipCmd runs ip(8) and fails the test with its output; a machine where
// network namespaces are not permitted fails here, by design.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s\n(this test needs root and ip netns, from iproute2: apt-get install -y iproute2)",
			strings.Join(args, " "), err, out)
	}
	return string(out)
}

func tentativeChild(t *testing.T, peerNS string) {
	ipCmd(t, "link", "set", "lo", "up") // for the free-port probe
	cfg := sfu.DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = testkit.FreeTCPPort(t)
	cfg.Interfaces = []string{serverIface}
	// Only the test's own prefixes. The link-local address the link gets
	// when it comes up would get a socket on the UDP port too, and pion
	// gathers a host candidate for it that it never signals (RFC 8445
	// 5.1.1.1) but still checks from: the client learns it as a
	// peer-reflexive candidate, its pair has the same priority as those of
	// the signalled addresses, and the SFU (controlling) nominates
	// whichever succeeded first, so the call could end up on the
	// link-local address instead of the ones this test is about.
	cfg.CIDRs = []string{"fd00:db8:77::/64", "10.77.0.0/24"}

	// The link comes up the moment the SFU starts.
	ipCmd(t, "link", "set", serverIface, "up")
	if addrs := ipCmd(t, "-6", "addr", "show", "dev", serverIface); !strings.Contains(addrs, "tentative") {
		t.Fatalf("precondition: no tentative IPv6 address on %s, the test would prove nothing:\n%s", serverIface, addrs)
	}
	env := &testEnv{t: t, reg: prometheus.NewRegistry(), log: testLogger(), clientIface: serverIface}
	env.startSFU(cfg, nil) // fails the test if New fails

	// Now the link gets its carrier, DAD runs, and an IPv4 address is added.
	ipCmd(t, "-n", peerNS, "link", "set", peerIface, "up")
	ipCmd(t, "addr", "add", laterIPv4+"/24", "dev", serverIface)
	testkit.Eventually(t, 20*time.Second, "IPv6 addresses of "+serverIface+" leave DAD", func() bool {
		return !strings.Contains(ipCmd(t, "-6", "addr", "show", "dev", serverIface), "tentative")
	})

	// sfu.InterfaceRescan later, a new PeerConnection sees both addresses.
	// Polling the first client's candidates would be racy, so each try
	// is a fresh pair of clients, and the tries are bounded.
	deadline := time.Now().Add(20 * time.Second)
	for try := 1; ; try++ {
		room := fmt.Sprintf("r%d", try)
		ada := env.newClient(room, "PA_ada", sfu.JoinOptions{CanPublish: true})
		ada.Publish()
		bob := env.newClient(room, "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		testkit.Eventually(t, 15*time.Second, "bob receives media", func() bool {
			for _, rt := range bob.RemoteTracks() {
				if rt.Count >= 20 {
					return true
				}
			}
			return false
		})
		got := remoteCandidates(t, bob.Sub)
		want := []string{
			fmt.Sprintf("udp [%s]:%d", tentativeIPv6, cfg.UDPPort),
			fmt.Sprintf("udp %s:%d", laterIPv4, cfg.UDPPort),
			// ICE-TCP listens on the wildcard; its candidates come from
			// the same live interface list.
			fmt.Sprintf("tcp [%s]:%d", tentativeIPv6, cfg.TCPPort),
			fmt.Sprintf("tcp %s:%d", laterIPv4, cfg.TCPPort),
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			pair, err := selectedPair(bob.Sub)
			if err != nil {
				t.Fatal(err)
			}
			if pair.Remote.Port != uint16(cfg.UDPPort) || (pair.Remote.Address != tentativeIPv6 && pair.Remote.Address != laterIPv4) {
				t.Fatalf("call connected over %s, want the SFU side on an address that appeared after start "+
					"(SFU udp port %d; candidates bob saw from the SFU: %v)", pair, cfg.UDPPort, got)
			}
			t.Logf("try %d: candidates %v, call over %s", try, got, pair)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d tries, the SFU offers %v; missing %v", try, got, missing)
		}
		time.Sleep(sfu.InterfaceRescan / 2)
	}
}

// remoteCandidates lists "protocol host:port" of every candidate pc got
// from the SFU.
func remoteCandidates(t *testing.T, pc *webrtc.PeerConnection) []string {
	t.Helper()
	var out []string
	for _, s := range pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
			host := c.IP
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			out = append(out, fmt.Sprintf("%s %s:%d", c.Protocol, host, c.Port))
		}
	}
	slices.Sort(out)
	return out
}
