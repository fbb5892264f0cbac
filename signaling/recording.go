package signaling

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// RecordingDeps turn meeting recording on (docs/protocol.md, Recording).
type RecordingDeps struct {
	Store *recording.Store
	// Attach feeds a room's tracks to a sink until the returned closer
	// is closed: sfu.SFU.AttachSink.
	Attach func(room string, sink sfu.TrackSink) (io.Closer, error)
}

// recorder runs the rooms' recordings: a recording.Recording per room fed
// by an SFU tap, and the room's "recording" state. Lock order: the
// directory's lock may be held while mu is taken (joined reads the state
// inside the directory's join), never the other way round, so a joiner
// either sees a recording in "joined" or is in the room when its
// "recording" event is broadcast.
type recorder struct {
	s      *Server
	store  *recording.Store
	attach func(room string, sink sfu.TrackSink) (io.Closer, error)

	mu    sync.Mutex
	rooms map[string]*roomRecording
	// empty holds a timer per recorded room that nobody is in: when it
	// fires (recording.Config.StopWhenEmpty) the recording stops. wg
	// counts armed timers; close stops them and waits for those firing.
	empty  map[string]*time.Timer
	wg     sync.WaitGroup
	closed bool
}

// roomRecording is one room's running recording.
type roomRecording struct {
	rec     *recording.Recording
	by      proto.IdentityView
	started time.Time

	// Guarded by recorder.mu.
	tap   io.Closer // nil until attached
	ended bool      // the recording stopped before the tap was attached
}

// The recording handlers join the dispatch table here, as the moderation
// ones do.
func init() {
	maps.Copy(handlers, recordingHandlers)
}

//nolint:gochecknoglobals // a read-only table, merged into handlers at init
var recordingHandlers = map[string]handler{
	proto.TypeRecordingStart: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.startRecording(ss)
	},
	proto.TypeRecordingStop: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.stopRecording(ss)
	},
}

func newRecorder(s *Server, d *RecordingDeps, reg prometheus.Registerer) (*recorder, error) {
	if d == nil || d.Store == nil || d.Attach == nil {
		return nil, nil //nolint:nilnil // recording is off
	}
	rc := &recorder{s: s, store: d.Store, attach: d.Attach, rooms: map[string]*roomRecording{}, empty: map[string]*time.Timer{}}
	if reg != nil {
		active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_recordings_active",
			Help: "Meeting recordings running now.",
		}, func() float64 { return float64(d.Store.Running()) })
		written := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parley_recording_bytes_total",
			Help: "Bytes written to recordings' files since the process started.",
		}, func() float64 { return float64(d.Store.Written()) })
		for _, c := range []prometheus.Collector{active, written} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return rc, nil
}

// startRecording is a moderator's "recording_start".
func (s *Server) startRecording(ss *session) *proto.Error {
	if s.rec == nil {
		return &proto.Error{Code: proto.CodeUnavailable, Message: "recording is not enabled on this server"}
	}
	a, perr := s.mod.authorize(ss, moderation.ActRecord, "")
	if perr != nil {
		return perr
	}
	if _, err := s.rec.start(ss.claims.Room, a.by()); err != nil {
		return recordingError(err)
	}
	a.done("", "start")
	return nil
}

// stopRecording is a moderator's "recording_stop".
func (s *Server) stopRecording(ss *session) *proto.Error {
	if s.rec == nil {
		return &proto.Error{Code: proto.CodeUnavailable, Message: "recording is not enabled on this server"}
	}
	a, perr := s.mod.authorize(ss, moderation.ActRecord, "")
	if perr != nil {
		return perr
	}
	by := a.by()
	if _, err := s.rec.stop(ss.claims.Room, &by, false); err != nil {
		return recordingError(err)
	}
	a.done("", "stop")
	return nil
}

func recordingError(err error) *proto.Error {
	switch {
	case errors.Is(err, errStillSaving):
		return &proto.Error{Code: proto.CodeUnavailable, Message: err.Error()}
	case errors.Is(err, recording.ErrRecording), errors.Is(err, recording.ErrNotRecording):
		return proto.BadRequest("%v", err)
	case errors.Is(err, recording.ErrBudget):
		return &proto.Error{Code: proto.CodeUnavailable, Message: err.Error()}
	}
	return &proto.Error{Code: proto.CodeInternal, Message: "recording failed: " + err.Error()}
}

// start begins recording room and tells the room.
func (rc *recorder) start(room string, by proto.IdentityView) (recording.Manifest, error) {
	if !rooms.ValidName(room) {
		return recording.Manifest{}, fmt.Errorf("recording: invalid room name %q", room)
	}
	rc.mu.Lock()
	rec, err := rc.store.Start(room, by.Identity, func(m recording.Manifest) { rc.ended(room, m) })
	if err != nil {
		if errors.Is(err, recording.ErrRecording) && rc.rooms[room] == nil {
			err = errStillSaving // stopped, its files not closed yet
		}
		rc.mu.Unlock()
		return recording.Manifest{}, err
	}
	rr := &roomRecording{rec: rec, by: by, started: time.Now()}
	rc.rooms[room] = rr
	rc.mu.Unlock()

	tap, err := rc.attach(room, &recordingSink{rec: rec, dir: rc.s.dir, room: room})
	if err != nil {
		_, _ = rc.store.Stop(room) // ended tells the room
		return recording.Manifest{}, err
	}
	rc.mu.Lock()
	rr.tap = tap
	late := rr.ended
	rc.mu.Unlock()
	if late {
		// Stopped before the tap was attached: the room has heard the
		// stop, and must not hear a start after it.
		_ = tap.Close()
		return rec.Manifest(), nil
	}
	rc.s.dir.Broadcast(room, proto.Encode(proto.TypeRecording, "", rr.view()))
	return rec.Manifest(), nil
}

// errStillSaving is a start while the room's stopped recording is still
// closing its files: the store holds it until then.
var errStillSaving = fmt.Errorf("%w: its last recording is still being saved, try again in a moment", recording.ErrRecording)

// stop ends room's recording. The room hears it and the tap is detached
// at once; the files are closed on the recording's own goroutine (an
// fsync each: seconds on a busy disk, and a moderator's session must
// not stop reading its socket meanwhile, nor the room keep showing a
// recording that ended). wait makes stop return the final manifest
// once the files are closed; without it the manifest is the running
// one's.
func (rc *recorder) stop(room string, by *proto.IdentityView, wait bool) (recording.Manifest, error) {
	rc.mu.Lock()
	rr := rc.rooms[room]
	if rr == nil {
		rc.mu.Unlock()
		return recording.Manifest{}, recording.ErrNotRecording
	}
	rc.finishAndUnlock(room, rr, proto.RecordingBody{ // ended finds it gone: the room is told here
		Active: false, ID: rr.rec.ID(), By: by, Reason: recording.ReasonStopped,
	})
	if !wait {
		rr.rec.Stop(recording.ReasonStopped)
		return rr.rec.Manifest(), nil
	}
	m, err := rc.store.Stop(room)
	if errors.Is(err, recording.ErrNotRecording) {
		// It ended by itself meanwhile (a limit, an error): its files
		// are closed or being closed; the running manifest is what is
		// known here.
		return rr.rec.Manifest(), nil
	}
	return m, err
}

// ended runs on the recording's goroutine once it stopped, however it
// stopped: unless stop already did, the tap is detached and the room
// told why.
func (rc *recorder) ended(room string, m recording.Manifest) {
	rc.mu.Lock()
	rr := rc.rooms[room]
	if rr == nil || rr.rec.ID() != m.ID {
		rc.mu.Unlock()
		return
	}
	rc.finishAndUnlock(room, rr, proto.RecordingBody{Active: false, ID: m.ID, Reason: m.StopReason})
}

// finishAndUnlock, called with rc.mu held (and releasing it), takes rr off
// the room's running recordings, detaches its tap and tells the room
// body: whichever of stop and ended comes first does this, once.
func (rc *recorder) finishAndUnlock(room string, rr *roomRecording, body proto.RecordingBody) {
	delete(rc.rooms, room)
	rr.ended = true
	tap := rr.tap
	rc.mu.Unlock()
	if tap != nil {
		_ = tap.Close()
	}
	rc.s.dir.Broadcast(room, proto.Encode(proto.TypeRecording, "", body))
}

// left is told that a participant left room: once the room is empty,
// its recording stops after StopWhenEmpty unless someone is back.
func (rc *recorder) left(room string) {
	if rc == nil {
		return
	}
	if grace := rc.store.Config().StopWhenEmpty; grace <= 0 || rc.s.dir.Count(room) > 0 {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed || rc.rooms[room] == nil || rc.empty[room] != nil {
		return
	}
	rc.wg.Add(1)
	rc.empty[room] = time.AfterFunc(rc.store.Config().StopWhenEmpty, func() {
		defer rc.wg.Done()
		rc.mu.Lock()
		delete(rc.empty, room)
		closed := rc.closed
		rc.mu.Unlock()
		if closed || rc.s.dir.Count(room) > 0 {
			return
		}
		if _, err := rc.store.StopWith(room, recording.ReasonEmpty); err == nil {
			rc.s.log.Info("recording stopped: the room is empty", "room", room)
		}
	})
}

// meetingEnded stops the room's recording when a moderator ends the
// meeting for everyone.
func (rc *recorder) meetingEnded(room string, by proto.IdentityView) {
	if rc == nil {
		return
	}
	_, _ = rc.stop(room, &by, false) // ErrNotRecording: nothing ran
}

// close cancels the empty-room timers and waits for any firing; the
// recordings themselves end with the store.
func (rc *recorder) close() {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	rc.closed = true
	for room, t := range rc.empty {
		if t.Stop() {
			rc.wg.Done()
		}
		delete(rc.empty, room)
	}
	rc.mu.Unlock()
	rc.wg.Wait()
}

// state is the room's recording as "joined" shows it; nil when none runs.
func (rc *recorder) state(room string) *proto.RecordingBody {
	if rc == nil {
		return nil
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rr := rc.rooms[room]
	if rr == nil {
		return &proto.RecordingBody{Active: false}
	}
	v := rr.view()
	return &v
}

func (rr *roomRecording) view() proto.RecordingBody {
	by := rr.by
	return proto.RecordingBody{Active: true, ID: rr.rec.ID(), By: &by, StartedAt: rr.started.UnixMilli()}
}

// recordingSink opens a recording track for each track the SFU tap
// offers, named after its participant as the room knows it.
type recordingSink struct {
	rec  *recording.Recording
	dir  *rooms.Directory
	room string
}

func (k *recordingSink) AddTrack(t sfu.TrackInfo, keyframe func()) (webrtc.TrackLocalWriter, error) {
	w, err := k.rec.AddTrack(tapTrackInfo(k.dir, k.room, t))
	if err != nil {
		return nil, err
	}
	w.OnKeyframeNeeded(keyframe)
	return w, nil
}

// RemoveTrack leaves the file open: the recording closes every track's
// file when it ends, and a track's silence after it was unpublished is
// what the manifest's endMs already says.
func (k *recordingSink) RemoveTrack(sfu.TrackInfo) {}
