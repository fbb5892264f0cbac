package sfu_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// TestCall runs one call on the virtual network: a publisher, one
// subscriber that joined before it published and one that joined after,
// then checks forwarding, NACK recovery on both legs and PLI throttling.
func TestCall(t *testing.T) {
	synctest.Test(t, testCall)
}

func testCall(t *testing.T) {
	cfg := sfu.DefaultConfig()
	env := newTestEnv(t, cfg)
	opts := sfu.JoinOptions{CanPublish: true, CanSubscribe: true}
	bob := env.newClient("standup", "PA_bob", opts) // subscribes before anything is published
	ada := env.newClient("standup", "PA_ada", opts)
	ada.Publish()

	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool {
		return len(ada.Published()) == 1
	})
	info := ada.Published()[0]
	if info.Kind != "video" || !strings.EqualFold(info.Codec, "video/VP8") || info.ClientTrackID != "cam-PA_ada" ||
		!strings.HasPrefix(info.SID, "TR_") || info.ParticipantID != "PA_ada" {
		t.Fatalf("track info %+v", info)
	}
	cyd := env.newClient("standup", "PA_cyd", sfu.JoinOptions{CanSubscribe: true}) // joins after

	for _, c := range []*sfutest.Client{bob, cyd} {
		testkit.Eventually(t, 10*time.Second, c.ID+" receiving media", func() bool { return c.Received(info.SID) >= 50 })
		rt := c.RemoteTracks()[info.SID]
		if rt.StreamID != "PA_ada|"+info.SID || rt.ID != info.SID {
			t.Fatalf("%s: stream %q track %q", c.ID, rt.StreamID, rt.ID)
		}
	}
	if got := ada.Received(info.SID); got != 0 {
		t.Fatalf("publisher received its own track (%d packets)", got)
	}

	step(t, "subscriber leg loss recovered from cache", func() {
		before := env.sfu.RoomStats("standup")[0]
		// Drop the next RTP packet the SFU sends to bob, once.
		var dropped atomic.Int32
		dropped.Store(-1)
		bobIP := bob.IP
		env.vnet.Router.AddChunkFilter(func(ch vnet.Chunk) bool {
			if dropped.Load() >= 0 || !strings.HasPrefix(ch.SourceAddr().String(), sfutest.SFUIP+":") ||
				!strings.HasPrefix(ch.DestinationAddr().String(), bobIP+":") {
				return true
			}
			b := ch.UserData()
			// SRTP leaves the RTP header in clear: version 2, and a
			// payload type below the RTCP range.
			if len(b) < 12 || b[0]>>6 != 2 || b[1]&0x7f >= 72 && b[1]&0x7f <= 76 {
				return true
			}
			dropped.Store(int32(b[2])<<8 | int32(b[3]))
			return false
		})
		testkit.Eventually(t, 5*time.Second, "a packet dropped", func() bool { return dropped.Load() >= 0 })
		seq := uint16(dropped.Load())
		testkit.Eventually(t, 5*time.Second, "bob receives the retransmission", func() bool {
			return bob.RemoteTracks()[info.SID].Seqs[seq] == 1
		})
		after := env.sfu.RoomStats("standup")[0]
		if after.NACKsReceived <= before.NACKsReceived || after.Retransmits <= before.Retransmits {
			t.Fatalf("stats before %+v after %+v", before, after)
		}
		if n := counterValue(t, env, "parley_sfu_retransmits_total", ""); n < 1 {
			t.Fatalf("parley_sfu_retransmits_total = %v", n)
		}
	})

	step(t, "publisher leg loss NACKed upstream", func() {
		// Make ada's sender skip a sequence number a little ahead.
		target := uint16(ada.Sent() + 20)
		ada.SkipSeq(target)
		testkit.Eventually(t, 5*time.Second, "ada receives a NACK for the lost packet", func() bool {
			return ada.Nacked(target) > 0
		})
		if st := ada.Peer.Stats()[0]; st.NACKsSent == 0 || st.PacketsLost == 0 {
			t.Fatalf("stats %+v", st)
		}
		if n := counterValue(t, env, "parley_sfu_nacks_total", "out"); n < 1 {
			t.Fatalf("nacks out = %v", n)
		}
	})

	step(t, "PLI burst reaches publisher once", func() {
		// Let any key-frame request in flight age past the throttle window.
		time.Sleep(cfg.PLIInterval + 100*time.Millisecond)
		plis0 := ada.PLIs()
		st0 := ada.Peer.Stats()[0]
		ssrc := bob.RemoteTracks()[info.SID].SSRC
		var burst []rtcp.Packet
		for range 5 {
			burst = append(burst, &rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)})
		}
		if err := bob.Sub.WriteRTCP(burst); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "PLI at the publisher", func() bool { return ada.PLIs() > plis0 })
		time.Sleep(cfg.PLIInterval / 2)
		st := ada.Peer.Stats()[0]
		if got := ada.PLIs() - plis0; got != 1 || st.PLIsReceived-st0.PLIsReceived != 5 || st.PLIsSent-st0.PLIsSent != 1 {
			t.Fatalf("publisher got %d PLIs; SFU received %d, sent %d (want 1, 5, 1)",
				got, st.PLIsReceived-st0.PLIsReceived, st.PLIsSent-st0.PLIsSent)
		}
	})

	step(t, "RTCP reports both ways", func() {
		testkit.Eventually(t, 5*time.Second, "receiver reports at the publisher", func() bool { return ada.ReceiverReports() > 0 })
		testkit.Eventually(t, 5*time.Second, "sender reports at subscribers", func() bool {
			return bob.SenderReports() > 0 && cyd.SenderReports() > 0
		})
		if st := ada.Peer.Stats()[0]; st.BitrateBps <= 0 || st.Packets == 0 || st.Bytes == 0 || st.LastPacketTime.IsZero() {
			t.Fatalf("stats %+v", st)
		}
	})

	step(t, "leave unpublishes", func() {
		if err := ada.Peer.Close(); err != nil {
			t.Fatal(err)
		}
		un := len(ada.Unpublished())
		if un != 1 {
			t.Fatalf("TrackUnpublished events: %d", un)
		}
		if st := env.sfu.RoomStats("standup"); len(st) != 0 {
			t.Fatalf("tracks left in room: %+v", st)
		}
		// bob's subscriber connection is renegotiated without the track.
		for _, c := range []*sfutest.Client{bob, cyd} {
			testkit.Eventually(t, 5*time.Second, c.ID+"'s remote track ends", func() bool {
				return c.RemoteTracks()[info.SID].Ended
			})
		}
	})
}

func counterValue(t *testing.T, env *testEnv, name, label string) float64 {
	t.Helper()
	mfs, err := env.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// step names a phase of a test that runs inside a synctest bubble, where
// t.Run is not allowed.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	t.Log("step:", name)
	f()
}

// TestSlowSubscriber: one subscriber's writer stalls (as a congested
// ICE-TCP connection would); the other keeps receiving every packet, and
// the stalled one resumes at a key frame once it recovers.
func TestSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		stall := make(chan struct{})
		var stalled atomic.Bool
		stalled.Store(true)
		sfu.SetBeforeWrite(env.sfu, func(id string) {
			if id == "PA_slow" && stalled.Load() {
				<-stall
			}
		})
		ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
		ada.Publish()
		testkit.Eventually(t, 5*time.Second, "published", func() bool { return len(env.sfu.RoomStats("r")) == 1 })
		sid := env.sfu.RoomStats("r")[0].SID
		fast := env.newClient("r", "PA_fast", sfu.JoinOptions{CanSubscribe: true})
		slow := env.newClient("r", "PA_slow", sfu.JoinOptions{CanSubscribe: true})
		// The slow writer is stuck on its first packet; a second of media
		// (200 packets) overflows its queue.
		testkit.Eventually(t, 5*time.Second, "fast receives a second of media", func() bool { return fast.Received(sid) >= 200 })
		st := env.sfu.RoomStats("r")[0]
		if st.Drops[sfu.DropQueueFull] == 0 {
			t.Fatalf("stalled subscriber's drops not counted: %+v", st.Drops)
		}
		if n := counterValue(t, env, "parley_sfu_drops_total", sfu.DropQueueFull); n == 0 {
			t.Fatal("parley_sfu_drops_total{reason=queue_full} is 0")
		}
		rt := fast.RemoteTracks()[sid]
		lo, hi := uint16(65535), uint16(0)
		for s := range rt.Orig {
			lo, hi = min(lo, s), max(hi, s)
		}
		for s := lo; s != hi; s++ {
			if rt.Orig[s] == 0 {
				t.Fatalf("fast subscriber missed packet %d (got %d..%d)", s, lo, hi)
			}
		}

		stalled.Store(false)
		close(stall)
		n0 := slow.Received(sid)
		testkit.Eventually(t, 5*time.Second, "slow subscriber resumes", func() bool { return slow.Received(sid) >= n0+100 })
	})
}

// TestH264Call: an H.264 publisher reaches a subscriber with the same
// profile, and a new subscriber's key-frame wait ends at an IDR.
func TestH264Call(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(t, sfu.DefaultConfig())
		ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
		ada.AddTrackCodec(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "ada-h264")
		ada.NegotiatePublisher(false)
		bob := env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		testkit.Eventually(t, 5*time.Second, "published", func() bool { return len(env.sfu.RoomStats("r")) == 1 })
		st := env.sfu.RoomStats("r")[0]
		if st.Codec != webrtc.MimeTypeH264 {
			t.Fatalf("codec %q", st.Codec)
		}
		testkit.Eventually(t, 5*time.Second, "bob receives H.264", func() bool { return bob.Received(st.SID) >= 20 })
		codec := bob.RemoteTracks()[st.SID].Codec
		if !strings.Contains(codec.SDPFmtpLine, "profile-level-id=42e01f") || !strings.Contains(codec.SDPFmtpLine, "packetization-mode=1") {
			t.Fatalf("subscriber negotiated %+v", codec)
		}
	})
}
