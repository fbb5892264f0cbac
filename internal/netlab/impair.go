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
//
// Both caps queue where a router's would: past the host's own
// interface. The downlink's is on the bridge's end of the host's link;
// the uplink's is on an IFB device that every packet arriving on that
// end is redirected through, so the host's eth0 never holds a queue
// (until 2026-12-06 the uplink's tbf was on it). A queued packet still
// counts against the sending socket's buffer either way (veth keeps the
// packet's owner), which a browser's 512 KiB buffer does not notice at
// these rates.
func (h *Host) SetRate(dir Direction, bps int) error {
	dev := h.peer
	if dir == Up {
		dev = h.ifb
	}
	if bps <= 0 {
		if dir == Up {
			// Without the redirect the ifb's queue sees nothing.
			out, err := run("tc", "qdisc", "del", "dev", h.peer, "handle", "ffff:", "ingress")
			if err != nil && !noQdisc(out) {
				return fmt.Errorf("netlab: %s up: remove the redirect: %w: %s", h.Name, err, out)
			}
		}
		out, err := run("tc", "qdisc", "del", "dev", dev, "root")
		if err != nil && !noQdisc(out) {
			return fmt.Errorf("netlab: %s %s: remove rate cap: %w: %s", h.Name, dir, err, out)
		}
		return nil
	}
	// The bucket holds 20 ms at the rate and at least a few full-size
	// packets, or tbf could never send one.
	burst := max(bps/8/50, 4*1600)
	out, err := run("tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", bps), "burst", fmt.Sprint(burst), "latency", queueLatency)
	if err != nil {
		return fmt.Errorf("netlab: %s %s: rate cap %d bit/s: %w: %s", h.Name, dir, bps, err, out)
	}
	if dir == Up {
		return h.redirectUplink()
	}
	return nil
}

// redirectUplink sends every packet arriving on the bridge's end of the
// host's link through its ifb (once: a second call finds it in place).
func (h *Host) redirectUplink() error {
	if out, err := run("tc", "qdisc", "add", "dev", h.peer, "handle", "ffff:", "ingress"); err != nil {
		if strings.Contains(out, "File exists") || strings.Contains(out, "Exclusivity flag on") {
			return nil // the redirect is in place from an earlier cap
		}
		return fmt.Errorf("netlab: %s up: ingress qdisc: %w: %s", h.Name, err, out)
	}
	// u32 matching every packet: this kernel has no matchall classifier.
	out, err := run("tc", "filter", "add", "dev", h.peer, "parent", "ffff:", "protocol", "all",
		"u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", h.ifb)
	if err != nil {
		return fmt.Errorf("netlab: %s up: redirect to %s: %w: %s", h.Name, h.ifb, err, out)
	}
	return nil
}

// noQdisc reports whether tc's output says there was nothing to delete.
func noQdisc(out string) bool {
	return strings.Contains(out, "No such file") || strings.Contains(out, "Cannot delete qdisc with handle of zero") ||
		strings.Contains(out, "Cannot find specified qdisc")
}

// SetLoss drops pct percent of the packets (0..100, chosen at random by
// nftables' numgen) on the host's link in one direction. 0 removes it.
func (h *Host) SetLoss(dir Direction, pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("netlab: loss %d%%: want 0..100", pct)
	}
	what := fmt.Sprintf("loss %d%%", pct)
	switch pct {
	case 0:
		return h.replaceDropRule(dir, what)
	case 100:
		// nft refuses "numgen random mod 100 < 100" (the value must be
		// below the modulus): dropping everything needs no random draw.
		return h.replaceDropRule(dir, what, "drop")
	}
	return h.replaceDropRule(dir, what, "numgen", "random", "mod", "100", "<", fmt.Sprint(pct), "drop")
}

// SetBurstLoss drops burst consecutive UDP packets of every every on the
// host's link in one direction (for example 5 of 25: with one talker's
// audio, 50 packets a second, about 100 ms of every 500 ms). The kernel counts the packets
// (nftables' numgen inc), so the bursts keep their length however loaded
// the machine is; a timer toggling SetLoss from a test cannot promise
// that, since each toggle starts a process. SetLoss(dir, 0) removes it.
func (h *Host) SetBurstLoss(dir Direction, burst, every int) error {
	if burst <= 0 || every <= burst {
		return fmt.Errorf("netlab: burst loss %d of %d packets: want 0 < burst < every", burst, every)
	}
	// Only UDP reaches the counter, so the WebSocket's TCP neither
	// counts nor drops.
	return h.replaceDropRule(dir, fmt.Sprintf("burst loss %d of %d", burst, every),
		"meta", "l4proto", "udp", "numgen", "inc", "mod", fmt.Sprint(every), "<", fmt.Sprint(burst), "drop")
}

// replaceDropRule empties the host's drop chain for dir and, given a
// rule, adds it, in one nft run (";" separates the commands, in one
// transaction): a scenario that toggles loss on a timer pays for one
// process, not two, and no packet passes between the flush and the new
// rule.
func (h *Host) replaceDropRule(dir Direction, what string, rule ...string) error {
	chain, match := "down", "iifname"
	if dir == Up {
		chain, match = "up", "oifname"
	}
	args := []string{"flush", "chain", "inet", "netlab", chain}
	if len(rule) > 0 {
		args = append(append(args, ";", "add", "rule", "inet", "netlab", chain, match, "eth0"), rule...)
	}
	if out, err := run("ip", append([]string{"netns", "exec", h.Netns, "nft"}, args...)...); err != nil {
		return fmt.Errorf("netlab: %s %s: %s: nft %s: %w: %s", h.Name, dir, what, strings.Join(args, " "), err, out)
	}
	return nil
}
