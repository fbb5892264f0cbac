package sfu_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
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
// network lab's token bucket, 200 ms of queue) NACKs what the queue
// drops when it is capped, and goes on NACKing (pion's generator repeats
// a NACK every 100 ms, even after an RTX repair). The SFU resends each
// packet at most rtxMaxAttempts times, once per round trip, within a
// quarter of the estimate: a few retransmissions a second where every
// NACK was answered, while the low layer still arrives whole.
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
		// Unthrottled, every NACK was answered: 220 to 580 a second, the
		// same packet up to 50 times, four times the media's packet
		// rate into a link that was already dropping packets.
		if rate > 30 {
			t.Errorf("%.0f retransmissions/s to a subscriber behind a 300 kbit/s cap", rate)
		}
		if lost*50 > span {
			t.Errorf("bob never got %d of %d packets of the low layer under the cap", lost, span)
		}
	})
}

// lossy drops a share of the RTP packets of two payload types from one
// vnet address to another, at random but the same in every run.
type lossy struct {
	mu       sync.Mutex
	rnd      *rand.Rand
	share    float64
	from, to string
	pts      [2]byte
	dropped  int
}

func (l *lossy) filter(ch vnet.Chunk) bool {
	if !strings.HasPrefix(ch.SourceAddr().String(), l.from+":") || !strings.HasPrefix(ch.DestinationAddr().String(), l.to+":") {
		return true
	}
	b := ch.UserData()
	if len(b) < 12 || b[0]>>6 != 2 || (b[1]&0x7f != l.pts[0] && b[1]&0x7f != l.pts[1]) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rnd.Float64() >= l.share {
		return true
	}
	l.dropped++
	return false
}

// TestRTXRepairsLossyLink: on an uncapped link that loses 5% of the
// video packets to a subscriber (retransmissions included), the
// throttled retransmissions still repair every loss, with and without
// bandwidth estimation.
func TestRTXRepairsLossyLink(t *testing.T) {
	for _, bwe := range []bool{false, true} {
		t.Run(fmt.Sprintf("bandwidth_estimation=%v", bwe), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRTXRepairsLossyLink(t, bwe) })
		})
	}
}

func testRTXRepairsLossyLink(t *testing.T, bwe bool) {
	cfg := sfu.DefaultConfig()
	cfg.BandwidthEstimation = bwe
	env := newTestEnv(t, cfg)
	bob := env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
	ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
	ada.Publish()
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
	sid := ada.Published()[0].SID
	testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return bob.Received(sid) >= 100 })

	// VP8 is payload type 96 on the subscriber connection, its rtx 97.
	l := &lossy{rnd: rand.New(rand.NewPCG(1, 2)), share: 0.05, from: sfutest.SFUIP, to: bob.IP, pts: [2]byte{96, 97}}
	env.vnet.Router.AddChunkFilter(l.filter)
	const secs = 10
	before := bob.RemoteTracks()[sid]
	rtxBefore := counterValue(t, env, "parley_sfu_retransmits_total", "")
	time.Sleep(secs * time.Second)
	after := bob.RemoteTracks()[sid]
	l.mu.Lock()
	dropped := l.dropped
	l.mu.Unlock()
	// The last 100 packets (half a second) may still be under repair.
	lost, span := missing(before.Seqs, after.Seqs, 100)
	rtx := counterValue(t, env, "parley_sfu_retransmits_total", "") - rtxBefore
	t.Logf("%d s at 5%% loss: %d packets dropped, %.0f retransmissions (%.0f/s), %d of %d never received",
		secs, dropped, rtx, rtx/secs, lost, span)
	if span < 1000 || dropped < span/40 {
		t.Fatalf("%d packets in %d s, %d dropped: the call did not run", span, secs, dropped)
	}
	if lost > 0 {
		t.Errorf("%d of %d packets never repaired at 5%% loss", lost, span)
	}
}
