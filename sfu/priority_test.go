package sfu

import (
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// selectionInputs is what sub's layer choice ranks each of tracks by, as
// the selection round builds it (bwe.go selectInfo).
func selectionInputs(sub *Peer, tracks []*publishedTrack, now time.Time) map[string]simulcast.TrackInfo {
	out := map[string]simulcast.TrackInfo{}
	for _, t := range tracks {
		d := newDownTrack(t, sub)
		info := d.selectInfo(now)
		out[t.info.SID] = info
	}
	return out
}

// TestSelectionPriorities: a subscriber's layer choice sees a track that
// signaling marked as a screen share as Screen, and the video of the
// participant the room's speaker selection made active as Speaker (its
// screen share stays Screen); other cameras and audio are neither. A
// participant that joins after the speaker was chosen knows it at once,
// and the mark moves when someone else becomes the active speaker.
func TestSelectionPriorities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := newMetrics(nil)
		if err != nil {
			t.Fatal(err)
		}
		s := &SFU{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), m: m, rooms: map[string]*room{}}
		t.Cleanup(func() { _ = s.Close() })
		join := func(id string) *Peer {
			p, err := s.Join("r", id, JoinOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		sub, ada, bob := join("PA_sub"), join("PA_ada"), join("PA_bob")
		publish := func(owner *Peer, sid, kind string, rids ...string) *publishedTrack {
			codec, rate := "video/VP8", uint32(90000)
			if kind == "audio" {
				codec, rate = "audio/opus", 48000
			}
			tr := newPublishedTrack(s, trackParams{owner: owner, room: "r", clockRate: rate, rids: rids,
				info:         TrackInfo{SID: sid, ParticipantID: owner.id, Kind: kind, Codec: codec},
				sendPLI:      func() error { return nil },
				sendLayerPLI: func(uint32) error { return nil }})
			owner.mu.Lock()
			owner.published[sid] = tr
			owner.mu.Unlock()
			return tr
		}
		tracks := []*publishedTrack{
			publish(ada, "TR_screen", "video", "q", "f"),
			publish(ada, "TR_adacam", "video", "q", "h", "f"),
			publish(ada, "TR_adamic", "audio"),
			publish(bob, "TR_bobcam", "video"),
		}
		if err := ada.SetScreenShare("TR_screen"); err != nil {
			t.Fatal(err)
		}
		if err := bob.SetScreenShare("TR_screen"); !errors.Is(err, ErrTrackNotFound) {
			t.Fatalf("another participant's track marked: %v", err)
		}

		type want struct {
			kind    simulcast.Kind
			speaker bool
		}
		check := func(who string, p *Peer, w map[string]want) {
			t.Helper()
			got := selectionInputs(p, tracks, time.Now())
			for sid, w := range w {
				if g := got[sid]; g.Kind != w.kind || g.Speaker != w.speaker {
					t.Errorf("%s: %s is kind %d speaker %v, want kind %d speaker %v", who, sid, g.Kind, g.Speaker, w.kind, w.speaker)
				}
			}
		}
		check("before anyone spoke", sub, map[string]want{
			"TR_screen": {simulcast.Screen, false},
			"TR_adacam": {simulcast.Camera, false},
			"TR_adamic": {simulcast.Audio, false},
			"TR_bobcam": {simulcast.Camera, false},
		})

		// talk feeds 20 ms audio frames at the given levels (-dBov) to
		// the room's speaker selection until sub's layer choice sees id
		// as the active speaker.
		adaLevel, bobLevel := s.levelSource("r", "PA_ada"), s.levelSource("r", "PA_bob")
		talk := func(ada, bob uint8, id string) {
			t.Helper()
			for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
				if a := sub.activeSpeaker.Load(); a != nil && *a == id {
					return
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("%s never became the active speaker", id)
				}
				adaLevel.Observe(ada)
				bobLevel.Observe(bob)
			}
		}
		talk(20, 127, "PA_ada")
		adaSpeaks := map[string]want{
			"TR_screen": {simulcast.Screen, false},
			"TR_adacam": {simulcast.Camera, true},
			"TR_adamic": {simulcast.Audio, false},
			"TR_bobcam": {simulcast.Camera, false},
		}
		check("ada speaking", sub, adaSpeaks)
		check("a newcomer after ada spoke", join("PA_cyd"), adaSpeaks)

		talk(127, 20, "PA_bob")
		check("bob speaking", sub, map[string]want{
			"TR_screen": {simulcast.Screen, false},
			"TR_adacam": {simulcast.Camera, false},
			"TR_bobcam": {simulcast.Camera, true},
		})
	})
}

// TestPausedScreenLayerCost: a screen share's top layer, paused by
// dynacast, is offered to the layer choice at what it costs when sent
// (not at the cost of a camera's second layer), so a subscriber with
// 1.2 Mbit/s does not take it, while one with 4 Mbit/s does. A camera's
// paused layers keep their costs.
func TestPausedScreenLayerCost(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	newTrack := func(sid string, rids ...string) *publishedTrack {
		return newPublishedTrack(h.s, trackParams{room: "r", clockRate: 90000, rids: rids,
			info:         TrackInfo{SID: sid, ParticipantID: "PA_pub", Kind: "video", Codec: "video/VP8"},
			sendLayerPLI: func(uint32) error { return nil }})
	}
	screen, cam := newTrack("TR_screen", "q", "f"), newTrack("TR_cam", "q", "h", "f")
	screen.screen.Store(true)
	for l := range 3 {
		if got := cam.nominalBitrate(l); got != nominalLayerBitrate[l] {
			t.Errorf("camera layer %d offered at %d bit/s, want %d", l, got, nominalLayerBitrate[l])
		}
	}
	now := time.Now()
	for _, c := range []struct {
		estimate int
		want     simulcast.Layer
	}{{1_200_000, 0}, {4_000_000, 1}} {
		// q arrives at 400 kbit/s (5 fps of a busy screen), f is paused.
		info := simulcast.TrackInfo{ID: "TR_screen", Kind: simulcast.Screen, Visible: true, TileWidth: 1280, TileHeight: 720,
			Layers: []simulcast.LayerInfo{{Width: 640, Height: 360, Bitrate: 400_000}, {Width: 1280, Height: 720, Bitrate: screen.nominalBitrate(1)}}}
		dec, _ := simulcast.NewSelector(simulcast.SelectorConfig{}).Select(now, c.estimate, []simulcast.TrackInfo{info}, nil)
		if dec[0].Layer != c.want {
			t.Errorf("estimate %d bit/s: layer %d, want %d", c.estimate, dec[0].Layer, c.want)
		}
	}
}
