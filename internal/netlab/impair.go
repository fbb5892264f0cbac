//go:build linux

package netlab

import (
	"fmt"
	"strings"
)

// Direction is which way an impairment acts, seen from the host.
type Direction int

const (
	// Down is traffic to the host (the server's sends to a subscriber).
	Down Direction = iota
	// Up is traffic from the host (a publisher's sends).
	Up
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// queueLatency is how long a capped link may queue before it drops, as a
// home router's buffer does.
const queueLatency = "200ms"

// SetRate caps the host's link in one direction at bps bit/s with a
// token bucket (tc tbf: packets beyond the rate wait in a queue of
// queueLatency, then drop). 0 removes the cap. Safe to call mid-run.
func (h *Host) SetRate(dir Direction, bps int) error {
	dev, ns := h.peer, ""
	if dir == Up {
		dev, ns = "eth0", h.Netns
	}
	tc := func(args ...string) (string, error) {
		if ns != "" {
			return run("ip", append([]string{"netns", "exec", ns, "tc"}, args...)...)
		}
		return run("tc", args...)
	}
	if bps <= 0 {
		out, err := tc("qdisc", "del", "dev", dev, "root")
		if err != nil && !strings.Contains(out, "No such file") && !strings.Contains(out, "Cannot delete qdisc with handle of zero") {
			return fmt.Errorf("netlab: %s %s: remove rate cap: %w: %s", h.Name, dir, err, out)
		}
		return nil
	}
	// The bucket holds 20 ms at the rate and at least a few full-size
	// packets, or tbf could never send one.
	burst := max(bps/8/50, 4*1600)
	out, err := tc("qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", bps), "burst", fmt.Sprint(burst), "latency", queueLatency)
	if err != nil {
		return fmt.Errorf("netlab: %s %s: rate cap %d bit/s: %w: %s", h.Name, dir, bps, err, out)
	}
	return nil
}

// SetLoss drops pct percent of the packets (0..100, chosen at random by
// nftables' numgen) on the host's link in one direction. 0 removes it.
func (h *Host) SetLoss(dir Direction, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("netlab: loss %d%%: want 0..100", pct)
	}
	chain, match := "down", "iifname"
	if dir == Up {
		chain, match = "up", "oifname"
	}
	nft := func(args ...string) error {
		if out, err := run("ip", append([]string{"netns", "exec", h.Netns, "nft"}, args...)...); err != nil {
			return fmt.Errorf("netlab: %s %s: loss %d%%: nft %s: %w: %s", h.Name, dir, pct, strings.Join(args, " "), err, out)
		}
		return nil
	}
	flush := []string{"flush", "chain", "inet", "netlab", chain}
	if pct == 0 {
		return nft(flush...)
	}
	rule := []string{"add", "rule", "inet", "netlab", chain, match, "eth0", "numgen", "random", "mod", "100", "<", fmt.Sprint(pct), "drop"}
	if pct == 100 {
		// nft refuses "numgen random mod 100 < 100" (the value must be
		// below the modulus): dropping everything needs no random draw.
		rule = []string{"add", "rule", "inet", "netlab", chain, match, "eth0", "drop"}
	}
	// One nft run for both commands (";" separates them, in one
	// transaction): a scenario that toggles loss on a timer (bursts) pays
	// for one process, not two, and no packet passes between the flush
	// and the new rule.
	return nft(append(append(flush, ";"), rule...)...)
}
