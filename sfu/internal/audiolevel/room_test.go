package audiolevel

import (
	"testing"
	"testing/synctest"
	"time"
)

// Synthetic microphones: what a browser's audio-level extension says
// every 20 ms, and whether a packet is sent at all (DTX).
type mic func(at time.Duration) (level uint8, send bool)

// speech at the given level with short unvoiced gaps (40 ms in 200 ms),
// as syllables give.
func speech(level uint8) mic {
	return func(at time.Duration) (uint8, bool) {
		if (at/frame)%10 >= 8 {
			return 75, true
		}
		return level, true
	}
}

// silence under DTX: one comfort-noise packet every 400 ms.
func silence(at time.Duration) (uint8, bool) {
	return Silent, at%(400*time.Millisecond) == 0
}

// segments plays mics one after another: until[i] is when mics[i] ends.
type seg struct {
	until time.Duration
	m     mic
}

func script(segs ...seg) mic {
	return func(at time.Duration) (uint8, bool) {
		for _, s := range segs {
			if at < s.until {
				return s.m(at)
			}
		}
		return silence(at)
	}
}

type event struct {
	at time.Duration
	u  Update
}

// run feeds the mics for dur, ticking every 100 ms, on synctest's clock.
func run(t *testing.T, dur time.Duration, mics map[string]mic) []event {
	t.Helper()
	var evs []event
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		srcs := map[string]*Source{}
		for id := range mics {
			srcs[id] = r.Add(id)
		}
		start := time.Now()
		for at := time.Duration(0); at < dur; at += frame {
			for id, m := range mics {
				if l, ok := m(at); ok {
					srcs[id].Observe(l)
				}
			}
			if at%(100*time.Millisecond) == 0 {
				if u, ok := r.Tick(); ok {
					evs = append(evs, event{time.Since(start), u})
				}
			}
			time.Sleep(frame)
		}
	})
	checkRate(t, evs)
	return evs
}

// checkRate: never two updates within MinInterval, never the same twice.
func checkRate(t *testing.T, evs []event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if d := evs[i].at - evs[i-1].at; d < 300*time.Millisecond {
			t.Errorf("updates %v apart at %v", d, evs[i].at)
		}
		if evs[i].u.equal(evs[i-1].u) {
			t.Errorf("same update twice at %v: %+v", evs[i].at, evs[i].u)
		}
	}
}

// activeAt is the active speaker the room was last told at or before at.
func activeAt(evs []event, at time.Duration) string {
	a := ""
	for _, e := range evs {
		if e.at > at {
			break
		}
		a = e.u.Active
	}
	return a
}

// firstActive is when id was first announced active after from (-1: never).
func firstActive(evs []event, id string, from time.Duration) time.Duration {
	for _, e := range evs {
		if e.at >= from && e.u.Active == id {
			return e.at
		}
	}
	return -1
}

func TestSpeakerStarts(t *testing.T) {
	evs := run(t, 4*time.Second, map[string]mic{
		"a": script(seg{time.Second, silence}, seg{4 * time.Second, speech(30)}),
		"b": silence,
		"c": silence,
	})
	at := firstActive(evs, "a", 0)
	if at < 1300*time.Millisecond || at > 2*time.Second {
		t.Fatalf("a active at %v, want within 0.3-1 s of starting at 1 s; %+v", at, evs)
	}
	for _, e := range evs {
		if len(e.u.Speakers) == 0 || e.u.Speakers[0].ID != "a" || e.u.Speakers[0].Level < 0.7 || e.u.Speakers[0].Level > 0.8 {
			t.Errorf("at %v: %+v, want a at about 1-30/127", e.at, e.u)
		}
	}
}

func TestCoughDoesNotSwitch(t *testing.T) {
	cough := func(at time.Duration) (uint8, bool) { return 15, true }
	evs := run(t, 6*time.Second, map[string]mic{
		"a": script(seg{3 * time.Second, speech(35)}),
		"b": script(
			seg{3500 * time.Millisecond, silence},
			seg{3750 * time.Millisecond, cough}, // 250 ms, very loud
			seg{4500 * time.Millisecond, silence},
			seg{4600 * time.Millisecond, cough},
		),
	})
	if activeAt(evs, 6*time.Second) != "a" {
		t.Fatalf("a cough switched the active speaker: %+v", evs)
	}
	for _, e := range evs {
		for _, s := range e.u.Speakers {
			if s.ID == "b" {
				t.Errorf("at %v b listed as speaking", e.at)
			}
		}
	}
}

func TestShortPauseKeepsSpeaker(t *testing.T) {
	evs := run(t, 5*time.Second, map[string]mic{
		"a": script(
			seg{2 * time.Second, speech(30)},
			seg{2250 * time.Millisecond, silence}, // 250 ms breath
			seg{5 * time.Second, speech(30)},
		),
		"b": script(seg{1500 * time.Millisecond, silence}, seg{5 * time.Second, speech(45)}),
	})
	for _, e := range evs {
		if e.at < time.Second {
			continue
		}
		if e.u.Active != "a" || len(e.u.Speakers) == 0 || e.u.Speakers[0].ID != "a" {
			t.Errorf("at %v: %+v, want a active and first throughout", e.at, e.u)
		}
	}
}

func TestSwitchSpeakers(t *testing.T) {
	evs := run(t, 8*time.Second, map[string]mic{
		"a": script(seg{3 * time.Second, speech(30)}),
		"b": script(seg{3 * time.Second, silence}, seg{6 * time.Second, speech(40)}),
		"c": script(seg{6 * time.Second, silence}, seg{8 * time.Second, speech(40)}),
	})
	if at := firstActive(evs, "a", 0); at < 0 || at > time.Second {
		t.Fatalf("a active at %v", at)
	}
	if at := firstActive(evs, "b", 0); at < 3300*time.Millisecond || at > 4500*time.Millisecond {
		t.Errorf("b (from 3 s, a stops) active at %v, want within 1.5 s", at)
	}
	if at := firstActive(evs, "c", 0); at < 6300*time.Millisecond || at > 7500*time.Millisecond {
		t.Errorf("c (from 6 s, b stops) active at %v, want within 1.5 s", at)
	}
	// After a stops, a leaves the speakers list while staying active
	// until b takes over.
	for _, e := range evs {
		if e.at > 3500*time.Millisecond && e.at < 6*time.Second {
			for _, s := range e.u.Speakers {
				if s.ID == "a" {
					t.Errorf("at %v a still listed", e.at)
				}
			}
		}
	}
}

func TestOverlap(t *testing.T) {
	t.Run("quieter interrupter does not switch", func(t *testing.T) {
		evs := run(t, 6*time.Second, map[string]mic{
			"a": speech(30),
			"b": script(seg{2 * time.Second, silence}, seg{6 * time.Second, speech(33)}),
		})
		if firstActive(evs, "b", 0) >= 0 {
			t.Fatalf("b took over while a kept talking: %+v", evs)
		}
		last := evs[len(evs)-1].u
		if len(last.Speakers) != 2 || last.Speakers[0].ID != "a" || last.Speakers[1].ID != "b" {
			t.Errorf("overlap lists %+v, want a then b", last.Speakers)
		}
	})
	t.Run("much louder one takes over after Overtake", func(t *testing.T) {
		evs := run(t, 6*time.Second, map[string]mic{
			"a": speech(40),
			"b": script(seg{2 * time.Second, silence}, seg{6 * time.Second, speech(20)}),
		})
		at := firstActive(evs, "b", 0)
		if at < 3500*time.Millisecond || at > 4500*time.Millisecond {
			t.Fatalf("b active at %v, want 1.5-2.5 s after starting at 2 s; %+v", at, evs)
		}
		if activeAt(evs, 6*time.Second) != "b" {
			t.Error("b did not stay active")
		}
	})
}

func TestRemoveActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		a := r.Add("a")
		if r.Add("a") != a {
			t.Fatal("Add twice gave two sources")
		}
		if _, ok := r.Tick(); ok {
			t.Fatal("an update before anyone spoke")
		}
		for range 30 {
			a.Observe(30)
			time.Sleep(frame)
		}
		if u, ok := r.Tick(); !ok || u.Active != "a" {
			t.Fatalf("Tick = %+v %v", u, ok)
		}
		r.Remove("a")
		if r.Active() != "" {
			t.Fatal("removed participant still active")
		}
		if _, ok := r.Tick(); ok {
			t.Fatal("an update within MinInterval")
		}
		time.Sleep(300 * time.Millisecond)
		if u, ok := r.Tick(); !ok || u.Active != "" || len(u.Speakers) != 0 {
			t.Fatalf("after removal Tick = %+v %v", u, ok)
		}
	})
}
