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
type Source struct {
	cfg *Config
	id  string

	mu        sync.Mutex
	sm        Smoother
	runStart  time.Time     // first voiced frame of the current run
	lastVoice time.Time     // last voiced frame
	voiced    time.Duration // voiced time in the current run
	inRun     bool

	// Room state, under the Room's lock.
	louderSince time.Time
}

// Observe adds one packet's level (see Parse and Read), received now.
func (s *Source) Observe(level uint8) { s.ObserveAt(s.cfg.Now(), level) }

// ObserveAt is Observe for a packet received at now (a caller that has
// read the clock already saves reading it again). now must come from the
// Room's clock.
func (s *Source) ObserveAt(now time.Time, level uint8) {
	s.mu.Lock()
	s.sm.Update(now, level)
	if level&0x7f <= s.cfg.Threshold {
		if !s.inRun || now.Sub(s.lastVoice) > s.cfg.Hangover {
			s.inRun, s.runStart, s.voiced = true, now, 0
		} else {
			s.voiced += min(now.Sub(s.lastVoice), frame)
		}
		s.lastVoice = now
	}
	s.mu.Unlock()
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
}

// NewRoom returns an empty room.
func NewRoom(cfg Config) *Room {
	c := cfg.withDefaults()
	return &Room{cfg: c, sources: make(map[string]*Source)}
}

// Add returns the Source of participant id, creating it if needed.
func (r *Room) Add(id string) *Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sources[id]; ok {
		return s
	}
	s := &Source{cfg: &r.cfg, id: id, sm: Smoother{Tau: r.cfg.Tau}}
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
