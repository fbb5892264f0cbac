package audiolevel

import (
	"slices"
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

// rtpMic feeds src 20 ms RTP frames of one stream (48 kHz timestamps).
type rtpMic struct {
	src  *Source
	ssrc uint32
	ts   uint32
}

// frames adds n frames at level, all received now (a bunch when n > 1).
func (m *rtpMic) frames(n int, level uint8) {
	for range n {
		m.src.ObserveRTP(time.Now(), m.ssrc, m.ts, 48000, level)
		m.ts += 960
	}
}

// speakingNow is whether the room lists id as speaking right now.
func speakingNow(r *Room, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources[id].state(r.cfg.Now()).speaking
}

// TestBunchedPacketsCountAsTheirAudio: packets that reach the SFU in
// bunches after stalls longer than Hangover (a loaded machine: 500 ms of
// nothing, then 25 packets at once) count as the audio they carry, by
// their timestamps: the talker is speaking as soon as the first bunch
// is in, while a 200 ms cough in one bunch still does not count.
func TestBunchedPacketsCountAsTheirAudio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		a := &rtpMic{src: r.Add("a"), ssrc: 1}
		b := &rtpMic{src: r.Add("b"), ssrc: 2}
		time.Sleep(500 * time.Millisecond)
		a.frames(25, 30)
		b.frames(10, 15) // a cough, delivered at once
		u, ok := r.Tick()
		if !ok || u.Active != "a" || len(u.Speakers) != 1 {
			t.Fatalf("after a bunch of 500 ms of speech and one of a 200 ms cough: %+v %v", u, ok)
		}
		// Smoothed over the frames' own time too: about 1-30/127.
		if l := u.Speakers[0].Level; l < 0.7 || l > 0.8 {
			t.Errorf("a's level %v after a bunch at -30 dBov", l)
		}
		for range 4 { // a keeps talking in bunches
			time.Sleep(500 * time.Millisecond)
			a.frames(25, 30)
			if !speakingNow(r, "a") {
				t.Fatal("a bunch after a 500 ms stall started a new run")
			}
		}
		r.mu.Lock()
		voiced := r.sources["a"].voiced
		r.mu.Unlock()
		if want := 125*frame - frame; voiced != want {
			t.Errorf("voiced %v after 125 bunched frames, want %v", voiced, want)
		}
	})
}

// TestRTPClockRestarts: a late packet is ignored; a new SSRC or a
// timestamp that jumps back by more than lateRTP (the stream started
// over) carries the audio time on by arrival, so the run goes on.
func TestRTPClockRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		src := r.Add("a")
		m := &rtpMic{src: src, ssrc: 1, ts: 1 << 31}
		step := func(n int) {
			for range n {
				m.frames(1, 30)
				time.Sleep(frame)
			}
		}
		step(5)
		src.ObserveRTP(time.Now(), 1, m.ts-3*960, 48000, Silent) // late, unvoiced: ignored
		step(1)
		m.ssrc = 2 // a new stream (the track was replaced)
		step(4)
		m.ts -= 48000 * 5 // its timestamps start over
		step(4)
		if speakingNow(r, "a") {
			t.Fatal("speaking after 14 frames")
		}
		step(1)
		if !speakingNow(r, "a") {
			src.mu.Lock()
			defer src.mu.Unlock()
			t.Fatalf("not speaking after 15 voiced frames across two restarts: voiced %v, in run %v", src.voiced, src.inRun)
		}
	})
}

// TestWakeOnActivate: the room's Wake receives when a participant's run
// reaches Activate (the 15th voiced frame of 20 ms), not before and not
// for a cough, so the poller can send the Update at once instead of at
// its next tick.
func TestWakeOnActivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		m := &rtpMic{src: r.Add("a"), ssrc: 1}
		woken := func() bool {
			select {
			case <-r.Wake():
				return true
			default:
				return false
			}
		}
		for range 10 { // a 200 ms cough
			m.frames(1, 15)
			time.Sleep(frame)
		}
		time.Sleep(time.Second) // DTX: no packets, the timestamps run on
		m.ts += 48000
		for i := range 15 {
			if woken() {
				t.Fatalf("woken after %d frames", i)
			}
			m.frames(1, 30)
			time.Sleep(frame)
		}
		if !woken() {
			t.Fatal("not woken after 15 voiced frames (300 ms)")
		}
		if u, ok := r.Tick(); !ok || u.Active != "a" {
			t.Fatalf("Tick on wake = %+v %v", u, ok)
		}
		for range 50 {
			m.frames(1, 30)
			time.Sleep(frame)
		}
		if woken() {
			t.Error("woken again within the same run")
		}
	})
}

// TestMuteHandsOverAtOnce: when the active speaker mutes, it leaves the
// speakers list at the next Update and another speaker takes over as
// soon as it is speaking, without waiting for Hold.
func TestMuteHandsOverAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRoom(Config{})
		a := &rtpMic{src: r.Add("a"), ssrc: 1}
		b := &rtpMic{src: r.Add("b"), ssrc: 2}
		start := time.Now()
		var evs []event
		for at := time.Duration(0); at < 3*time.Second; at += frame {
			switch {
			case at < 1500*time.Millisecond:
				a.frames(1, 30)
			case at == 1500*time.Millisecond:
				a.src.Mute() // and its levels are not fed any more
			}
			if at >= 1500*time.Millisecond {
				b.frames(1, 35)
			}
			if at%(100*time.Millisecond) == 0 {
				if u, ok := r.Tick(); ok {
					evs = append(evs, event{time.Since(start), u})
				}
			}
			time.Sleep(frame)
		}
		checkRate(t, evs)
		// b speaks from 1.5 s and is speaking after 280 ms of it; Hold
		// (800 ms) would have made it 2.3 s.
		if at := firstActive(evs, "b", 0); at < 1700*time.Millisecond || at > 1900*time.Millisecond {
			t.Fatalf("b active at %v, want 1.8 s (a muted at 1.5 s); %+v", at, evs)
		}
		for _, e := range evs {
			if e.at > 1600*time.Millisecond && slices.ContainsFunc(e.u.Speakers, func(s Speaker) bool { return s.ID == "a" }) {
				t.Errorf("at %v a still listed after muting: %+v", e.at, e.u)
			}
		}
	})
}
