package recording

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/recording/internal/trackrec"
)

// Stop reasons written to the manifest and handed to OnStop.
const (
	ReasonStopped  = "stopped"
	ReasonSize     = "size limit reached"
	ReasonBudget   = "recordings disk budget spent"
	ReasonShutdown = "server shutting down"
	ReasonError    = "write error"
	ReasonEmpty    = "everyone left"
)

// Recording is one running recording of a room.
type Recording struct {
	store *Store
	dir   string
	start time.Time

	bytes   atomic.Int64
	limited atomic.Bool // a limit was reached; the sync loop stops it

	mu      sync.Mutex
	m       Manifest
	tracks  []*TrackWriter
	stopped bool
	failure error

	stop chan string // asks the sync loop to stop, with the reason
	done chan struct{}
}

// ID is the recording's id.
func (r *Recording) ID() string { return r.m.ID }

// AddTrack opens a file for a published track. ErrCodec: the track is
// not recorded (the manifest does not list it).
func (r *Recording) AddTrack(t TrackInfo) (*TrackWriter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil, errStopped
	}
	for _, ref := range r.m.Tracks {
		if ref.SID == t.SID {
			return nil, fmt.Errorf("recording: track %s already recorded", t.SID)
		}
	}
	ext, err := fileExtension(t)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%02d-%s%s", len(r.m.Tracks)+1, t.SID, ext)
	w, err := newTrackWriter(r, len(r.m.Tracks), filepath.Join(r.dir, name), t)
	if err != nil {
		return nil, err
	}
	r.m.Tracks = append(r.m.Tracks, TrackRef{SID: t.SID, Identity: t.Identity, Name: t.Name, Kind: t.Kind,
		Source: t.Source, Codec: t.Codec, File: name})
	r.tracks = append(r.tracks, w)
	return w, nil
}

// Manifest is a copy of the manifest as last synced.
func (r *Recording) Manifest() Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.m
	m.Tracks = append([]TrackRef(nil), r.m.Tracks...)
	return m
}

// wrote counts bytes that reached a file and flags a limit once reached.
func (r *Recording) wrote(n int64) {
	total := r.bytes.Add(n)
	spent := r.store.used.Add(n)
	r.store.written.Add(n)
	if total >= r.store.cfg.MaxRecordingBytes || spent >= r.store.cfg.MaxTotalBytes {
		r.limited.Store(true)
		r.requestStop(r.limitReason())
	}
}

func (r *Recording) limitReason() string {
	if r.bytes.Load() >= r.store.cfg.MaxRecordingBytes {
		return ReasonSize
	}
	return ReasonBudget
}

// fail records a write error; the recording stops.
func (r *Recording) fail(err error) {
	r.mu.Lock()
	if r.failure == nil {
		r.failure = err
	}
	r.mu.Unlock()
	r.requestStop(ReasonError)
}

// Stop asks the recording to end without waiting for its files to be
// closed (an fsync each, seconds on a busy disk): its own goroutine
// closes them and calls the store's onStop; Store.Stop is the waiting
// form.
func (r *Recording) Stop(reason string) { r.requestStop(reason) }

func (r *Recording) requestStop(reason string) {
	select {
	case r.stop <- reason:
	default: // a stop is already on its way
	}
}

// run syncs on a schedule until stopped; it owns the end of the recording.
func (r *Recording) run(onStop func(Manifest)) {
	defer close(r.done)
	tick := time.NewTicker(r.store.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.sync()
		case reason := <-r.stop:
			m := r.finish(reason)
			r.store.forget(r)
			if onStop != nil {
				onStop(m)
			}
			r.store.composeLater(m.Room, m.ID)
			return
		}
	}
}

// sync flushes and fsyncs every track and rewrites the manifest.
func (r *Recording) sync() {
	r.mu.Lock()
	tracks := append([]*TrackWriter(nil), r.tracks...)
	r.mu.Unlock()
	for _, w := range tracks {
		st, err := w.sync()
		r.noteTrack(w.i, st)
		if err != nil {
			r.fail(err)
		}
	}
	r.mu.Lock()
	r.m.Bytes = r.bytes.Load()
	m := r.m
	r.mu.Unlock()
	if err := writeManifest(r.dir, &m); err != nil {
		r.store.log.Warn("recording: manifest", "room", m.Room, "id", m.ID, "err", err)
	}
}

func (r *Recording) noteTrack(i int, st trackrec.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := &r.m.Tracks[i]
	ref.Frames = st.Frames
	if st.Frames > 0 {
		ref.StartMs, ref.EndMs = st.First.Milliseconds(), st.Last.Milliseconds()
	}
}

// complete reports whether finish has written the final manifest.
func (r *Recording) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.State == StateComplete
}

// finish closes every track and writes the final manifest.
func (r *Recording) finish(reason string) Manifest {
	// The recording ends now, however long closing the files takes (an
	// fsync each, slow on a busy disk): nothing is written after this.
	now := time.Now()
	r.mu.Lock()
	r.stopped = true
	tracks := r.tracks
	r.mu.Unlock()
	// Closed side by side: each ends with an fsync, which a busy disk
	// can make take seconds, and the room waits to hear the stop.
	var wg sync.WaitGroup
	for _, w := range tracks {
		wg.Go(func() {
			st, err := w.close()
			r.noteTrack(w.i, st)
			if err != nil {
				r.store.log.Warn("recording: close track", "room", r.m.Room, "id", r.m.ID, "err", err)
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.m.State = StateComplete
	r.m.Ended = &now
	r.m.StopReason = reason
	r.m.Bytes = r.bytes.Load()
	m := r.m
	r.mu.Unlock()
	if err := writeManifest(r.dir, &m); err != nil {
		r.store.log.Warn("recording: manifest", "room", m.Room, "id", m.ID, "err", err)
	}
	r.store.log.Info("recording stopped", "room", m.Room, "id", m.ID, "reason", reason, "bytes", m.Bytes, "tracks", len(m.Tracks))
	return m
}
