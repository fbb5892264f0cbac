package recording

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/ids"
)

// Errors of the store's operations.
var (
	ErrRecording    = errors.New("recording: the room is already being recorded")
	ErrNotRecording = errors.New("recording: the room is not being recorded")
	ErrNotFound     = errors.New("recording: no such recording")
	ErrActive       = errors.New("recording: still running")
	ErrBudget       = errors.New("recording: the recordings' disk budget is spent")
	ErrClosed       = errors.New("recording: store closed")
)

// Store owns the recordings directory: running recordings (at most one
// per room) and the finished ones on disk.
type Store struct {
	cfg  Config
	dir  string
	log  *slog.Logger
	used atomic.Int64 // bytes of every recording's media on disk
	// written counts the bytes this process wrote to recordings (the
	// parley_recording_bytes_total metric); deletions do not lower it.
	written atomic.Int64

	mu     sync.Mutex
	active map[string]*Recording // by room
	closed bool

	comp *composer // nil unless cfg.Compose (composer.go)
}

// Open prepares dir (cfg.Dir when set) and marks recordings that were
// running when the process died as incomplete.
func Open(cfg Config, dir string, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		dir = cfg.Dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	s := &Store{cfg: cfg, dir: dir, log: log, active: map[string]*Recording{}}
	if err := s.recover(); err != nil {
		return nil, err
	}
	if cfg.Compose {
		s.startComposer()
	}
	return s, nil
}

// recover adds up the disk use and marks interrupted recordings.
func (s *Store) recover() error {
	var used int64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			used += mediaSize(d)
			return nil
		}
		m, err := readManifest(path)
		if err != nil || m.State != StateRecording {
			return nil //nolint:nilerr // a directory without a manifest is not a recording
		}
		// The process died while this ran: what reached the files is
		// playable up to the last cluster or page.
		ended := newestModTime(path)
		m.State, m.Ended, m.StopReason = StateIncomplete, &ended, "the server stopped while recording"
		if err := writeManifest(path, m); err != nil {
			return err
		}
		s.log.Warn("recording was interrupted; marked incomplete", "room", m.Room, "id", m.ID)
		return fs.SkipDir
	})
	if err != nil {
		return fmt.Errorf("recording: scan %s: %w", s.dir, err)
	}
	s.used.Store(used)
	return nil
}

// mediaSize is a file's size as the budget counts it: media files and
// anything else an operator left there, not the small manifests (whose
// rewrites the writers do not count).
func mediaSize(d fs.DirEntry) int64 {
	if strings.HasPrefix(d.Name(), manifestName) {
		return 0
	}
	info, err := d.Info()
	if err != nil {
		return 0
	}
	return info.Size()
}

func newestModTime(dir string) time.Time {
	var t time.Time
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	return t
}

// validName refuses what could leave the recordings directory.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && !strings.ContainsRune(s, 0)
}

// Start begins recording room. onStop (may be nil) is called once, from
// the recording's own goroutine, with the final manifest, however the
// recording ends.
func (s *Store) Start(room, startedBy string, onStop func(Manifest)) (*Recording, error) {
	if !validName(room) {
		return nil, fmt.Errorf("recording: invalid room name %q", room)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.active[room] != nil:
		return nil, ErrRecording
	case s.used.Load() >= s.cfg.MaxTotalBytes:
		return nil, ErrBudget
	}
	id := ids.New("RC_")
	dir := filepath.Join(s.dir, room, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &Recording{
		store: s, dir: dir, start: time.Now(),
		m:    Manifest{ID: id, Room: room, State: StateRecording, StartedBy: startedBy, Tracks: []TrackRef{}},
		stop: make(chan string, 1), done: make(chan struct{}),
	}
	r.m.Started = r.start
	if err := writeManifest(dir, &r.m); err != nil {
		return nil, err
	}
	s.active[room] = r
	go r.run(onStop) // joined by Stop and Close through r.done
	s.log.Info("recording started", "room", room, "id", id, "by", startedBy)
	return r, nil
}

// Config is the configuration the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// Written is how many bytes this process wrote to recordings' files.
func (s *Store) Written() int64 { return s.written.Load() }

// Running is the number of recordings running now.
func (s *Store) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

// Active is the room's running recording, or nil.
func (s *Store) Active(room string) *Recording {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[room]
}

// Stop ends the room's recording and returns its final manifest.
func (s *Store) Stop(room string) (Manifest, error) { return s.StopWith(room, ReasonStopped) }

// StopWith is Stop with the reason the manifest gives.
func (s *Store) StopWith(room, reason string) (Manifest, error) {
	r := s.Active(room)
	if r == nil {
		return Manifest{}, ErrNotRecording
	}
	r.requestStop(reason)
	<-r.done
	return r.Manifest(), nil
}

func (s *Store) forget(r *Recording) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[r.m.Room] == r {
		delete(s.active, r.m.Room)
	}
}

// List returns the recordings of room (every room when ""), newest
// first; a running one shows its latest synced manifest.
func (s *Store) List(room string) ([]Manifest, error) {
	rooms := []string{room}
	if room == "" {
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		rooms = rooms[:0]
		for _, e := range entries {
			if e.IsDir() {
				rooms = append(rooms, e.Name())
			}
		}
	} else if !validName(room) {
		return nil, fmt.Errorf("recording: invalid room name %q", room)
	}
	var out []Manifest
	for _, rm := range rooms {
		entries, err := os.ReadDir(filepath.Join(s.dir, rm))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if m, err := s.Get(rm, e.Name()); err == nil {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b Manifest) int { return b.Started.Compare(a.Started) })
	return out, nil
}

// Get returns one recording's manifest.
func (s *Store) Get(room, id string) (Manifest, error) {
	if !validName(room) || !validName(id) {
		return Manifest{}, ErrNotFound
	}
	if r := s.Active(room); r != nil && r.m.ID == id {
		return r.Manifest(), nil
	}
	m, err := readManifest(filepath.Join(s.dir, room, id))
	if err != nil {
		return Manifest{}, ErrNotFound
	}
	return *m, nil
}

// Path is the file of a recording that the manifest lists (or the
// manifest itself), for downloads; anything else is ErrNotFound.
func (s *Store) Path(room, id, file string) (string, error) {
	m, err := s.Get(room, id)
	if err != nil {
		return "", err
	}
	ok := file == manifestName || m.Composed != "" && file == m.Composed
	for _, t := range m.Tracks {
		ok = ok || t.File == file
	}
	if !ok || !validName(file) {
		return "", ErrNotFound
	}
	return filepath.Join(s.dir, room, id, file), nil
}

// Delete removes a finished recording.
func (s *Store) Delete(room, id string) error {
	if _, err := s.Get(room, id); err != nil {
		return err
	}
	if r := s.Active(room); r != nil && r.m.ID == id {
		if !r.complete() {
			return ErrActive
		}
		// Its final manifest is written (a Get already says complete)
		// and its run is letting go of it: wait for that, so that a
		// recording reported complete can be deleted at once.
		<-r.done
	}
	dir := filepath.Join(s.dir, room, id)
	var size int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			size += mediaSize(d)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("recording: delete: %w", err)
	}
	s.used.Add(-size)
	_ = os.Remove(filepath.Join(s.dir, room)) // only if empty
	return nil
}

// Close stops every running recording (they end complete, reason
// "server shutting down"), cancels a composition in progress, and
// refuses new recordings.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	var running []*Recording
	for _, r := range s.active {
		running = append(running, r)
	}
	s.mu.Unlock()
	for _, r := range running {
		r.requestStop(ReasonShutdown)
		<-r.done
	}
	s.stopComposer()
	return nil
}
