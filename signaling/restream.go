package signaling

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/netpolicy"
	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// Restream end reasons this file adds to recording's.
const (
	restreamEmpty    = "everyone left"
	restreamEnded    = "the meeting ended"
	restreamShutdown = "server shutting down"
)

// Restream errors.
var (
	errRestreaming    = errors.New("restream: this room is already streamed live")
	errNotRestreaming = errors.New("restream: this room is not streamed live")
)

// restreamer runs the rooms' live restreams (docs/protocol.md,
// Restream): a recording.Restream per room fed by an SFU tap of its own
// (beside a recording's), and the room's "restream" state. It rides on
// recording being enabled: the same moderators' grant, the same taps.
// Lock order as recorder's: the directory's lock may be held while mu is
// taken, never the other way round.
type restreamer struct {
	s        *Server
	attach   func(room string, sink sfu.TrackSink) (io.Closer, error)
	counters *recording.RestreamCounters
	grace    time.Duration // an empty room's restream stops after this; 0 never
	// start makes a restream: recording.StartRestream (a test's fake).
	start func(recording.RestreamOptions) (*recording.Restream, error)
	// dests is the policy for restream destinations (TURN's for its
	// peers): special-purpose ranges refused unless
	// recording.restream_allowed_networks lists them.
	dests *netpolicy.Policy
	// resolve looks a host up (net.DefaultResolver; a test's fake).
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)

	mu     sync.Mutex
	rooms  map[string]*roomRestream
	empty  map[string]*time.Timer
	wg     sync.WaitGroup // the empty-room timers firing, and stops by them
	closed bool
}

// roomRestream is one room's restream.
type roomRestream struct {
	rs    *recording.Restream
	by    proto.IdentityView
	since time.Time

	// Guarded by restreamer.mu.
	tap   io.Closer // nil until attached
	ended bool      // ended by itself before the tap was attached
}

func init() {
	maps.Copy(handlers, restreamHandlers)
}

//nolint:gochecknoglobals // a read-only table, merged into handlers at init
var restreamHandlers = map[string]handler{
	proto.TypeRestreamStart: func(ss *session, req proto.Request) *proto.Error {
		b, _ := req.Body.(*proto.RestreamStartBody)
		if b == nil {
			return proto.BadRequest("restream_start: url is required")
		}
		return ss.s.startRestream(ss, b.URL)
	},
	proto.TypeRestreamStop: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.stopRestream(ss)
	},
}

func newRestreamer(s *Server, d *RecordingDeps, reg prometheus.Registerer) (*restreamer, error) {
	if d == nil || d.Store == nil || d.Attach == nil {
		return nil, nil //nolint:nilnil // recording, and with it restreaming, is off
	}
	dests, err := netpolicy.New(d.Store.Config().RestreamAllowedNetworks, nil)
	if err != nil {
		return nil, fmt.Errorf("recording.restream_allowed_networks: %w", err)
	}
	rs := &restreamer{s: s, attach: d.Attach, counters: &recording.RestreamCounters{},
		grace: d.Store.Config().StopWhenEmpty, start: recording.StartRestream, dests: dests,
		resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		rooms: map[string]*roomRestream{}, empty: map[string]*time.Timer{}}
	if reg != nil {
		c := rs.counters
		for _, m := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "parley_restreams_active",
				Help: "Live restreams of meetings to RTMP servers running now.",
			}, func() float64 { return float64(c.Active.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "parley_restream_reconnects_total",
				Help: "Restream reconnection attempts: ffmpeg restarted after the RTMP server dropped or refused the stream.",
			}, func() float64 { return float64(c.Reconnects.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "parley_restream_ffmpeg_restarts_total",
				Help: "Restream ffmpeg restarts, for a reconnection, a change of the room's live tracks (the layout) or a stall.",
			}, func() float64 { return float64(c.Reconnects.Load() + c.LayoutRestarts.Load() + c.Stalls.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "parley_restream_stalls_total",
				Help: "Restream ffmpeg restarts because the composition made no frame for a while (an input it could not decode or stopped reading).",
			}, func() float64 { return float64(c.Stalls.Load()) }),
		} {
			if err := reg.Register(m); err != nil {
				return nil, err
			}
		}
	}
	return rs, nil
}

// startRestream is a moderator's "restream_start": the same permission
// as recording (the moderate grant).
func (s *Server) startRestream(ss *session, url string) *proto.Error {
	if s.rst == nil {
		return &proto.Error{Code: proto.CodeUnavailable, Message: "restreaming is not enabled on this server"}
	}
	a, perr := s.mod.authorize(ss, moderation.ActRecord, "")
	if perr != nil {
		return perr
	}
	if err := s.rst.begin(ss.claims.Room, url, a.by()); err != nil {
		return restreamError(err)
	}
	a.done("", "restream start")
	return nil
}

// stopRestream is a moderator's "restream_stop".
func (s *Server) stopRestream(ss *session) *proto.Error {
	if s.rst == nil {
		return &proto.Error{Code: proto.CodeUnavailable, Message: "restreaming is not enabled on this server"}
	}
	a, perr := s.mod.authorize(ss, moderation.ActRecord, "")
	if perr != nil {
		return perr
	}
	by := a.by()
	if err := s.rst.end(ss.claims.Room, &by, recording.RestreamStopped); err != nil {
		return restreamError(err)
	}
	a.done("", "restream stop")
	return nil
}

// errRestreamDestination refuses a restream to a special-purpose address.
var errRestreamDestination = errors.New("restream: the RTMP server's address is loopback, private or otherwise special-purpose; an operator can allow it with recording.restream_allowed_networks")

// destinationTimeout bounds the lookup of a restream's host.
const destinationTimeout = 3 * time.Second

// checkDestination refuses a host that is, or resolves to, an address
// the destination policy denies. ffmpeg resolves the name again when it
// connects; this check is for a moderator's mistake or mischief, and a
// name whose owner changes its answers in between (DNS rebinding) is
// caught by the same policy only if the operator also filters the
// server's outgoing RTMP, as the README advises.
func (rs *restreamer) checkDestination(hostPort string) error {
	host := hostPort
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		host = h
	}
	addrs := []netip.Addr{}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = append(addrs, a)
	} else {
		ctx, cancel := context.WithTimeout(rs.s.baseCtx, destinationTimeout)
		defer cancel()
		if addrs, err = rs.resolve(ctx, host); err != nil || len(addrs) == 0 {
			return fmt.Errorf("restream: cannot resolve %s: %w", host, cmp.Or(err, errors.New("no address")))
		}
	}
	for _, a := range addrs {
		if ok, _ := rs.dests.Check(net.IP(a.Unmap().AsSlice())); !ok {
			return errRestreamDestination
		}
	}
	return nil
}

func restreamError(err error) *proto.Error {
	switch {
	case errors.Is(err, errRestreamDestination):
		return &proto.Error{Code: proto.CodeForbidden, Message: err.Error()}
	case errors.Is(err, errRestreaming), errors.Is(err, errNotRestreaming), errors.Is(err, recording.ErrRestreamURL):
		return proto.BadRequest("%v", err)
	case errors.Is(err, sfu.ErrTapped):
		return &proto.Error{Code: proto.CodeUnavailable, Message: "restream: the room's media is taken by as many recorders as it may have"}
	}
	return &proto.Error{Code: proto.CodeUnavailable, Message: "restream failed: " + err.Error()}
}

// begin starts streaming room live to url and tells the room. The URL
// is never logged or sent: only its host is logged.
func (rs *restreamer) begin(room, url string, by proto.IdentityView) error {
	if !rooms.ValidName(room) {
		return fmt.Errorf("restream: invalid room name %q", room)
	}
	host, err := recording.ParseRestreamURL(url)
	if err != nil {
		return err
	}
	if err := rs.checkDestination(host); err != nil {
		return err
	}
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return errors.New("restream: the server is shutting down")
	}
	if rs.rooms[room] != nil {
		rs.mu.Unlock()
		return errRestreaming
	}
	rr := &roomRestream{by: by, since: time.Now()}
	rs.rooms[room] = rr // reserved: a second start is refused meanwhile
	rs.mu.Unlock()
	r, err := rs.start(recording.RestreamOptions{
		Room: room, URL: url, Log: rs.s.log.With("component", "restream"), Counters: rs.counters,
		OnEnd: func(reason string) { rs.endedByItself(room, rr, reason) },
	})
	if err != nil {
		rs.forget(room, rr)
		return err
	}
	tap, err := rs.attach(room, &restreamSink{rs: r, dir: rs.s.dir, room: room})
	if err != nil {
		r.Stop()
		rs.forget(room, rr)
		return err
	}
	rs.mu.Lock()
	rr.rs, rr.tap = r, tap
	late := rr.ended
	rs.mu.Unlock()
	if late {
		_ = tap.Close()
		return nil // endedByItself told the room
	}
	rs.s.log.Info("restream started", "room", room, "rtmp_host", r.Host(), "by", by.Identity)
	rs.s.dir.Broadcast(room, proto.Encode(proto.TypeRestream, "", rr.view()))
	rs.left(room) // started in an empty room (the admin API): the grace applies
	return nil
}

func (rs *restreamer) forget(room string, rr *roomRestream) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.rooms[room] == rr {
		delete(rs.rooms, room)
	}
}

// end stops room's restream (ffmpeg stopped and waited for) and tells
// the room.
func (rs *restreamer) end(room string, by *proto.IdentityView, reason string) error {
	rs.mu.Lock()
	rr := rs.rooms[room]
	if rr == nil || rr.tap == nil { // none, or still starting
		rs.mu.Unlock()
		return errNotRestreaming
	}
	delete(rs.rooms, room)
	tap := rr.tap
	rs.mu.Unlock()
	rr.rs.Stop()
	if tap != nil {
		_ = tap.Close()
	}
	rs.s.log.Info("restream stopped", "room", room, "rtmp_host", rr.rs.Host(), "reason", reason)
	rs.s.dir.Broadcast(room, proto.Encode(proto.TypeRestream, "", proto.RestreamBody{Active: false, By: by, Reason: reason}))
	return nil
}

// endedByItself runs on the restream's goroutine when it gave up (the
// RTMP server stayed unreachable): the tap is detached and the room told.
// It must not wait for the restream (Stop), whose goroutine it is on.
func (rs *restreamer) endedByItself(room string, rr *roomRestream, reason string) {
	rs.mu.Lock()
	if rs.rooms[room] != rr {
		rs.mu.Unlock()
		return // being stopped: end tells the room
	}
	delete(rs.rooms, room)
	rr.ended = true
	tap := rr.tap
	rs.mu.Unlock()
	if tap != nil {
		_ = tap.Close()
	}
	rs.s.dir.Broadcast(room, proto.Encode(proto.TypeRestream, "", proto.RestreamBody{Active: false, Reason: reason}))
}

// left is told that a participant left room: once the room is empty,
// its restream stops after the recording's stop_when_empty unless
// someone is back.
func (rs *restreamer) left(room string) {
	if rs == nil || rs.grace <= 0 || rs.s.dir.Count(room) > 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed || rs.rooms[room] == nil || rs.empty[room] != nil {
		return
	}
	rs.wg.Add(1)
	rs.empty[room] = time.AfterFunc(rs.grace, func() {
		defer rs.wg.Done()
		rs.mu.Lock()
		delete(rs.empty, room)
		closed := rs.closed
		rs.mu.Unlock()
		if closed || rs.s.dir.Count(room) > 0 {
			return
		}
		_ = rs.end(room, nil, restreamEmpty)
	})
}

// meetingEnded stops the room's restream when a moderator ends the
// meeting for everyone.
func (rs *restreamer) meetingEnded(room string, by proto.IdentityView) {
	if rs == nil {
		return
	}
	_ = rs.end(room, &by, restreamEnded) // errNotRestreaming: none ran
}

// close stops every restream (their ffmpeg processes stopped and waited
// for) and the empty-room timers; for the server's shutdown.
func (rs *restreamer) close() {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.closed = true
	for room, t := range rs.empty {
		if t.Stop() {
			rs.wg.Done()
		}
		delete(rs.empty, room)
	}
	var running []string
	for room := range rs.rooms {
		running = append(running, room)
	}
	rs.mu.Unlock()
	rs.wg.Wait()
	var wg sync.WaitGroup
	for _, room := range running {
		wg.Go(func() { _ = rs.end(room, nil, restreamShutdown) })
	}
	wg.Wait()
}

// state is the room's restream as "joined" shows it; nil when the server
// does not restream.
func (rs *restreamer) state(room string) *proto.RestreamBody {
	if rs == nil {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rr := rs.rooms[room]
	if rr == nil || rr.tap == nil { // none, or still starting
		return &proto.RestreamBody{Active: false}
	}
	v := rr.view()
	return &v
}

func (rr *roomRestream) view() proto.RestreamBody {
	by := rr.by
	return proto.RestreamBody{Active: true, Since: rr.since.UnixMilli(), By: &by}
}

// restreamSink hands the restream each track the SFU tap offers, named
// after its participant as the room knows it.
type restreamSink struct {
	rs   *recording.Restream
	dir  *rooms.Directory
	room string
}

func (k *restreamSink) AddTrack(t sfu.TrackInfo, keyframe func()) (webrtc.TrackLocalWriter, error) {
	w, err := k.rs.AddTrack(tapTrackInfo(k.dir, k.room, t), keyframe)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return w, nil
}

func (k *restreamSink) RemoveTrack(t sfu.TrackInfo) { k.rs.RemoveTrack(t.SID) }

// tapTrackInfo describes a track a tap offers as the room knows it: its
// participant's identity and name and the track's source.
func tapTrackInfo(dir *rooms.Directory, room string, t sfu.TrackInfo) recording.TrackInfo {
	info := recording.TrackInfo{SID: t.SID, Identity: t.ParticipantID, Kind: t.Kind, Codec: t.Codec}
	if strings.EqualFold(t.Codec, sfu.MimeTypeRED) {
		info.Codec = webrtc.MimeTypeOpus // the tap unwraps RED
	}
	if ps, ok := dir.Participants(room); ok {
		for _, p := range ps {
			if p.View.SID != t.ParticipantID {
				continue
			}
			info.Identity, info.Name = p.View.Identity, p.View.Name
			for _, tv := range p.View.Tracks {
				if tv.SID == t.SID {
					info.Source = tv.Source
				}
			}
		}
	}
	if info.Source == "" {
		// Not announced yet (the SFU can be ahead of "publish"): the
		// usual source of the kind.
		info.Source = map[string]string{"audio": "microphone", "video": "camera"}[t.Kind]
	}
	return info
}
