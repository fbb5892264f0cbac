package sfu_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestRenegotiation: several publishers and tracks, tracks added and
// removed mid-call, server-side mute, ICE restarts on both connections,
// and never a second subscriber offer while one is outstanding.
func TestRenegotiation(t *testing.T) {
	synctest.Test(t, testRenegotiation)
}

func testRenegotiation(t *testing.T) {
	env := newTestEnv(t, sfu.DefaultConfig())
	both := sfu.JoinOptions{CanPublish: true, CanSubscribe: true}
	ada := env.newClient("r", "PA_ada", both)
	ada.AddTrack("video", "ada-cam")
	adaMic := ada.AddTrack("audio", "ada-mic")
	ada.NegotiatePublisher(false)
	bob := env.newClient("r", "PA_bob", both)
	bob.Publish()
	cyd := env.newClient("r", "PA_cyd", sfu.JoinOptions{CanSubscribe: true})

	sids := func(c *sfutest.Client) map[string]sfu.TrackInfo {
		out := map[string]sfu.TrackInfo{}
		for _, ti := range c.Published() {
			out[ti.ClientTrackID] = ti
		}
		return out
	}
	testkit.Eventually(t, 5*time.Second, "tracks published", func() bool { return len(sids(ada)) == 2 && len(sids(bob)) == 1 })
	adaCam, adaMicInfo, bobCam := sids(ada)["ada-cam"], sids(ada)["ada-mic"], sids(bob)["cam-PA_bob"]
	if adaMicInfo.Kind != "audio" || adaMicInfo.Codec != webrtc.MimeTypeOpus {
		t.Fatalf("audio track info %+v", adaMicInfo)
	}
	flowing := func(c *sfutest.Client, sid string) {
		t.Helper()
		n0 := c.Received(sid)
		testkit.Eventually(t, 5*time.Second, c.ID+" receives "+sid, func() bool { return c.Received(sid) >= n0+10 })
	}
	for _, c := range []*sfutest.Client{bob, cyd} {
		flowing(c, adaCam.SID)
		flowing(c, adaMicInfo.SID)
	}
	flowing(ada, bobCam.SID)
	flowing(cyd, bobCam.SID)
	if n := counterValue(t, env, "parley_sfu_packets_forwarded_total", ""); n == 0 {
		t.Fatal("no forwarded packets counted")
	}
	if g := gaugeValue(t, env, "parley_sfu_tracks"); g != 3 {
		t.Fatalf("parley_sfu_tracks = %v, want 3", g)
	}
	if got := env.sfu.Rooms(); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("rooms %v", got)
	}

	step(t, "publisher adds a track mid-call", func() {
		ada.AddTrack("video", "ada-screen")
		ada.NegotiatePublisher(false)
		testkit.Eventually(t, 5*time.Second, "screen published", func() bool { return len(sids(ada)) == 3 })
		screen := sids(ada)["ada-screen"]
		flowing(bob, screen.SID)
		flowing(cyd, screen.SID)
	})

	step(t, "publisher removes a track", func() {
		ada.RemoveTrack(adaMic)
		ada.NegotiatePublisher(false)
		testkit.Eventually(t, 5*time.Second, "mic unpublished", func() bool {
			un := ada.Unpublished()
			return len(un) == 1 && un[0].SID == adaMicInfo.SID
		})
		for _, c := range []*sfutest.Client{bob, cyd} {
			testkit.Eventually(t, 5*time.Second, c.ID+"'s mic track ends", func() bool { return c.RemoteTracks()[adaMicInfo.SID].Ended })
		}
		for _, st := range env.sfu.RoomStats("r") {
			if st.SID == adaMicInfo.SID {
				t.Fatal("unpublished track still in room stats")
			}
		}
	})

	step(t, "server mute stops forwarding, unmute resumes", func() {
		if err := ada.Peer.SetTrackMuted(adaCam.SID, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // packets already queued drain
		n0 := bob.Received(adaCam.SID)
		time.Sleep(300 * time.Millisecond)
		if n := bob.Received(adaCam.SID); n != n0 {
			t.Fatalf("muted track still forwarded: %d -> %d packets", n0, n)
		}
		if st := ada.Peer.Stats(); !slices.ContainsFunc(st, func(s sfu.TrackStats) bool { return s.SID == adaCam.SID && s.Muted }) {
			t.Fatalf("stats do not show the mute: %+v", st)
		}
		if err := ada.Peer.SetTrackMuted(adaCam.SID, false); err != nil {
			t.Fatal(err)
		}
		flowing(bob, adaCam.SID)
	})

	step(t, "subscriber ICE restart", func() {
		offers := bob.Offers()
		if err := bob.Peer.RestartICE(); err != nil {
			t.Fatal(err)
		}
		before := sfutest.ICEUfrag(bob.Sub.CurrentRemoteDescription().SDP)
		// An offer of the previous step may still be on its way and be
		// answered first (the restart waits for it): wait for the one
		// with new credentials.
		testkit.Eventually(t, 5*time.Second, "restart offer answered", func() bool {
			return bob.Offers() > offers && !bob.OfferOutstanding() &&
				sfutest.ICEUfrag(bob.Sub.CurrentRemoteDescription().SDP) != before
		})
		if after := sfutest.ICEUfrag(bob.Sub.CurrentRemoteDescription().SDP); after == before {
			t.Fatalf("restart offer kept ufrag %q", before)
		}
		flowing(bob, adaCam.SID)
		flowing(ada, bobCam.SID)
	})

	step(t, "publisher ICE restart", func() {
		before := sfutest.ICEUfrag(ada.Pub.RemoteDescription().SDP)
		answer := ada.NegotiatePublisher(true)
		if after := sfutest.ICEUfrag(answer.SDP); after == "" || after == before {
			t.Fatalf("SFU answer kept ufrag %q after an ICE restart offer", before)
		}
		flowing(bob, adaCam.SID)
	})

	for _, c := range []*sfutest.Client{ada, bob, cyd} {
		if g := c.Glare(); g != 0 {
			t.Fatalf("%s saw %d glaring offers", c.ID, g)
		}
	}
}

func gaugeValue(t *testing.T, env *testEnv, name string) float64 {
	t.Helper()
	mfs, err := env.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestAPIErrors covers the errors signaling branches on.
func TestAPIErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		viewer, err := env.sfu.Join("r", "PA_v", sfu.JoinOptions{CanSubscribe: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.sfu.Join("r", "PA_v", sfu.JoinOptions{CanSubscribe: true}); !errors.Is(err, sfu.ErrParticipantExists) {
			t.Fatalf("duplicate join: %v", err)
		}
		if _, err := viewer.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0"}); !errors.Is(err, sfu.ErrNotAllowed) {
			t.Fatalf("offer without publish grant: %v", err)
		}
		if err := viewer.AddICECandidate(sfu.Publisher, webrtc.ICECandidateInit{}); !errors.Is(err, sfu.ErrNotAllowed) {
			t.Fatalf("publisher candidate without publish grant: %v", err)
		}
		if err := viewer.HandleAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0"}); err == nil {
			t.Fatal("answer without an offer accepted")
		}
		if err := viewer.Unpublish("TR_nope"); !errors.Is(err, sfu.ErrTrackNotFound) {
			t.Fatalf("unpublish unknown: %v", err)
		}
		if err := viewer.SetTrackMuted("TR_nope", true); !errors.Is(err, sfu.ErrTrackNotFound) {
			t.Fatalf("mute unknown: %v", err)
		}
		pubOnly, err := env.sfu.Join("r", "PA_p", sfu.JoinOptions{CanPublish: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubOnly.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "garbage"}); err == nil {
			t.Fatal("garbage SDP accepted")
		}
		if err := pubOnly.RestartICE(); !errors.Is(err, sfu.ErrNotAllowed) {
			t.Fatalf("subscriber restart without subscribe grant: %v", err)
		}
		if err := viewer.Close(); err != nil {
			t.Fatal(err)
		}
		if err := viewer.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if err := pubOnly.Close(); err != nil {
			t.Fatal(err)
		}
		if got := env.sfu.Rooms(); len(got) != 0 {
			t.Fatalf("empty room not removed: %v", got)
		}
	})
}

// TestRunCloses: after Run returns, peers are closed and Join fails.
func TestRunCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true, CanSubscribe: true})
		ada.Publish()
		bob := env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		testkit.Eventually(t, 5*time.Second, "media", func() bool { return len(bob.RemoteTracks()) == 1 })
		// newTestEnv's cleanup cancels Run; do it now through a second SFU
		// handle check: Run must close everything and later Joins fail.
		env.stop()
		if _, err := env.sfu.Join("r", "PA_late", sfu.JoinOptions{}); !errors.Is(err, sfu.ErrClosed) {
			t.Fatalf("join after Run: %v", err)
		}
		if got := env.sfu.Rooms(); len(got) != 0 {
			t.Fatalf("rooms after Run: %v", got)
		}
	})
}

// TestLocalPublish: an in-process publisher (the future RTMP/WHIP ingest)
// reaches WebRTC subscribers, gets key-frame requests, and unpublishes.
func TestLocalPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		var kf atomic.Int64
		lt, err := env.sfu.PublishLocal("live", sfu.LocalTrackOptions{
			ParticipantID: "PA_obs", ClientTrackID: "rtmp-video",
			Codec:             webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
			OnKeyframeRequest: func() { kf.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		bob := env.newClient("live", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		sid := lt.Info().SID
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				// Key frames only when asked: the subscriber's first
				// picture depends on the request reaching us.
				if err := lt.WriteRTP(sfu.VP8Packet(uint16(i), kf.Load() > 0 && i%25 == 0)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		testkit.Eventually(t, 5*time.Second, "bob receives the ingest track", func() bool { return bob.Received(sid) >= 20 })
		if kf.Load() == 0 {
			t.Fatal("no key-frame request reached the ingest")
		}
		if rt := bob.RemoteTracks()[sid]; rt.StreamID != "PA_obs|"+sid {
			t.Fatalf("stream id %q", rt.StreamID)
		}
		close(stop)
		<-done
		if err := lt.Close(); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "track ends at bob", func() bool { return bob.RemoteTracks()[sid].Ended })
		if err := lt.WriteRTP(sfu.VP8Packet(1, true)); !errors.Is(err, sfu.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
	})
}
