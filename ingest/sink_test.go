package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func sinkConfig() Config {
	cfg := DefaultConfig()
	cfg.WHIP.Enabled = false
	cfg.ReconnectGrace = 300 * time.Millisecond
	return cfg
}

func h264Spec() rtmp.TrackSpec {
	return rtmp.TrackSpec{MimeType: "video/H264", ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		PayloadType: 96, SSRC: 1111, Width: 640, Height: 360}
}

func opusSpec() rtmp.TrackSpec {
	return rtmp.TrackSpec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1", PayloadType: 111, SSRC: 2222}
}

// mediaSource writes what rtmp's remuxer would: a key frame (STAP-A
// SPS+PPS, then the IDR) every 10 frames and a single-NAL delta frame
// otherwise at 30 fps, and a 20 ms Opus packet whose payload carries its
// index.
type mediaSource struct {
	video, audio rtmp.TrackWriter
	vseq, aseq   uint16
	frame        int
	aidx         uint32
}

func stapA(nalus ...[]byte) []byte {
	out := []byte{nalSTAPA}
	for _, n := range nalus {
		out = append(out, byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}

func (m *mediaSource) writeFrame(t testing.TB) {
	ts := uint32(m.frame * 3000)
	var payloads [][]byte
	if m.frame%10 == 0 {
		payloads = [][]byte{stapA(testSPS, testPPS), append([]byte{0x65, 0x88}, make([]byte, 300)...)}
	} else {
		payloads = [][]byte{append([]byte{0x41, 0x9a}, make([]byte, 100)...)}
	}
	for i, pl := range payloads {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: m.vseq, Timestamp: ts,
			SSRC: 1111, Marker: i == len(payloads)-1}, Payload: pl}
		m.vseq++
		if err := m.video.WriteRTP(p); err != nil {
			t.Errorf("video WriteRTP: %v", err)
		}
	}
	m.frame++
}

func (m *mediaSource) writeAudio(t testing.TB) {
	pl := []byte{0xfc, byte(m.aidx >> 16), byte(m.aidx >> 8), byte(m.aidx), 0xAA, 0xBB}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: m.aseq, Timestamp: m.aidx * 960,
		SSRC: 2222, Marker: m.aidx == 0}, Payload: pl}
	m.aseq++
	m.aidx++
	if err := m.audio.WriteRTP(p); err != nil {
		t.Errorf("audio WriteRTP: %v", err)
	}
}

// run writes media until stop is closed (at most 20 s).
func (m *mediaSource) run(t testing.TB, stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; time.Since(start) < 20*time.Second; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if m.video != nil && i%3 == 0 {
			m.writeFrame(t)
		}
		if m.audio != nil && i%2 == 0 {
			m.writeAudio(t)
		}
	}
}

func startStream(t *testing.T, svc *Service, b rtmp.Binding) rtmp.Session {
	t.Helper()
	sess, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: b, StreamID: "RT_test", RemoteAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestSinkPublishesToViewer(t *testing.T) {
	s := startSFU(t)
	dir := &fakeDir{}
	svc, reg := startService(t, sinkConfig(), Deps{Media: s, Directory: dir})
	v := newViewer(t, s, "stage", "PA_viewer")

	sess := startStream(t, svc, rtmp.Binding{Room: "stage", Name: "Main Stage"})
	streams := svc.Streams()
	if len(streams) != 1 || streams[0].Identity != "ingress-main-stage" || streams[0].Protocol != "rtmp" {
		t.Fatalf("streams %+v", streams)
	}
	pid := streams[0].ParticipantID
	if !strings.HasPrefix(pid, "PA_") {
		t.Fatalf("participant id %q", pid)
	}
	vw, err := sess.AddVideoTrack(h264Spec())
	if err != nil {
		t.Fatal(err)
	}
	aw, err := sess.AddAudioTrack(opusSpec())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"add stage " + pid + " ingress-main-stage Main Stage",
		"track stage " + pid + " video video/H264 camera",
		"track stage " + pid + " audio audio/opus microphone",
	}
	if got := dir.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("directory calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	src := &mediaSource{video: vw, audio: aw}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { src.run(t, stop) })
	defer func() { close(stop); wg.Wait() }()

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("viewer: video %d audio %d, pc %s, sfu stats %+v", v.ReceivedKind(webrtc.RTPCodecTypeVideo),
				v.ReceivedKind(webrtc.RTPCodecTypeAudio), v.Sub.ConnectionState(), s.RoomStats("stage"))
		}
	})
	testkit.Eventually(t, 15*time.Second, "viewer receives H.264 and Opus", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 40 && v.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 40
	})
	vt, _ := v.TrackOfKind(webrtc.RTPCodecTypeVideo)
	at, _ := v.TrackOfKind(webrtc.RTPCodecTypeAudio)
	if !strings.HasPrefix(vt.StreamID, pid+"|") || !strings.HasPrefix(at.StreamID, pid+"|") {
		t.Fatalf("stream ids %q %q, want %s|<sid>", vt.StreamID, at.StreamID, pid)
	}
	if !strings.EqualFold(vt.Codec.MimeType, "video/H264") || !strings.EqualFold(at.Codec.MimeType, "audio/opus") {
		t.Fatalf("codecs %s %s", vt.Codec.MimeType, at.Codec.MimeType)
	}
	// The viewer starts at a key frame with its parameter sets.
	checkParamSetsBeforeIDR(t, vt.Packets)
	// Audio payloads arrive intact and in order.
	prev := -1
	for _, p := range at.Packets {
		if len(p.Payload) != 6 || p.Payload[0] != 0xfc || p.Payload[4] != 0xAA {
			t.Fatalf("audio payload %x", p.Payload)
		}
		idx := int(p.Payload[1])<<16 | int(p.Payload[2])<<8 | int(p.Payload[3])
		if idx <= prev {
			t.Fatalf("audio packet %d after %d", idx, prev)
		}
		prev = idx
	}

	// A viewer's PLI cannot reach RTMP: it is counted.
	before := svc.Streams()[0].KeyframeRequests
	if err := v.SendPLI(vt.SSRC); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "PLI counted", func() bool { return svc.Streams()[0].KeyframeRequests > before })
	if got := counterValue(t, reg, "parley_ingest_keyframe_requests_total", "rtmp", "unsupported"); got < 1 {
		t.Fatalf("keyframe metric %v", got)
	}

	// OBS stops: tracks end for the viewer, then the participant leaves
	// after the grace period.
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "viewer sees both tracks end", func() bool {
		ended := 0
		for _, rt := range v.RemoteTracks() {
			if rt.Ended {
				ended++
			}
		}
		return ended == 2
	})
	testkit.Eventually(t, 5*time.Second, "participant removed after grace", func() bool { return dir.count("remove ") == 1 })
	calls := dir.all()
	if calls[len(calls)-1] != "remove stage "+pid || dir.count("untrack ") != 2 {
		t.Fatalf("directory calls %v", calls)
	}
	if len(svc.Streams()) != 0 {
		t.Fatal("stream still listed")
	}
}

// counterValue reads the counter with exactly these label values, in
// label-name order; a series not yet observed reads as 0.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mf := testkit.MetricFamily(t, reg, name)
metrics:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetValue() != labels[i] {
				continue metrics
			}
		}
		return m.GetCounter().GetValue()
	}
	return 0
}

func TestSinkReconnectKeepsParticipant(t *testing.T) {
	s := startSFU(t)
	dir := &fakeDir{}
	svc, _ := startService(t, sinkConfig(), Deps{Media: s, Directory: dir})
	b := rtmp.Binding{Room: "r", Name: "Cam", Identity: "cam"}

	first := startStream(t, svc, b)
	pid := svc.Streams()[0].ParticipantID
	if _, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: b}); !errors.Is(err, ErrStreamLive) {
		t.Fatalf("second start while live: %v", err)
	}
	// Another identity in the same room is independent.
	other := startStream(t, svc, rtmp.Binding{Room: "r", Name: "Other"})
	if _, err := first.AddVideoTrack(h264Spec()); err != nil {
		t.Fatal(err)
	}
	_ = first.Close()
	_ = first.Close() // idempotent

	again := startStream(t, svc, b) // within the grace period
	var got string
	for _, st := range svc.Streams() {
		if st.Identity == "cam" {
			got = st.ParticipantID
		}
	}
	if got != pid {
		t.Fatalf("reconnect got participant %q, want %q", got, pid)
	}
	if dir.count("add r "+pid) != 1 || dir.count("remove r "+pid) != 0 {
		t.Fatalf("directory saw the reconnect as leave/join: %v", dir.all())
	}
	if _, err := again.AddVideoTrack(h264Spec()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * sinkConfig().ReconnectGrace) // the old grace timer must not remove the live stream
	if dir.count("remove r "+pid) != 0 {
		t.Fatalf("live stream removed by a stale grace timer: %v", dir.all())
	}
	_ = again.Close()
	testkit.Eventually(t, 5*time.Second, "removed after grace", func() bool { return dir.count("remove r "+pid) == 1 })

	// After the grace period a new publish is a new participant.
	later := startStream(t, svc, b)
	for _, st := range svc.Streams() {
		if st.Identity == "cam" && st.ParticipantID == pid {
			t.Fatal("participant id reused after the grace period")
		}
	}
	_ = later.Close()
	_ = other.Close()
}

func TestSinkRefusals(t *testing.T) {
	s := startSFU(t)
	dir := &fakeDir{refuse: errors.New("identity in use")}
	cfg := sinkConfig()
	cfg.MaxStreams = 1
	svc, reg := startService(t, cfg, Deps{Media: s, Directory: dir})
	if _, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Room: "r", Name: "a"}}); err == nil {
		t.Fatal("directory refusal did not refuse the stream")
	}
	if len(svc.Streams()) != 0 {
		t.Fatal("refused stream holds a slot")
	}
	dir.mu.Lock()
	dir.refuse = nil
	dir.mu.Unlock()
	sess := startStream(t, svc, rtmp.Binding{Room: "r", Name: "a"})
	if _, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Room: "r", Name: "b"}}); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("over max_streams: %v", err)
	}
	if _, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Name: "no room"}}); err == nil {
		t.Fatal("binding without a room accepted")
	}
	if got := counterValue(t, reg, "parley_ingest_refused_total", "rtmp", "max_streams"); got != 1 {
		t.Fatalf("refused metric %v", got)
	}
	// A codec the SFU does not forward is refused by AddVideoTrack.
	if _, err := sess.AddVideoTrack(rtmp.TrackSpec{MimeType: "video/H265", ClockRate: 90000}); err == nil {
		t.Fatal("H.265 track accepted")
	}
	_ = sess.Close()
	if _, err := sess.AddAudioTrack(opusSpec()); err == nil {
		t.Fatal("track added after Close")
	}
}

func TestSinkAudioUnavailable(t *testing.T) {
	s := startSFU(t)
	dir := &fakeDir{}
	svc, _ := startService(t, sinkConfig(), Deps{Media: s, Directory: dir})
	sess := startStream(t, svc, rtmp.Binding{Room: "r", Name: "A"})
	pid := svc.Streams()[0].ParticipantID
	aw, err := sess.AddAudioTrack(opusSpec())
	if err != nil {
		t.Fatal(err)
	}
	sess.AudioUnavailable(errors.New("ffmpeg not found"))
	sess.AudioUnavailable(errors.New("ffmpeg not found")) // repeated: told once
	if st := svc.Streams()[0]; st.AudioUnavailable != "ffmpeg not found" {
		t.Fatalf("status %+v", st)
	}
	src := &mediaSource{audio: aw}
	src.writeAudio(t) // the transcoder recovered
	src.writeAudio(t)
	want := fmt.Sprintf("audio r %s %q", pid, "ffmpeg not found")
	if dir.count(want) != 1 || dir.count(fmt.Sprintf("audio r %s %q", pid, "")) != 1 {
		t.Fatalf("directory calls %v", dir.all())
	}
	if st := svc.Streams()[0]; st.AudioUnavailable != "" {
		t.Fatalf("status after recovery %+v", st)
	}
	_ = sess.Close()
	sess.AudioUnavailable(errors.New("late")) // after Close: ignored
	if dir.count("audio ") != 2 {
		t.Fatalf("directory calls %v", dir.all())
	}
}

func TestServiceRunEndsStreams(t *testing.T) {
	s := startSFU(t)
	dir := &fakeDir{}
	cfg := sinkConfig()
	cfg.ReconnectGrace = time.Minute
	svc, err := New(cfg, Deps{Media: s, Directory: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	live := startStream(t, svc, rtmp.Binding{Room: "r", Name: "live"})
	if _, err := live.AddVideoTrack(h264Spec()); err != nil {
		t.Fatal(err)
	}
	gone := startStream(t, svc, rtmp.Binding{Room: "r", Name: "gone"})
	_ = gone.Close() // lingering for a minute
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if dir.count("remove r ") != 2 || dir.count("untrack r ") != 1 {
		t.Fatalf("after shutdown: %v", dir.all())
	}
	_ = live.Close() // the RTMP server closes its sessions after: harmless
	if _, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Room: "r", Name: "x"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after shutdown: %v", err)
	}
}
