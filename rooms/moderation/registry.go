package moderation

import (
	"errors"
	"sync"
)

// MaxPresets bounds the rooms an operator may configure ahead of time.
const MaxPresets = 10_000

// ErrTooManyPresets refuses a preset beyond MaxPresets.
var ErrTooManyPresets = errors.New("too many rooms configured ahead")

// Registry is every room's moderation state under one lock. A room's
// state exists from its first joiner or knock until nobody is in it or
// waiting (or a moderator ends the meeting); its settings start from
// the room's preset (set ahead by an operator) or the defaults.
type Registry struct {
	defaults Settings

	mu      sync.Mutex
	rooms   map[string]*Room
	presets map[string]Settings
}

// NewRegistry makes an empty registry whose rooms start with defaults.
func NewRegistry(defaults Settings) *Registry {
	return &Registry{defaults: defaults, rooms: map[string]*Room{}, presets: map[string]Settings{}}
}

// Do runs f on room's state under the registry's lock, making the state
// if it does not exist; the state is forgotten afterwards if it is
// Empty. f must not block or call back into the registry.
func (r *Registry) Do(room string, f func(st *Room)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.rooms[room]
	if st == nil {
		s, ok := r.presets[room]
		if !ok {
			s = r.defaults
		}
		st = NewRoom(s)
		r.rooms[room] = st
	}
	f(st)
	if st.Empty() {
		delete(r.rooms, room)
	}
}

// Peek runs f on room's state if it exists and reports whether it did.
func (r *Registry) Peek(room string, f func(st *Room)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.rooms[room]
	if st == nil {
		return false
	}
	f(st)
	if st.Empty() {
		delete(r.rooms, room)
	}
	return true
}

// End forgets room's state (the meeting is over) and returns it, nil if
// there was none.
func (r *Registry) End(room string) *Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.rooms[room]
	delete(r.rooms, room)
	return st
}

// Preset changes room's settings ahead of time (and in the running
// meeting, if there is one) and returns them.
func (r *Registry) Preset(room string, p Patch) (Settings, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.presets[room]
	if !ok {
		if len(r.presets) >= MaxPresets {
			return Settings{}, ErrTooManyPresets
		}
		s = r.defaults
		if st := r.rooms[room]; st != nil {
			s = st.settings
		}
	}
	s = s.Apply(p)
	r.presets[room] = s
	if st := r.rooms[room]; st != nil {
		st.Change(p)
		s = st.settings
	}
	return s, nil
}

// View returns room's settings (the running meeting's, else its preset,
// else the defaults), its lobby and its audit events (none without a
// meeting).
func (r *Registry) View(room string) (Settings, []Entry, []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.rooms[room]; st != nil {
		return st.settings, st.Lobby(), st.Events()
	}
	if s, ok := r.presets[room]; ok {
		return s, nil, nil
	}
	return r.defaults, nil, nil
}
