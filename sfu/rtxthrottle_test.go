package sfu

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtcp"
	dto "github.com/prometheus/client_model/go"
)

func TestRTXHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newRTXHistory(t0)
	const rtt = 200 * time.Millisecond
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	want := func(out uint16, d time.Duration, w rtxOutcome) {
		t.Helper()
		if got := h.check(out, at(d), rtt); got != w {
			t.Fatalf("seq %d at %v: %s, want %s", out, d, rtxOutcomes[got], rtxOutcomes[w])
		}
		if w == rtxResent {
			h.note(out, at(d))
		}
	}
	want(7, 0, rtxResent)
	want(7, 10*time.Millisecond, rtxTooRecent)
	want(7, 199*time.Millisecond, rtxTooRecent)
	want(8, 199*time.Millisecond, rtxResent) // another packet: its own history
	want(7, 200*time.Millisecond, rtxResent)
	want(7, 400*time.Millisecond, rtxResent)
	want(7, 600*time.Millisecond, rtxResent) // the fourth
	want(7, 800*time.Millisecond, rtxMaxed)
	want(7, 5*time.Second, rtxMaxed)
	// The slot's next owner (the same slot, 1024 numbers on) starts afresh,
	// and so does the same number once the old entry is forgotten.
	want(7+seqMapSize, time.Second, rtxResent)
	want(7+seqMapSize, time.Second+time.Millisecond, rtxTooRecent)
	want(8, 199*time.Millisecond+rtxForget, rtxResent)
	if got := h.slots[8%seqMapSize] >> 16 & 0xff; got != 1 {
		t.Fatalf("a forgotten entry resent again counts %d resends, want 1", got)
	}
}

func TestRTXBudget(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b rtxBudget
	const rate, burst = 10_000, 5000 // bytes/s, bytes
	for i := range 4 {
		if !b.take(1200, rate, burst, t0) {
			t.Fatalf("packet %d of a full bucket refused", i)
		}
	}
	if b.take(1200, rate, burst, t0) {
		t.Fatal("a fifth 1200-byte packet passed a 5000-byte bucket")
	}
	// 100 ms refill 1000 bytes: with the 200 left, enough for one.
	if !b.take(1200, rate, burst, t0.Add(100*time.Millisecond)) {
		t.Fatal("not refilled after 100 ms")
	}
	if b.take(1200, rate, burst, t0.Add(100*time.Millisecond)) {
		t.Fatal("refilled more than the rate")
	}
	// What is refunded can be taken again.
	b.refund(1200)
	if !b.take(1200, rate, burst, t0.Add(100*time.Millisecond)) {
		t.Fatal("refund not taken again")
	}
	// A long pause fills it up to burst, not beyond.
	n := 0
	for b.take(1000, rate, burst, t0.Add(time.Minute)) {
		n++
	}
	if n != 5 {
		t.Fatalf("a full bucket took %d packets of 1000 bytes, want 5", n)
	}
}

// counter reads a counter's value.
func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// answers is the harness's parley_sfu_nack_answers_total by outcome.
func (h *harness) answers(t *testing.T) [numRTXOutcomes]float64 {
	var a [numRTXOutcomes]float64
	for i, c := range h.s.m.nackAnswers {
		a[i] = counter(t, c)
	}
	return a
}

func nackOf(seqs ...uint16) []rtcp.Packet {
	return []rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}}
}

// TestNACKRepeatsThrottled: a subscriber that repeats its NACK for a
// packet every 20 ms (no round trip known: resends 100 ms apart) gets it
// once per 100 ms, four times in all; each NACK is counted by outcome.
func TestNACKRepeatsThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DefaultConfig())
		w := &fakeWriter{}
		d := h.subscribe(t, w, 1, true)
		for i := range 10 {
			h.feed(uint16(100+i), i == 0)
		}
		synctest.Wait()
		if n := w.n.Load(); n != 10 {
			t.Fatalf("%d packets forwarded, want 10", n)
		}
		lost := w.packets()[3].seq
		for range 50 { // a second of NACKs
			d.handleRTCP(nackOf(lost))
			synctest.Wait()
			time.Sleep(20 * time.Millisecond)
		}
		if n := w.n.Load() - 10; n != rtxMaxAttempts {
			t.Fatalf("%d retransmissions for 50 NACKs in a second, want %d", n, rtxMaxAttempts)
		}
		a := h.answers(t)
		// Resent at 0, 100, 200, 300 ms; the four NACKs between those
		// too recent; the 34 after the fourth resend over the cap.
		if a[rtxResent] != 4 || a[rtxTooRecent] != 12 || a[rtxMaxed] != 34 || a[rtxOverBudget] != 0 {
			t.Fatalf("answers resent/too recent/max attempts/over budget %v, want [4 12 34 0]", a)
		}
		if st := h.t.stats(); st.NACKsReceived != 50 || st.Retransmits != 4 {
			t.Fatalf("nacks in %d retransmits %d, want 50 and 4", st.NACKsReceived, st.Retransmits)
		}
	})
}

// TestNACKRoundTrip: resends of a packet are spaced by the subscriber's
// round trip as its receiver reports or ICE give it, at least
// rtxMinInterval.
func TestNACKRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DefaultConfig())
		w := &fakeWriter{}
		d := h.subscribe(t, w, 1, true)
		now := time.Now()
		if got := d.rtxInterval(now); got != rtxDefaultInterval {
			t.Fatalf("interval %v with no round trip known, want %v", got, rtxDefaultInterval)
		}
		d.sub.subRTT.Store(int64(300 * time.Millisecond))
		if got := d.rtxInterval(now); got != 300*time.Millisecond {
			t.Fatalf("interval %v with an ICE round trip of 300 ms", got)
		}
		d.report.Store(&rxReport{at: now, rtt: 450 * time.Millisecond})
		if got := d.rtxInterval(now); got != 450*time.Millisecond {
			t.Fatalf("interval %v with a receiver report of 450 ms, want the longer", got)
		}
		if got := d.rtxInterval(now.Add(reportMaxAge)); got != 300*time.Millisecond {
			t.Fatalf("interval %v once the report is stale, want ICE's 300 ms", got)
		}
		d.sub.subRTT.Store(int64(time.Millisecond))
		if got := d.rtxInterval(now.Add(reportMaxAge)); got != rtxMinInterval {
			t.Fatalf("interval %v with a 1 ms round trip, want %v", got, rtxMinInterval)
		}

		d.sub.subRTT.Store(int64(300 * time.Millisecond))
		d.report.Store(nil)
		for i := range 10 {
			h.feed(uint16(100+i), i == 0)
		}
		synctest.Wait()
		lost := w.packets()[5].seq
		for range 10 { // NACKs 100 ms apart for a second
			d.handleRTCP(nackOf(lost))
			synctest.Wait()
			time.Sleep(100 * time.Millisecond)
		}
		// Resent at 0, 300, 600, 900 ms.
		if n := w.n.Load() - 10; n != 4 {
			t.Fatalf("%d retransmissions in a second at a 300 ms round trip, want 4", n)
		}
	})
}

// TestNACKBudget: a subscriber's retransmissions are held to a quarter
// of its estimate; what is over is not resent (and counted), and the
// budget refills with time.
func TestNACKBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.BandwidthEstimation = true
		h := newHarness(t, cfg)
		w := &fakeWriter{}
		d := h.subscribe(t, w, 1, true)
		// 384 kbit/s: 12 000 bytes/s of retransmissions, a bucket of
		// 4800 bytes (rtxBurstMinBytes): four of the harness's
		// 1116-byte packets.
		d.sub.estimate.Store(384_000)
		for i := range 40 {
			h.feed(uint16(100+i), i == 0)
		}
		synctest.Wait()
		sent := w.packets()
		var seqs []uint16
		for _, p := range sent[10:30] {
			seqs = append(seqs, p.seq)
		}
		d.handleRTCP(nackOf(seqs...)) // 20 packets lost in a burst
		synctest.Wait()
		if n := w.n.Load() - 40; n != 4 {
			t.Fatalf("%d of 20 NACKed packets resent at once, want the 4 the bucket holds", n)
		}
		if a := h.answers(t); a[rtxResent] != 4 || a[rtxOverBudget] != 16 {
			t.Fatalf("answers %v, want 4 resent and 16 over budget", a)
		}
		// A second later 12 000 bytes more: ten more packets (the
		// bucket holds at most four at a time, so NACKs 100 ms apart).
		for range 10 {
			time.Sleep(100 * time.Millisecond)
			d.handleRTCP(nackOf(seqs...))
			synctest.Wait()
		}
		n := w.n.Load() - 40
		if n < 12 || n > 15 {
			t.Fatalf("%d resent in all after a second, want about 4 + 12000/1116", n)
		}
		// Without estimation the budget is rtxBudgetNoEstimate.
		h.s.cfg.BandwidthEstimation = false
		if rate, _ := d.sub.rtxRate(); rate != rtxBudgetNoEstimate/8 {
			t.Fatalf("budget without estimation %v bytes/s", rate)
		}
	})
}

// TestNACKPathDoesNotAllocate: answering a NACK (resent, too recent,
// over the cap, over budget) allocates nothing once the track's history
// exists.
func TestNACKPathDoesNotAllocate(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	d := h.subscribe(t, w, 1, false) // no writer: the queue only fills
	for i := range 40 {
		h.feed(uint16(100+i), i == 0)
	}
	var seqs []uint16
	for i := range 17 {
		seqs = append(seqs, uint16(100+i))
	}
	pkts := nackOf(seqs...)
	d.handleRTCP(pkts)
	if allocs := testing.AllocsPerRun(100, func() { d.handleRTCP(pkts) }); allocs != 0 {
		t.Fatalf("%v allocations per NACK of 17 packets", allocs)
	}
}
