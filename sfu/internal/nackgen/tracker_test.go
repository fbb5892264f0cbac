package nackgen

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

var t0 = time.Unix(1000, 0) //nolint:gochecknoglobals // test clock origin

var policy = Policy{Grace: 10 * time.Millisecond, Retry: 50 * time.Millisecond, Max: 3} //nolint:gochecknoglobals // test policy

// due runs Due at t0+at and lists the NACKed numbers.
func due(tr *Tracker, at time.Duration) []uint16 {
	var out []uint16
	for _, p := range tr.Due(t0.Add(at), policy, nil) {
		out = append(out, p.PacketList()...)
	}
	return out
}

func push(tr *Tracker, at time.Duration, seqs ...uint16) {
	for _, s := range seqs {
		tr.Push(s, t0.Add(at))
	}
}

func TestGapIsNACKedAfterGrace(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 10, 11, 14, 15)
	if got := due(tr, 5*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v within the reorder grace", got)
	}
	if got := due(tr, 20*time.Millisecond); !slices.Equal(got, []uint16{12, 13}) {
		t.Fatalf("NACKed %v, want [12 13]", got)
	}
	if got := due(tr, 40*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v again before the retry interval", got)
	}
	if got := due(tr, 80*time.Millisecond); !slices.Equal(got, []uint16{12, 13}) {
		t.Fatalf("second round NACKed %v, want [12 13]", got)
	}
}

func TestNoLossNoNACK(t *testing.T) {
	tr := &Tracker{}
	for s := range uint16(2000) {
		push(tr, 0, s)
	}
	if got := due(tr, time.Second); got != nil {
		t.Fatalf("NACKed %v without loss", got)
	}
}

func TestWrap(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 65533, 65534, 1, 2)
	if got := due(tr, 20*time.Millisecond); !slices.Equal(got, []uint16{65535, 0}) {
		t.Fatalf("NACKed %v across the wrap, want [65535 0]", got)
	}
}

func TestReorderedPacketIsNotNACKed(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 1, 2, 4)
	push(tr, 2*time.Millisecond, 3) // late, within the grace
	if got := due(tr, 20*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v, the reordered packet arrived", got)
	}
}

func TestRepairStopsNACKs(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 1, 3, 4)
	if got := due(tr, 20*time.Millisecond); !slices.Equal(got, []uint16{2}) {
		t.Fatalf("NACKed %v, want [2]", got)
	}
	push(tr, 30*time.Millisecond, 2)    // the retransmission
	push(tr, 31*time.Millisecond, 2, 4) // duplicates change nothing
	for at := 100 * time.Millisecond; at < time.Second; at += 100 * time.Millisecond {
		if got := due(tr, at); got != nil {
			t.Fatalf("NACKed %v at %v after the repair", got, at)
		}
	}
}

func TestNACKsStopAtMax(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 1, 3)
	n := 0
	for at := 20 * time.Millisecond; at < 2*time.Second; at += 100 * time.Millisecond {
		n += len(due(tr, at))
	}
	if n != policy.Max {
		t.Fatalf("packet NACKed %d times, want %d", n, policy.Max)
	}
	if tr.missing != 0 {
		t.Fatalf("%d packets still tracked after the last NACK", tr.missing)
	}
}

func TestBigJumpResets(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 100, 102)
	push(tr, 0, 100+MaxGap+10) // a restarted stream, not hundreds lost
	push(tr, 0, 100+MaxGap+11)
	if got := due(tr, 20*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v after a jump", got)
	}
	// Far back (across the wrap), a run of them: a restart too.
	highest := uint16(100 + MaxGap + 11)
	back := highest - 1000
	for i := range uint16(maxStale) {
		push(tr, 0, back+i)
	}
	push(tr, 0, back+maxStale+1)
	if got := due(tr, 40*time.Millisecond); !slices.Equal(got, []uint16{back + maxStale}) {
		t.Fatalf("NACKed %v after a restart backwards, want [%d]", got, back+maxStale)
	}
}

// TestVeryLatePacketIgnored: one packet from before the window (a repair
// that took very long) changes nothing; the gaps still open are NACKed.
func TestVeryLatePacketIgnored(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 1000, 1002)
	push(tr, 0, 1000-Window-5)
	push(tr, 0, 1003)
	if got := due(tr, 20*time.Millisecond); !slices.Equal(got, []uint16{1001}) {
		t.Fatalf("NACKed %v, want [1001]", got)
	}
}

func TestLargestGapIsNACKed(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 0, MaxGap)
	if got := due(tr, 20*time.Millisecond); len(got) != MaxGap-1 || got[0] != 1 || got[len(got)-1] != MaxGap-1 {
		t.Fatalf("NACKed %d numbers, want 1..%d", len(got), MaxGap-1)
	}
}

func TestOldPacketBeyondWindowIgnoredAfterWrapOfSlots(t *testing.T) {
	tr := &Tracker{}
	push(tr, 0, 0, 2) // 1 missing
	for s := uint16(3); s < Window+10; s++ {
		push(tr, 0, s) // 1 leaves the window as its slot is reused
	}
	if got := due(tr, 20*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v, outside the window", got)
	}
}

func TestPacking(t *testing.T) {
	tr := &Tracker{}
	// Missing: 101, 103, 117 (16 after 101), 118 (17 after: new pair), 200.
	push(tr, 0, 100, 102)
	push(tr, 0, 104)
	for s := uint16(105); s < 117; s++ {
		push(tr, 0, s)
	}
	push(tr, 0, 119)
	for s := uint16(120); s < 200; s++ {
		push(tr, 0, s)
	}
	push(tr, 0, 201)
	got := tr.Due(t0.Add(20*time.Millisecond), policy, nil)
	want := []rtcp.NackPair{
		{PacketID: 101, LostPackets: 1<<1 | 1<<15},
		{PacketID: 118},
		{PacketID: 200},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pairs %+v, want %+v", got, want)
	}
}

func TestPushAllocatesNothing(t *testing.T) {
	tr := &Tracker{}
	s := uint16(0)
	n := testing.AllocsPerRun(1000, func() {
		s += 2
		tr.Push(s, t0)
	})
	if n != 0 {
		t.Fatalf("Push allocates %v per packet", n)
	}
}

// BenchmarkPush is the per-packet cost on the forward path: in order,
// with one packet in 50 lost (and so its gap marked).
func BenchmarkPush(b *testing.B) {
	tr := &Tracker{}
	now := time.Now()
	s := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		s++
		if s%50 == 0 {
			s++
		}
		tr.Push(s, now)
	}
}

// A stream nobody wants repaired (a simulcast layer no subscriber
// receives) is not NACKed, and the losses from that time stay
// forgotten once it is wanted again; later losses are NACKed as usual.
func TestUnwantedStreamIsNotNACKed(t *testing.T) {
	tr := &Tracker{}
	wanted := false
	tr.SetWanted(func() bool { return wanted })
	push(tr, 0, 10, 11, 14, 15)
	if got := due(tr, 20*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v of an unwanted stream", got)
	}
	wanted = true
	if got := due(tr, 40*time.Millisecond); got != nil {
		t.Fatalf("NACKed %v, lost while the stream was unwanted", got)
	}
	push(tr, 50*time.Millisecond, 16, 18)
	if got := due(tr, 70*time.Millisecond); !slices.Equal(got, []uint16{17}) {
		t.Fatalf("NACKed %v once wanted again, want [17]", got)
	}
}
