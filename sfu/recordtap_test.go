package sfu_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// sinkRecorder is a TrackSink that keeps every packet per track and
// fails the test on a write after RemoveTrack.
type sinkRecorder struct {
	t  *testing.T
	mu sync.Mutex
	// by track SID
	infos    map[string]sfu.TrackInfo
	packets  map[string][]*rtp.Packet
	removed  map[string]int
	keyframe map[string]func()
	refuse   string // codec to refuse
}

func newSinkRecorder(t *testing.T) *sinkRecorder {
	return &sinkRecorder{t: t, infos: map[string]sfu.TrackInfo{}, packets: map[string][]*rtp.Packet{},
		removed: map[string]int{}, keyframe: map[string]func(){}}
}

func (s *sinkRecorder) AddTrack(ti sfu.TrackInfo, kf func()) (webrtc.TrackLocalWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ti.Codec == s.refuse {
		return nil, errors.New("not recorded")
	}
	if _, ok := s.infos[ti.SID]; ok {
		s.t.Errorf("track %s added twice", ti.SID)
	}
	s.infos[ti.SID] = ti
	s.keyframe[ti.SID] = kf
	return sinkWriter{s: s, sid: ti.SID}, nil
}

func (s *sinkRecorder) RemoveTrack(ti sfu.TrackInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[ti.SID]++
}

func (s *sinkRecorder) got(sid string) []*rtp.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.packets[sid])
}

func (s *sinkRecorder) tracks() (added, removed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid := range s.infos {
		added = append(added, sid)
	}
	for sid, n := range s.removed {
		if n != 1 {
			s.t.Errorf("track %s removed %d times", sid, n)
		}
		removed = append(removed, sid)
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

type sinkWriter struct {
	s   *sinkRecorder
	sid string
}

func (w sinkWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.removed[w.sid] > 0 {
		w.s.t.Errorf("write to %s after RemoveTrack", w.sid)
	}
	w.s.packets[w.sid] = append(w.s.packets[w.sid], &rtp.Packet{Header: h.Clone(), Payload: slices.Clone(payload)})
	return len(payload), nil
}

func (w sinkWriter) Write(b []byte) (int, error) {
	p := &rtp.Packet{}
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return w.WriteRTP(&p.Header, p.Payload)
}

// TestRecordTap: a sink attached to a room before anyone publishes gets
// every track: a simulcast camera as one continuous stream starting at a
// key frame and settled on its best layer within the first frames,
// audio, and an in-process track published later whose key frame only
// comes when asked; unpublished
// tracks and the tap's close end them once, with no write after.
func TestRecordTap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		sink := newSinkRecorder(t)
		tap, err := env.sfu.AttachSink("room", sink)
		if err != nil {
			t.Fatal(err)
		}
		// A second sink (a restream beside the recording) gets the
		// same tracks; a third is refused.
		second := newSinkRecorder(t)
		secondTap, err := env.sfu.AttachSink("room", second)
		if err != nil {
			t.Fatalf("second sink on the room: %v", err)
		}
		if _, err := env.sfu.AttachSink("room", newSinkRecorder(t)); !errors.Is(err, sfu.ErrTapped) {
			t.Fatalf("third sink on the room: %v", err)
		}

		ada := env.newClient("room", "PA_ada", sfu.JoinOptions{CanPublish: true})
		ada.AddSimulcastTrack("cam", "q", "h", "f")
		ada.AddTrack("audio", "mic")
		ada.NegotiatePublisher(false)
		testkit.Eventually(t, 10*time.Second, "ada's tracks published", func() bool { return len(ada.Published()) == 2 })
		var camSID, micSID string
		for _, ti := range ada.Published() {
			if ti.Kind == "video" {
				camSID = ti.SID
			} else {
				micSID = ti.SID
			}
		}

		step(t, "the best layer of the camera, from a key frame, continuous", func() {
			testkit.Eventually(t, 10*time.Second, "camera recorded", func() bool { return len(sink.got(camSID)) >= 100 })
			var pkts []sfutest.SimPacket
			for _, p := range sink.got(camSID) {
				sp, ok := sfutest.ParseSimPacket(p)
				if !ok {
					t.Fatalf("unexpected packet %v", p)
				}
				pkts = append(pkts, sp)
			}
			if !pkts[0].Keyframe {
				t.Fatal("the recording does not start at a key frame")
			}
			// The switcher may start on a lower layer whose key frame
			// came first (the layers of a new track appear one by one);
			// from the best layer's first key frame on, only it.
			best := slices.IndexFunc(pkts, func(p sfutest.SimPacket) bool { return p.Layer == 2 })
			if best < 0 || best > len(pkts)/4 {
				t.Fatalf("the best layer recorded from packet %d of %d, want within the first quarter", best, len(pkts))
			}
			for _, p := range pkts[best:] {
				if p.Layer != 2 {
					t.Fatalf("packet of layer %d recorded after the best layer began, want only 2", p.Layer)
				}
			}
			checkContinuous(t, pkts)
		})
		step(t, "audio", func() {
			testkit.Eventually(t, 5*time.Second, "microphone recorded", func() bool { return len(sink.got(micSID)) >= 20 })
		})
		step(t, "the second sink, fed alike, closed on its own", func() {
			testkit.Eventually(t, 5*time.Second, "both tracks in the second sink", func() bool {
				return len(second.got(camSID)) >= 20 && len(second.got(micSID)) >= 20
			})
			if err := secondTap.Close(); err != nil {
				t.Fatal(err)
			}
			added, removed := second.tracks()
			if len(added) != 2 || !slices.Equal(added, removed) {
				t.Fatalf("second sink: added %v, removed %v", added, removed)
			}
			n := len(sink.got(camSID))
			testkit.Eventually(t, 5*time.Second, "the first sink still fed", func() bool { return len(sink.got(camSID)) > n+10 })
		})

		var kf atomic.Int64
		var lt *sfu.LocalTrack
		step(t, "a track published later, its key frame requested", func() {
			lt, err = env.sfu.PublishLocal("room", sfu.LocalTrackOptions{
				ParticipantID: "PA_obs", ClientTrackID: "rtmp-video",
				Codec:             webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
				OnKeyframeRequest: func() { kf.Add(1) },
			})
			if err != nil {
				t.Fatal(err)
			}
			sid := lt.Info().SID
			// Key frames only when asked: the recording's first frame
			// depends on the tap's request.
			for i := uint16(0); len(sink.got(sid)) < 20; i++ {
				if i > 2000 {
					t.Fatal("the later track was not recorded")
				}
				time.Sleep(5 * time.Millisecond)
				if err := lt.WriteRTP(sfu.VP8Packet(i, kf.Load() > 0 && i%25 == 0)); err != nil {
					t.Fatal(err)
				}
			}
			if first := sink.got(sid)[0]; first.Payload[1]&0x01 != 0 {
				t.Fatal("the later track's recording does not start at a key frame")
			}
			if err := lt.Close(); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 5*time.Second, "the later track removed", func() bool {
				_, removed := sink.tracks()
				return slices.Equal(removed, []string{sid})
			})
		})

		step(t, "closing the tap ends the others", func() {
			if err := tap.Close(); err != nil {
				t.Fatal(err)
			}
			added, removed := sink.tracks()
			if len(added) != 3 || !slices.Equal(added, removed) {
				t.Fatalf("added %v, removed %v", added, removed)
			}
			n := len(sink.got(camSID))
			time.Sleep(200 * time.Millisecond)
			if m := len(sink.got(camSID)); m != n {
				t.Fatalf("%d packets written after close", m-n)
			}
			if _, err := env.sfu.AttachSink("room", newSinkRecorder(t)); err != nil {
				t.Fatalf("attach after close: %v", err)
			}
		})
	})
}
