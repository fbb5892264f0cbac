package rtmp

import (
	"context"
	"sync"
	"time"

	"github.com/pion/rtp"
)

type fakeKeys map[string]error

func (k fakeKeys) Lookup(_ context.Context, key string) (Binding, error) {
	err, ok := k[key]
	if !ok {
		return Binding{}, ErrUnknownKey
	}
	if err != nil {
		return Binding{}, err
	}
	return Binding{Room: "room-" + key, Name: "OBS", Identity: "ingress-" + key}, nil
}

type recordedPacket struct {
	at  time.Time
	pkt *rtp.Packet
}

type fakeTrack struct {
	mu   sync.Mutex
	spec TrackSpec
	pkts []recordedPacket
	// first is closed at the first packet.
	first     chan struct{}
	firstOnce sync.Once
	err       error // returned by WriteRTP after recording the packet
}

func (f *fakeTrack) WriteRTP(p *rtp.Packet) error {
	f.mu.Lock()
	f.pkts = append(f.pkts, recordedPacket{time.Now(), p})
	err := f.err
	f.mu.Unlock()
	defer f.firstOnce.Do(func() { close(f.first) })
	if err != nil {
		return err
	}
	f.firstOnce.Do(func() { close(f.first) })
	return nil
}

func (f *fakeTrack) packets() []*rtp.Packet {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*rtp.Packet, len(f.pkts))
	for i, r := range f.pkts {
		out[i] = r.pkt
	}
	return out
}

type fakeSession struct {
	info StreamInfo

	mu          sync.Mutex
	video       *fakeTrack
	audio       *fakeTrack
	unavailable []error
	closed      bool
	closedCh    chan struct{}
}

func (s *fakeSession) AddVideoTrack(spec TrackSpec) (TrackWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.video = &fakeTrack{spec: spec, first: make(chan struct{})}
	return s.video, nil
}

func (s *fakeSession) AddAudioTrack(spec TrackSpec) (TrackWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audio = &fakeTrack{spec: spec, first: make(chan struct{})}
	return s.audio, nil
}

func (s *fakeSession) AudioUnavailable(reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = append(s.unavailable, reason)
}

func (s *fakeSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("Session closed twice")
	}
	s.closed = true
	close(s.closedCh)
	return nil
}

func (s *fakeSession) tracks() (v, a *fakeTrack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.video, s.audio
}

type fakeSink struct {
	mu       sync.Mutex
	sessions []*fakeSession
	started  chan *fakeSession
}

func newFakeSink() *fakeSink { return &fakeSink{started: make(chan *fakeSession, 64)} }

func (f *fakeSink) Start(_ context.Context, info StreamInfo) (Session, error) {
	s := &fakeSession{info: info, closedCh: make(chan struct{})}
	f.mu.Lock()
	f.sessions = append(f.sessions, s)
	f.mu.Unlock()
	select {
	case f.started <- s:
	default: // fuzzing starts many; nobody waits for them
	}
	return s, nil
}

func (f *fakeSink) all() []*fakeSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeSession(nil), f.sessions...)
}
