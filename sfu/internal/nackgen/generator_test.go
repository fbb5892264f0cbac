package nackgen

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtcp"
)

type sink struct {
	mu      sync.Mutex
	sent    []*rtcp.TransportLayerNack
	batches []int // pairs in each batch
}

func (s *sink) send(pkts []rtcp.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pairs := 0
	for _, p := range pkts {
		pairs += len(p.(*rtcp.TransportLayerNack).Nacks)
	}
	s.batches = append(s.batches, pairs)
	for _, p := range pkts {
		s.sent = append(s.sent, p.(*rtcp.TransportLayerNack))
	}
	return nil
}

func (s *sink) nacks(ssrc uint32, seq uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.sent {
		if p.MediaSSRC != ssrc {
			continue
		}
		for _, pair := range p.Nacks {
			for _, x := range pair.PacketList() {
				if x == seq {
					n++
				}
			}
		}
	}
	return n
}

// TestGeneratorPerStream: each SSRC (a simulcast layer) has its own
// numbering; a gap in one is NACKed for that SSRC only, until repaired.
func TestGeneratorPerStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		g := New(Config{SenderSSRC: 7}, s.send)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { g.Run(stop) })
		defer func() { close(stop); wg.Wait() }()

		lo, hi := g.Add(1), g.Add(2)
		if g.Add(1) != lo {
			t.Fatal("a second Add for an SSRC made a new tracker")
		}
		lo.Push(10, time.Now())
		lo.Push(12, time.Now())
		hi.Push(10, time.Now())
		hi.Push(11, time.Now())
		time.Sleep(250 * time.Millisecond) // two ticks
		if n := s.nacks(1, 11); n != 2 {
			t.Fatalf("11 NACKed %d times on SSRC 1 in two ticks, want 2", n)
		}
		if n := s.nacks(2, 11); n != 0 {
			t.Fatalf("11 NACKed %d times on SSRC 2, which received it", n)
		}
		lo.Push(11, time.Now()) // repaired
		time.Sleep(time.Second)
		if n := s.nacks(1, 11); n != 2 {
			t.Fatalf("11 NACKed %d times, want no more after the repair", n)
		}
		s.mu.Lock()
		if s.sent[0].SenderSSRC != 7 {
			t.Errorf("sender SSRC %d, want 7", s.sent[0].SenderSSRC)
		}
		s.mu.Unlock()
	})
}

// TestGeneratorCap: a packet that never comes is NACKed Max times.
func TestGeneratorCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		g := New(Config{Max: 4}, s.send)
		tr := g.Add(1)
		tr.Push(1, time.Now())
		tr.Push(3, time.Now())
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			g.Tick(time.Now())
		}
		if n := s.nacks(1, 2); n != 4 {
			t.Fatalf("NACKed %d times, want 4", n)
		}
		g.Remove(1)
		tr.Push(5, time.Now())
		time.Sleep(time.Second)
		if n := g.Tick(time.Now()); n != 0 {
			t.Fatalf("%d NACKs for a removed stream", n)
		}
	})
}

// TestGeneratorWaitsForRTT: with a long round trip, a packet is NACKed
// again only once its retransmission could have come back.
func TestGeneratorWaitsForRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		g := New(Config{Max: 10, RTT: func() time.Duration { return 400 * time.Millisecond }}, s.send)
		tr := g.Add(1)
		tr.Push(1, time.Now())
		tr.Push(3, time.Now())
		for range 10 { // one second of ticks
			time.Sleep(100 * time.Millisecond)
			g.Tick(time.Now())
		}
		// At 100 ms, then every 500 ms (1.25 RTT): 100, 600.
		if n := s.nacks(1, 2); n != 2 {
			t.Fatalf("NACKed %d times in a second at 400 ms RTT, want 2", n)
		}
	})
}

// TestGeneratorSplitsBatches: scattered losses on several streams go out
// in RTCP batches of at most maxPairs pairs, every number NACKed once.
func TestGeneratorSplitsBatches(t *testing.T) {
	s := &sink{}
	g := New(Config{}, s.send)
	now := time.Now()
	const streams, lostEach = 6, 28
	for ssrc := range uint32(streams) {
		tr := g.Add(ssrc)
		// Every 18th number of the window lost: a pair each (18 apart,
		// beyond a bitmask's reach).
		for seq := range uint16(Window) {
			if seq%18 != 9 {
				tr.Push(seq, now)
			}
		}
	}
	if n := g.Tick(now.Add(time.Second)); n != streams*lostEach {
		t.Fatalf("%d numbers NACKed, want %d", n, streams*lostEach)
	}
	total := 0
	for _, b := range s.batches {
		if b > maxPairs {
			t.Fatalf("a batch of %d pairs, want at most %d", b, maxPairs)
		}
		total += b
	}
	if total != streams*lostEach || len(s.batches) != 2 {
		t.Fatalf("%d pairs in %d batches (%v), want %d in 2", total, len(s.batches), s.batches, streams*lostEach)
	}
}
