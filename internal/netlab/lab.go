//go:build linux

// Package netlab is the network lab of the tests (Linux only): hosts in
// network namespaces of their own, joined by veth pairs to one bridge in the
// test's namespace (where the server under test runs), with impairments
// per host and direction that a test changes while it runs: rate caps
// (tc tbf) and random loss (nftables). It also runs a headless Chromium
// inside a host and reaches its DevTools endpoint from the test.
//
// Every namespace, link and rule the lab makes is removed in t.Cleanup.
// The lab needs root, iproute2 (ip, tc) and nftables, and refuses to run
// in a namespace that has any interface besides lo: the bridge and its
// links belong in a namespace the test owns (`unshare -n`), never on the
// machine's own network. Missing any of these is a test failure with the
// reason, never a skip.
package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Subnet is the lab's network: the bridge (the server's address) is .1,
// hosts get .10 upwards.
const (
	subnetPrefix = "10.77.0."
	ServerAddr   = subnetPrefix + "1"
	maxHosts     = 200
)

// labSeq numbers the labs of one test process, for unique names.
var labSeq atomic.Uint32 //nolint:gochecknoglobals // process-wide counter for unique names

// Lab is one bridge and the hosts attached to it.
type Lab struct {
	t      testing.TB
	id     string // unique per lab: pid and sequence
	bridge string

	mu    sync.Mutex
	hosts []*Host
}

// Host is one machine of the lab: a network namespace with one
// interface (eth0) on the lab's subnet.
type Host struct {
	lab  *Lab
	Name string
	// Netns is the namespace's name (ip netns), Addr its address.
	Netns string
	Addr  netip.Addr
	// peer is the host's veth end on the bridge, in the test's
	// namespace: its egress is the host's downlink, its ingress the
	// host's uplink.
	peer string
	// ifb is the intermediate device an uplink cap queues in (see
	// SetRate), in the test's namespace.
	ifb string
}

// New checks the machine can run the lab and builds the bridge. It fails
// the test (t.Fatal) with the reason when it cannot.
func New(t testing.TB) *Lab {
	t.Helper()
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	n := labSeq.Add(1)
	l := &Lab{t: t, id: fmt.Sprintf("%d-%d", os.Getpid(), n), bridge: fmt.Sprintf("labbr%d", n)}
	t.Cleanup(l.close)
	l.must("ip", "link", "add", l.bridge, "type", "bridge")
	l.must("ip", "addr", "add", ServerAddr+"/24", "dev", l.bridge)
	l.must("ip", "link", "set", l.bridge, "up")
	l.must("ip", "link", "set", "lo", "up")
	// The server's HTTP listener is on loopback; hosts reach it through
	// a DNAT to 127.0.0.1 (see ExposeLoopbackPort), which the kernel
	// routes only with route_localnet.
	l.must("sysctl", "-q", "-w", "net.ipv4.conf."+l.bridge+".route_localnet=1")
	l.must("nft", "add", "table", "ip", l.table())
	l.must("nft", "add", "chain", "ip", l.table(), "prerouting",
		"{ type nat hook prerouting priority -100 ; }")
	return l
}

// Check reports why this process cannot run the lab, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("netlab: needs root (network namespaces, tc, nftables); run the lab tests as root inside `unshare -n`")
	}
	for _, tool := range []string{"ip", "tc", "nft", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netlab: %s is missing (apt-get install -y iproute2 nftables procps): %w", tool, err)
		}
	}
	// Asked over netlink: /sys/class/net shows the namespace sysfs was
	// mounted in, not necessarily this one.
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("netlab: list interfaces: %w", err)
	}
	for _, e := range ifs {
		if name := e.Name; name != "lo" && !strings.HasPrefix(name, "labbr") && !strings.HasPrefix(name, "labv") && !strings.HasPrefix(name, "labi") {
			return fmt.Errorf("netlab: this network namespace has interface %q: run the lab inside `unshare -n` "+
				"so its bridge never touches the machine's network", name)
		}
	}
	return nil
}

func (l *Lab) table() string { return "netlab" + strings.ReplaceAll(l.id, "-", "_") }

// AddHost creates a host named name (for logs and plots) in a namespace
// of its own, linked to the bridge.
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	l.mu.Lock()
	i := len(l.hosts)
	l.mu.Unlock()
	if i >= maxHosts {
		l.t.Fatalf("netlab: at most %d hosts", maxHosts)
	}
	h := &Host{
		lab:   l,
		Name:  name,
		Netns: fmt.Sprintf("parleylab-%s-%d", l.id, i),
		Addr:  netip.MustParseAddr(fmt.Sprintf("%s%d", subnetPrefix, 10+i)),
		peer:  fmt.Sprintf("labv%s-%d", strings.Split(l.id, "-")[1], i),
		ifb:   fmt.Sprintf("labi%s-%d", strings.Split(l.id, "-")[1], i),
	}
	if len(h.peer) > 15 || len(h.ifb) > 15 {
		l.t.Fatalf("netlab: interface name %q or %q too long", h.peer, h.ifb)
	}
	l.must("ip", "netns", "add", h.Netns)
	l.mu.Lock()
	l.hosts = append(l.hosts, h) // from here on, close removes it
	l.mu.Unlock()
	l.must("ip", "link", "add", h.peer, "type", "veth", "peer", "name", "eth0", "netns", h.Netns)
	l.must("ip", "link", "set", h.peer, "master", l.bridge)
	l.must("ip", "link", "set", h.peer, "up")
	l.must("ip", "link", "add", h.ifb, "type", "ifb")
	l.must("ip", "link", "set", h.ifb, "up")
	h.must("ip", "link", "set", "lo", "up")
	h.must("ip", "addr", "add", h.Addr.String()+"/24", "dev", "eth0")
	h.must("ip", "link", "set", "eth0", "up")
	h.must("nft", "add", "table", "inet", "netlab")
	for _, c := range []struct{ name, hook string }{{"down", "input"}, {"up", "output"}} {
		h.must("nft", "add", "chain", "inet", "netlab", c.name,
			fmt.Sprintf("{ type filter hook %s priority 0 ; }", c.hook))
	}
	return h
}

// ExposeLoopbackPort makes a TCP port the server listens on at 127.0.0.1
// (in the test's namespace) reachable from the hosts at ServerAddr.
func (l *Lab) ExposeLoopbackPort(port int) {
	l.t.Helper()
	l.must("nft", "add", "rule", "ip", l.table(), "prerouting", "iifname", l.bridge,
		"ip", "daddr", ServerAddr, "tcp", "dport", fmt.Sprint(port), "dnat", "to", fmt.Sprintf("127.0.0.1:%d", port))
}

// Bridge is the name of the bridge interface, the server's side of the
// lab (for the server's ICE interface list).
func (l *Lab) Bridge() string { return l.bridge }

// close removes the hosts (their namespaces take the veth pairs and
// rules with them), the bridge and the NAT table. It reports every
// failure: a leftover namespace would outlive the test.
func (l *Lab) close() {
	l.mu.Lock()
	hosts := l.hosts
	l.hosts = nil
	l.mu.Unlock()
	for _, h := range hosts {
		if out, err := run("ip", "netns", "del", h.Netns); err != nil {
			l.t.Errorf("netlab: remove namespace %s: %v: %s", h.Netns, err, out)
		}
		if out, err := run("ip", "link", "del", h.ifb); err != nil && !strings.Contains(out, "Cannot find device") {
			l.t.Errorf("netlab: remove %s: %v: %s", h.ifb, err, out)
		}
	}
	_, _ = run("nft", "delete", "table", "ip", l.table())
	if out, err := run("ip", "link", "del", l.bridge); err != nil && !strings.Contains(out, "Cannot find device") {
		l.t.Errorf("netlab: remove bridge %s: %v: %s", l.bridge, err, out)
	}
}

// must runs a command in the test's namespace and fails the test if it
// fails.
func (l *Lab) must(name string, args ...string) {
	l.t.Helper()
	if out, err := run(name, args...); err != nil {
		l.t.Fatalf("netlab: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// must runs a command inside the host's namespace.
func (h *Host) must(name string, args ...string) {
	h.lab.t.Helper()
	h.lab.must("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Command is a command to run inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...) //nolint:gosec // test tool
}

// commandTimeout bounds every ip/tc/nft call: they are quick, a hang is
// a broken machine.
const commandTimeout = 20 * time.Second

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput() //nolint:gosec // fixed tools, arguments built by the lab
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v", ctx.Err(), commandTimeout)
	}
	return strings.TrimSpace(string(out)), err
}
