package audiolevel

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Config tunes speaker selection; zero fields take the defaults.
type Config struct {
	Threshold   uint8         // a frame at this level (-dBov) or louder is voiced; default 50
	Tau         time.Duration // smoother time constant; default 300 ms
	Activate    time.Duration // voiced time in a run before speaking; default 300 ms
	Hangover    time.Duration // longest pause inside a run; default 400 ms
	Hold        time.Duration // quiet time before the active speaker can be replaced; default 800 ms
	Overtake    time.Duration // time a louder challenger needs while both talk; default 1.5 s
	Margin      float64       // dB a challenger must be louder by to overtake; default 6
	MinInterval time.Duration // least time between two Updates; default 300 ms
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Threshold == 0 {
		c.Threshold = 50
	}
	def(&c.Tau, 300*time.Millisecond)
	def(&c.Activate, 300*time.Millisecond)
	def(&c.Hangover, 400*time.Millisecond)
	def(&c.Hold, 800*time.Millisecond)
	def(&c.Overtake, 1500*time.Millisecond)
	def(&c.MinInterval, 300*time.Millisecond)
	if c.Margin <= 0 {
		c.Margin = 6
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Speaker is one entry of an Update.
type Speaker struct {
	ID    string
	Level float64 // loudness 0..1, in steps of 0.05
}

// Update is what the room is told: the active speaker ("" when there has
// been none) and the people speaking now, the active one first, the
// others loudest first.
type Update struct {
	Active   string
	Speakers []Speaker
}

func (u Update) equal(v Update) bool {
	return u.Active == v.Active && slices.Equal(u.Speakers, v.Speakers)
}

// Source is one participant's audio levels, fed per packet from its
// track's read loop; safe for concurrent use with the Room.
//
// Voiced time and the pauses within a run are counted in the audio's own
// time (the packets' RTP timestamps, see ObserveRTP), not in arrival
// time: on a loaded machine packets reach the SFU in bunches, 300 ms of
// speech at once after a stall of half a second, and counted by arrival
// such a bunch would be a few ms of voice after a pause longer than
// Hangover, so a talker would take seconds to activate. How long ago the
// last voiced packet arrived (quiet, below) stays in arrival time: it
// says whether the participant speaks now.
type Source struct {
	cfg  *Config
	id   string
	wake func() // tells the Room a run just reached Activate

	mu sync.Mutex
	sm Smoother
	// The media clock: the audio time of the newest packet, read from
	// the RTP timestamps of stream ssrc while they run on from the
	// previous packet, else carried on by the arrival time.
	clockRTP  bool
	ssrc      uint32
	rate      uint32
	ts        uint32
	media     time.Duration // audio time of the newest packet
	arrived   time.Time     // arrival of the newest packet
	started   bool
	lastVoice time.Time     // arrival of the last voiced frame
	voiceAt   time.Duration // audio time of the last voiced frame
	voiced    time.Duration // voiced time in the current run
	inRun     bool

	// Room state, under the Room's lock.
	louderSince time.Time
}

// Observe adds one packet's level (see Parse and Read), received now,
// counting audio time by arrival time.
func (s *Source) Observe(level uint8) { s.ObserveAt(s.cfg.Now(), level) }

// ObserveAt is Observe for a packet received at now (a caller that has
// read the clock already saves reading it again). now must come from the
// Room's clock.
func (s *Source) ObserveAt(now time.Time, level uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clockRTP = false
	s.observeLocked(now, s.byArrivalLocked(now), level)
}

// lateRTP is how far back an RTP timestamp may go and still be a late
// packet of the same stream (ignored) rather than the stream starting
// over (the media clock then goes on by arrival time).
const lateRTP = time.Second

// ObserveRTP is ObserveAt for an RTP packet of stream ssrc whose
// timestamp is ts at clockRate (Opus: 48000): its audio time is read
// from the timestamps, so packets that arrive bunched up still count as
// the audio they carry. A packet from before the newest one (reordered)
// is ignored.
func (s *Source) ObserveRTP(now time.Time, ssrc, ts, clockRate uint32, level uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clockRTP && ssrc == s.ssrc && clockRate == s.rate && clockRate != 0 {
		d := time.Duration(int32(ts-s.ts)) * time.Second / time.Duration(clockRate)
		if d >= 0 {
			s.ts = ts
			s.observeLocked(now, s.media+d, level)
			return
		}
		if d > -lateRTP {
			return
		}
	}
	// A new stream, or one that starts over: its timestamps say nothing
	// about the time since the previous packet.
	s.clockRTP, s.ssrc, s.rate, s.ts = true, ssrc, clockRate, ts
	s.observeLocked(now, s.byArrivalLocked(now), level)
}

// byArrivalLocked is the audio time of a packet received at now when its
// timestamp says nothing: the time since the previous packet arrived.
func (s *Source) byArrivalLocked(now time.Time) time.Duration {
	if !s.started {
		return 0
	}
	return s.media + max(now.Sub(s.arrived), 0)
}

// observeLocked adds a packet received at now whose audio time is media.
func (s *Source) observeLocked(now time.Time, media time.Duration, level uint8) {
	gap := media - s.media
	if !s.started {
		gap = frame
	}
	s.sm.add(now, gap, level)
	s.media, s.arrived, s.started = media, now, true
	if level&0x7f > s.cfg.Threshold {
		return
	}
	if pause := media - s.voiceAt; !s.inRun || pause > s.cfg.Hangover {
		s.inRun, s.voiced = true, 0
	} else {
		before := s.voiced
		s.voiced += min(pause, frame)
		// Reaching Activate is worth an Update before the next tick.
		if s.wake != nil && before+frame < s.cfg.Activate && s.voiced+frame >= s.cfg.Activate {
			s.wake()
		}
	}
	s.lastVoice, s.voiceAt = now, media
}

// Mute ends the current run at once: a participant who muted is not
// speaking, and as the active speaker can be replaced without waiting
// for Hold. The track's levels must not be observed while it is muted.
func (s *Source) Mute() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inRun = false
}

type state struct {
	speaking bool
	quiet    time.Duration // since the last voiced frame (large if none)
	dbov     float64
}

func (s *Source) state(now time.Time) state {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := state{quiet: math.MaxInt64, dbov: s.sm.DBov(now)}
	if s.inRun {
		st.quiet = now.Sub(s.lastVoice)
		// The first frame of the run counts too.
		st.speaking = st.quiet <= s.cfg.Hangover && s.voiced+frame >= s.cfg.Activate
	}
	return st
}

// Room selects the active speaker among its Sources.
type Room struct {
	cfg Config

	mu       sync.Mutex
	sources  map[string]*Source
	active   string
	last     Update
	lastSent time.Time
	sent     bool

	wake chan struct{} // see Wake
}

// NewRoom returns an empty room.
func NewRoom(cfg Config) *Room {
	c := cfg.withDefaults()
	return &Room{cfg: c, sources: make(map[string]*Source), wake: make(chan struct{}, 1)}
}

// Wake receives when a participant has just become speaking, so that
// the poller can Tick at once rather than at its next tick: after a quiet
// time the first Update then goes out as soon as it is known.
func (r *Room) Wake() <-chan struct{} { return r.wake }

func (r *Room) notify() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Add returns the Source of participant id, creating it if needed.
func (r *Room) Add(id string) *Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sources[id]; ok {
		return s
	}
	s := &Source{cfg: &r.cfg, id: id, wake: r.notify, sm: Smoother{Tau: r.cfg.Tau}}
	r.sources[id] = s
	return s
}

// Remove forgets participant id (it left, or its audio track ended).
func (r *Room) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sources, id)
	if r.active == id {
		r.active = ""
	}
}

// Active is the current active speaker ("" if none yet).
func (r *Room) Active() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

// Tick re-evaluates the room. It returns an Update and true when the
// result changed since the last Update returned and at least MinInterval
// has passed since then.
func (r *Room) Tick() (Update, bool) {
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()

	type cand struct {
		id string
		st state
	}
	var speaking []cand
	var act state
	for id, s := range r.sources {
		st := s.state(now)
		if id == r.active {
			act = st
		}
		if st.speaking {
			speaking = append(speaking, cand{id, st})
		}
	}
	// Loudest first; ties by id so the order is stable.
	slices.SortFunc(speaking, func(a, b cand) int {
		if a.st.dbov != b.st.dbov {
			if a.st.dbov < b.st.dbov {
				return -1
			}
			return 1
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})

	prev := r.active
	switch {
	case r.active == "":
		if len(speaking) > 0 {
			r.active = speaking[0].id
		}
	case act.quiet >= r.cfg.Hold:
		for _, c := range speaking {
			if c.id != r.active {
				r.active = c.id
				break
			}
		}
	default: // the active speaker talks: overtaking only
		for _, c := range speaking {
			s := r.sources[c.id]
			if c.id == r.active || c.st.dbov > act.dbov-r.cfg.Margin {
				s.louderSince = time.Time{}
				continue
			}
			if s.louderSince.IsZero() {
				s.louderSince = now
			}
			if now.Sub(s.louderSince) >= r.cfg.Overtake {
				r.active = c.id
				break
			}
		}
	}
	for id, s := range r.sources {
		if r.active != prev || id == r.active || !slices.ContainsFunc(speaking, func(c cand) bool { return c.id == id }) {
			s.louderSince = time.Time{}
		}
	}

	u := Update{Active: r.active}
	for _, c := range speaking {
		sp := Speaker{ID: c.id, Level: math.Round(Loudness(c.st.dbov)*20) / 20}
		if c.id == r.active {
			u.Speakers = slices.Insert(u.Speakers, 0, sp)
		} else {
			u.Speakers = append(u.Speakers, sp)
		}
	}
	if r.sent && (u.equal(r.last) || now.Sub(r.lastSent) < r.cfg.MinInterval) {
		return Update{}, false
	}
	if !r.sent && u.Active == "" && len(u.Speakers) == 0 {
		return Update{}, false // nothing to say yet
	}
	r.last, r.lastSent, r.sent = u, now, true
	return u, true
}
