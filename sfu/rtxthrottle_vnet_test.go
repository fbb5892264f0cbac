package sfu_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
)

// rtxSample is what the SFU and bob said about retransmissions at one
// moment of a capped call.
type rtxSample struct {
	retransmits, nacksIn float64
	bytes                float64
	answers              [4]float64     // by outcome: resent, too_recent, max_attempts, over_budget
	rtxOrig              map[uint16]int // bob's RTX packets by original number
	seqs                 map[uint16]int // bob's packets by number
}

func (c *capEnv) rtxSample(t *testing.T) rtxSample {
	tr := c.bob.RemoteTracks()[c.sid]
	return rtxSample{
		retransmits: counterValue(t, c.env, "parley_sfu_retransmits_total", ""),
		nacksIn:     counterValue(t, c.env, "parley_sfu_nacks_total", "in"),
		bytes:       counterValue(t, c.env, "parley_sfu_bytes_forwarded_total", ""),
		answers: [4]float64{counterValue(t, c.env, "parley_sfu_nack_answers_total", sfu.NACKResent),
			counterValue(t, c.env, "parley_sfu_nack_answers_total", sfu.NACKTooRecent),
			counterValue(t, c.env, "parley_sfu_nack_answers_total", sfu.NACKMaxAttempts),
			counterValue(t, c.env, "parley_sfu_nack_answers_total", sfu.NACKOverBudget)},
		rtxOrig: tr.RTXOrig,
		seqs:    tr.Seqs,
	}
}

// missing counts the numbers between the highest bob had at before and
// the highest at after, less the last tail (still being repaired), that
// bob never received, and how many numbers that span holds.
func missing(before, after map[uint16]int, tail int) (lost, span int) {
	hi := func(m map[uint16]int) uint16 {
		var h uint16
		first := true
		for s := range m {
			if first || int16(s-h) > 0 {
				h, first = s, false
			}
		}
		return h
	}
	from, to := hi(before)+1, hi(after)-uint16(tail)
	for s := from; int16(to-s) >= 0; s++ {
		span++
		if after[s] == 0 {
			lost++
		}
	}
	return lost, span
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
		lost, span := missing(before.seqs, after.seqs, 100)
		t.Logf("capped %d s: %.0f retransmissions/s, %.0f NACKed numbers/s, %.0f kbit/s of media; bob got %d on RTX for %d packets (at most %d for one), never got %d of %d",
			secs, rate, (after.nacksIn-before.nacksIn)/secs, (after.bytes-before.bytes)*8/secs/1000, got, distinct, most, lost, span)
		t.Logf("NACKed numbers: %.0f resent, %.0f too recent, %.0f over the attempt cap, %.0f over budget",
			after.answers[0]-before.answers[0], after.answers[1]-before.answers[1], after.answers[2]-before.answers[2], after.answers[3]-before.answers[3])
	})
}
