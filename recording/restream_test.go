package recording

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/recording/mediatest"
)

func TestParseRestreamURL(t *testing.T) {
	for raw, host := range map[string]string{
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh":    "a.rtmp.youtube.com",
		"rtmps://live-api-s.facebook.com:443/rtmp/KEY": "live-api-s.facebook.com:443",
		"rtmp://127.0.0.1:1935/live/key?x=1":           "127.0.0.1:1935",
	} {
		got, err := ParseRestreamURL(raw)
		if err != nil || got != host {
			t.Errorf("ParseRestreamURL(%q) = %q, %v; want %q", raw, got, err, host)
		}
	}
	for _, raw := range []string{
		"", "http://example.com/live/key", "rtmp:///live/key", "rtmp://example.com", "rtmp://example.com/",
		"rtmp://user:pw@example.com/live/key", "rtmp://example.com/live/key with space", "rtmp://example.com/live/\nkey",
		"file:///etc/passwd", "-i /etc/passwd", "rtmp://example.com/" + strings.Repeat("k", MaxRestreamURL),
	} {
		if _, err := ParseRestreamURL(raw); err == nil {
			t.Errorf("ParseRestreamURL(%q) accepted", raw)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if backoff(1000) != maxBackoff || backoff(0) != time.Second {
		t.Error("backoff out of range")
	}
}

func TestRedact(t *testing.T) {
	u := "rtmp://live.example.com/app/sk-12345678?token=abcdef"
	msg := "[rtmp @ 0x1] Cannot open connection rtmp://live.example.com/app/sk-12345678?token=abcdef\n" +
		"[flv] app sk-12345678 refused"
	got := Redact(msg, u)
	if strings.Contains(got, "sk-12345678") || strings.Contains(got, "abcdef") {
		t.Fatalf("the key survives redaction: %q", got)
	}
	if !strings.Contains(got, "Cannot open connection") || !strings.Contains(got, "[flv] app") {
		t.Fatalf("redaction lost the message: %q", got)
	}
}

func liveTestTrack(kind, source, name, codec string) *LiveTrack {
	c, _ := sdpCodec(codec, 0)
	pt := uint8(96)
	if kind == "audio" {
		pt = 111
	}
	return &LiveTrack{info: TrackInfo{SID: "TR_" + name + kind, Kind: kind, Source: source, Name: name, Codec: codec}, codec: c, pt: pt}
}

func TestRestreamSDPAndArgs(t *testing.T) {
	ins := []liveInput{
		{liveTestTrack("video", "camera", "Ada", "video/VP8"), 20000},
		{liveTestTrack("audio", "microphone", "Ada", "audio/opus"), 20002},
		{liveTestTrack("video", "camera", "Bob", "video/H264"), 20004},
	}
	for i, want := range []string{
		"m=video 20000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
		"m=audio 20002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
		"m=video 20004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n",
	} {
		sdp := restreamSDP(ins[i])
		if !strings.Contains(sdp, "c=IN IP4 127.0.0.1\r\n") || !strings.HasSuffix(sdp, want) || strings.Count(sdp, "m=") != 1 {
			t.Errorf("SDP of input %d: want one media section %q:\n%s", i, want, sdp)
		}
	}
	args := strings.Join(restreamArgs(ins, []string{"/tmp/0.sdp", "/tmp/1.sdp", "/tmp/2.sdp"}, "rtmp://h/app/key"), " ")
	for _, want := range []string{
		"-protocol_whitelist file,udp,rtp", "-thread_queue_size 1024 -i /tmp/0.sdp", "-i /tmp/1.sdp", "-i /tmp/2.sdp",
		"[0:0]scale=640:720", "text='Ada'", "[2:0]scale=640:720", "text='Bob'", // two cameras side by side
		"[1:0]amix=inputs=1",
		"-tune zerolatency", "-g 50", "-c:a aac", "-f flv", "rtmp://h/app/key",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("ffmpeg arguments lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "realtime") {
		t.Errorf("live inputs pace the stream; no realtime filter wanted:\n%s", args)
	}
	empty := strings.Join(restreamArgs(nil, nil, "rtmp://h/app/key"), " ")
	if strings.Contains(empty, "-i ") || !strings.Contains(empty, "realtime") || !strings.Contains(empty, "anullsrc") {
		t.Errorf("with no tracks: the canvas and silence, held to the clock, no input:\n%s", empty)
	}
}

// rtmpServer is ffmpeg listening for one RTMP publish, copying it to a file.
type rtmpServer struct {
	cmd  *exec.Cmd
	out  string
	done chan struct{}
	log  bytes.Buffer
}

func listenRTMP(t testing.TB, url, out string) *rtmpServer {
	t.Helper()
	s := &rtmpServer{out: out, done: make(chan struct{})}
	s.cmd = exec.Command(mediatest.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-listen", "1", "-i", url, "-c", "copy", "-f", "flv", out)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	return s
}

// feedLive writes pkts to w paced by their timestamps (rate Hz), from
// the start again when they run out, until stop.
func feedLive(w *LiveTrack, pkts []*rtp.Packet, rate float64, stop <-chan struct{}) {
	start := time.Now()
	var base uint32
	var seq uint16
	var ts0 uint32
	// A loop lasts the clip plus one frame (the smallest step between
	// two packets' timestamps: 20 ms of audio, 40 ms of video).
	step := uint32(rate)
	for i := 1; i < len(pkts); i++ {
		if d := pkts[i].Timestamp - pkts[i-1].Timestamp; d > 0 && d < step {
			step = d
		}
	}
	span := pkts[len(pkts)-1].Timestamp - pkts[0].Timestamp + step
	for loop := 0; ; loop++ {
		ts0 = pkts[0].Timestamp
		for _, p := range pkts {
			ts := base + (p.Timestamp - ts0)
			at := start.Add(time.Duration(float64(ts) / rate * float64(time.Second)))
			select {
			case <-stop:
				return
			case <-time.After(time.Until(at)):
			}
			h := p.Header
			h.Timestamp, h.SequenceNumber = ts, seq
			seq++
			_, _ = w.WriteRTP(&h, p.Payload)
		}
		base += span
	}
}

// fedRestream is a restream of people's cameras and microphones (named
// P0, P1, ...; one person: Ada), each fed video and audio in a loop, paced
// by their timestamps, until stopFeeding.
type fedRestream struct {
	*Restream
	counters *RestreamCounters
	stop     chan struct{}
	feeders  sync.WaitGroup
	lmu      sync.Mutex
	logs     bytes.Buffer
}

func startFedRestream(tb testing.TB, opts RestreamOptions, people int, video, audio []*rtp.Packet) *fedRestream {
	tb.Helper()
	f := &fedRestream{counters: &RestreamCounters{}, stop: make(chan struct{})}
	opts.Room, opts.Counters, opts.Log = "r", f.counters, testLogger(&f.logs, &f.lmu)
	r, err := StartRestream(opts)
	if err != nil {
		tb.Fatal(err)
	}
	f.Restream = r
	tb.Cleanup(func() { r.Stop(); f.stopFeeding() })
	for i := range people {
		name := fmt.Sprintf("P%d", i)
		if people == 1 {
			name = "Ada"
		}
		v, err := r.AddTrack(TrackInfo{SID: "TR_cam" + name, Name: name, Kind: "video", Source: "camera", Codec: "video/VP8"}, func() {})
		if err != nil {
			tb.Fatal(err)
		}
		a, err := r.AddTrack(TrackInfo{SID: "TR_mic" + name, Name: name, Kind: "audio", Source: "microphone", Codec: "audio/opus"}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		f.feeders.Go(func() { feedLive(v, video, 90000, f.stop) })
		f.feeders.Go(func() { feedLive(a, audio, 48000, f.stop) })
	}
	return f
}

// stopFeeding ends the feeds and waits for them; safe to call again.
func (f *fedRestream) stopFeeding() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.feeders.Wait()
}

// log is what the restream logged so far.
func (f *fedRestream) log() string {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	return f.logs.String()
}

// TestRestreamToRTMP: a camera and a microphone restreamed to an RTMP
// server arrive there as H.264 and AAC that decode; when the server goes
// away and comes back, the restream reconnects by itself.
func TestRestreamToRTMP(t *testing.T) {
	m := makeMedia(t, 4)
	port := testkit.FreeTCPPort(t)
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/secret-key-1", port)
	dir := t.TempDir()
	first := listenRTMP(t, url, filepath.Join(dir, "first.flv"))
	time.Sleep(300 * time.Millisecond) // the listener binds

	r := startFedRestream(t, RestreamOptions{URL: url}, 1, m.video, m.audio)
	counters := r.counters

	// The tracks are there from the first run (one connection to the
	// server, which takes one publish); they stream a while.
	time.Sleep(12 * time.Second)
	if n := counters.LayoutRestarts.Load(); n != 0 {
		t.Errorf("%d restarts for layout changes; the tracks were there from the start", n)
	}
	if n := counters.Stalls.Load(); n != 0 {
		t.Errorf("%d restarts for a stall of a composition that ran well", n)
	}
	_ = first.cmd.Process.Signal(os.Interrupt)
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the RTMP server did not end")
	}
	probe := mediatest.ProbeFile(t, first.out)
	streams, _ := exec.Command(mediatest.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "stream=codec_name,width,height",
		"-of", "csv=p=0", first.out).Output()
	t.Logf("first server got %v: %s", probe.Duration, strings.Fields(string(streams)))
	if !strings.Contains(string(streams), "h264,1280,720") || !strings.Contains(string(streams), "aac") {
		t.Errorf("streams %q, want H.264 1280x720 and AAC", streams)
	}
	// ffmpeg takes a second or two to start; more on a loaded machine.
	if probe.Duration < 4*time.Second {
		t.Errorf("the server got %v of the stream in 12 s, want at least 4 s", probe.Duration)
	}
	if e := mediatest.DecodeErrors(t, first.out); e != "" {
		t.Errorf("decode errors: %s", e)
	}

	// The server is gone: the restream fails, backs off, and reconnects
	// once it is back.
	time.Sleep(2 * time.Second)
	second := listenRTMP(t, url, filepath.Join(dir, "second.flv"))
	testkit.Eventually(t, 30*time.Second, "the restream reconnected and streams", func() bool {
		info, err := os.Stat(second.out)
		return counters.Reconnects.Load() >= 1 && err == nil && info.Size() > 64<<10
	})
	time.Sleep(4 * time.Second)
	r.Stop()
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the second RTMP server did not end with the restream")
	}
	if d := mediatest.ProbeFile(t, second.out).Duration; d < 2*time.Second {
		t.Errorf("after reconnecting the server got %v of the stream", d)
	}
	if counters.Active.Load() != 0 {
		t.Errorf("%d restreams active after Stop", counters.Active.Load())
	}
	if logs := r.log(); strings.Contains(logs, "secret-key-1") {
		t.Errorf("the stream key was logged:\n%s", logs)
	}
	t.Logf("logs:\n%s", r.log())
}

// TestRestreamRestartsAStalledComposition: a camera whose packets ffmpeg
// cannot decode (no key frame ever comes) leaves the composition without
// a frame, so nothing reaches the RTMP server. The watchdog asks the
// publisher for key frames, then restarts ffmpeg, and says why; a
// composition that starts to make frames is left alone.
func TestRestreamRestartsAStalledComposition(t *testing.T) {
	m := makeMedia(t, 4)
	port := testkit.FreeTCPPort(t)
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/secret-key-2", port)
	listenRTMP(t, url, filepath.Join(t.TempDir(), "out.flv"))
	time.Sleep(300 * time.Millisecond) // the listener binds

	var logs bytes.Buffer
	var lmu sync.Mutex
	counters := &RestreamCounters{}
	r, err := StartRestream(RestreamOptions{Room: "r", URL: url, Counters: counters, Log: testLogger(&logs, &lmu),
		firstFrameWait: 5 * time.Second, stallAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	var asked atomic.Int64
	v, err := r.AddTrack(TrackInfo{SID: "TR_cam", Name: "Ada", Kind: "video", Source: "camera", Codec: "video/VP8"},
		func() { asked.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	// Delta frames only: each frame's packets with the key frame bit
	// (the payload header's P bit, 0 for a key frame) set to "inter".
	var deltas []*rtp.Packet
	for _, p := range m.video {
		q := p.Clone()
		if len(q.Payload) > 4 && q.Payload[0]&0x10 != 0 { // S bit: the frame's first packet
			// the VP8 payload descriptor is 1 byte, or more with X.
			off := 1
			if q.Payload[0]&0x80 != 0 {
				off = 2
				if q.Payload[1]&0x80 != 0 {
					off++
					if q.Payload[2]&0x80 != 0 {
						off++
					}
				}
				if q.Payload[1]&0x40 != 0 {
					off++
				}
				if q.Payload[1]&0x30 != 0 {
					off++
				}
			}
			q.Payload[off] |= 0x01
		}
		deltas = append(deltas, q)
	}
	stop := make(chan struct{})
	var feeders sync.WaitGroup
	feeders.Go(func() { feedLive(v, deltas, 90000, stop) })
	defer func() { close(stop); feeders.Wait() }()

	testkit.Eventually(t, 40*time.Second, "the stalled composition restarted", func() bool {
		return counters.Stalls.Load() >= 1
	})
	if n := asked.Load(); n < 3 {
		t.Errorf("the publisher was asked for %d key frames before the restart, want several", n)
	}
	lmu.Lock()
	got := logs.String()
	lmu.Unlock()
	if !strings.Contains(got, "composes no frames") {
		t.Errorf("the restart is not logged with its reason:\n%s", got)
	}
	if strings.Contains(got, "secret-key-2") {
		t.Errorf("the stream key was logged:\n%s", got)
	}
	t.Logf("logs:\n%s", got)
}

// TestRestreamLipSync: a camera that flashes white and a microphone
// that beeps at the same moments (2 s into every 4 s) come out of the
// restream together: every flash in the stream the RTMP server got is
// within 100 ms of a beep. ffmpeg starts each input's clock at its first
// packet, so this holds only if all the inputs' first packets come
// together.
func TestRestreamLipSync(t *testing.T) {
	restreamLipSync(t, false)
}

// TestRestreamLipSyncDTX: the same with the microphone in Opus DTX, as a
// browser sends it in silence since the SFU asks for it (a packet every
// 400 ms, the timestamps jumping over the gaps): the gaps must stay gaps
// in time, or the sound would run ahead of the picture by every gap.
func TestRestreamLipSyncDTX(t *testing.T) {
	restreamLipSync(t, true)
}

func restreamLipSync(t *testing.T, dtx bool) {
	const clip = 4
	vp := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var video, audio []*rtp.Packet
	for _, f := range mediatest.FlashVP8(t, clip) {
		video = append(video, vp.Packetize(f, 3600)...)
	}
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	// clip seconds of 20 ms packets exactly (the encoder adds one for
	// its pre-skip), so that sound and picture loop together.
	for i, p := range mediatest.BeepOpus(t, clip)[:clip*50] {
		pkts := ap.Packetize(p, 960) // the timestamps run on for every frame
		// DTX: the beep (packets 100-109) and a little around it, in
		// the silence one packet in 20; the first and last stay, so the
		// clip still loops every clip seconds.
		if dtx && (i < 95 || i >= 115) && i%20 != 0 && i != clip*50-1 {
			continue
		}
		audio = append(audio, pkts...)
	}
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/sync", testkit.FreeTCPPort(t))
	server := listenRTMP(t, url, filepath.Join(t.TempDir(), "out.flv"))
	time.Sleep(300 * time.Millisecond) // the listener binds
	r := startFedRestream(t, RestreamOptions{URL: url}, 1, video, audio)
	time.Sleep(16 * time.Second)
	r.Stop()
	r.stopFeeding()
	<-server.done

	flashes := flashOnsets(t, server.out)
	beeps := beepOnsets(t, server.out)
	t.Logf("flashes at %v, beeps at %v", flashes, beeps)
	if len(flashes) < 3 {
		t.Fatalf("%d flashes in the stream, want at least 3 in 16 s:\n%s", len(flashes), r.log())
	}
	for _, f := range flashes {
		if f < time.Second {
			continue // a beep right at the start follows no silence: silencedetect cannot see it
		}
		off := time.Hour
		for _, b := range beeps {
			if d := b - f; d.Abs() < off.Abs() {
				off = d
			}
		}
		if off.Abs() > 100*time.Millisecond {
			t.Errorf("the flash at %v has no beep within 100 ms (nearest %v away)", f, off)
		}
	}
}

// flashOnsets are the times a picture in the file turns bright (its
// average luma crosses midway between the darkest and brightest frames').
func flashOnsets(t *testing.T, path string) []time.Duration {
	t.Helper()
	out, err := exec.Command(mediatest.Tool(t, "ffprobe"), "-v", "error", "-f", "lavfi", "-i", "movie="+path+",signalstats",
		"-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0").Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	type frame struct {
		at   time.Duration
		luma float64
	}
	var frames []frame
	lo, hi := 255.0, 0.0
	for _, line := range strings.Fields(string(out)) {
		ts, y, ok := strings.Cut(line, ",")
		at, err1 := strconv.ParseFloat(ts, 64)
		luma, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		frames = append(frames, frame{time.Duration(at * float64(time.Second)), luma})
		lo, hi = min(lo, luma), max(hi, luma)
	}
	var onsets []time.Duration
	for i := 1; i < len(frames); i++ {
		mid := (lo + hi) / 2
		if hi-lo > 30 && frames[i-1].luma < mid && frames[i].luma >= mid {
			onsets = append(onsets, frames[i].at)
		}
	}
	return onsets
}

// beepOnsets are the times the file's sound rises out of silence.
func beepOnsets(t *testing.T, path string) []time.Duration {
	t.Helper()
	out, err := exec.Command(mediatest.Tool(t, "ffmpeg"), "-hide_banner", "-nostats", "-i", path, "-vn",
		"-af", "silencedetect=noise=-30dB:d=0.1", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg silencedetect: %v\n%s", err, out)
	}
	var onsets []time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		_, rest, ok := strings.Cut(line, "silence_end: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if at, err := strconv.ParseFloat(f[0], 64); err == nil && len(f) > 0 {
			onsets = append(onsets, time.Duration(at*float64(time.Second)))
		}
	}
	return onsets
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testLogger(b *bytes.Buffer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, b}, nil))
}
