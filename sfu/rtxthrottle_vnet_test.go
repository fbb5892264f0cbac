package sfu_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// rtxSample is what the SFU and bob said about retransmissions at one
// moment of a capped call.
type rtxSample struct {
	retransmits, nacksIn float64
	bytes                float64
	rtxOrig              map[uint16]int // bob's RTX packets by original number
}

func (c *capEnv) rtxSample(t *testing.T) rtxSample {
	return rtxSample{
		retransmits: counterValue(t, c.env, "parley_sfu_retransmits_total", ""),
		nacksIn:     counterValue(t, c.env, "parley_sfu_nacks_total", "in"),
		bytes:       counterValue(t, c.env, "parley_sfu_bytes_forwarded_total", ""),
		rtxOrig:     c.bob.RemoteTracks()[c.sid].RTXOrig,
	}
}

// TestRTXUnderCap: a subscriber behind a 300 kbit/s downlink (the
// network lab's token bucket, 200 ms of queue) is NACKing what the queue
// drops. Measures the retransmissions per second and per packet.
func TestRTXUnderCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCapEnv(t)
		testkit.Eventually(t, 20*time.Second, "bob at the top layer", func() bool { return c.receiver().Layer == "f" })
		c.setCap(300_000)
		testkit.Eventually(t, 10*time.Second, "bob at the low layer under the cap", func() bool { return c.receiver().Layer == "q" })
		const secs = 20
		before := c.rtxSample(t)
		time.Sleep(secs * time.Second)
		after := c.rtxSample(t)
		distinct, most, got := 0, 0, 0
		for seq, n := range after.rtxOrig {
			if d := n - before.rtxOrig[seq]; d > 0 {
				distinct++
				got += d
				most = max(most, d)
			}
		}
		rate := (after.retransmits - before.retransmits) / secs
		t.Logf("capped %d s: %.0f retransmissions/s, %.0f NACKed numbers/s, %.0f kbit/s of media; bob got %d on RTX for %d packets (at most %d for one)",
			secs, rate, (after.nacksIn-before.nacksIn)/secs, (after.bytes-before.bytes)*8/secs/1000, got, distinct, most)
	})
}
