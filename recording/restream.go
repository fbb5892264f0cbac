package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pion/rtp"
)

// A restream pushes the meeting's composition live to an RTMP server (a
// streaming platform's ingest URL with its stream key). The composition
// is compositionGraph's, as in a composed recording, made live by one
// ffmpeg process: each track's RTP goes to ffmpeg over loopback UDP,
// described by an SDP file per track, and ffmpeg decodes, composes, encodes (H.264
// veryfast/zerolatency, a key frame every 2 s, AAC) and sends FLV to the
// URL.
//
// The layout is fixed for the life of an ffmpeg process (its inputs are
// in its SDP), so ffmpeg is restarted when the set of live tracks
// changes: a track joins the layout once its media flows and leaves it
// when it has been silent for trackIdle (ffmpeg's overlay and amix wait
// for every input, so a paused camera left in would freeze the stream).
// When ffmpeg ends by itself (the RTMP server dropped or refused the
// connection) it is restarted after a backoff, until maxFailures
// consecutive runs fail.
//
// Sync: without RTCP sender reports ffmpeg starts each RTP stream's
// clock at its first packet. Each track is an input of its own (an SDP
// file each: ffmpeg reads every input on a thread of its own, see
// restreamArgs), opened without probing, so ffmpeg binds all the ports
// within milliseconds while every track is already flowing (only live
// tracks are in the layout), and their first packets come within a few
// packet intervals of each other: audio and video line up to tens of
// milliseconds, without mapping the publishers' clocks.
//
// The URL holds the platform's stream key, a secret: it is never logged
// (only its host) and appears in ffmpeg's messages only redacted. It is
// on ffmpeg's command line, which other users of the machine may read.

// Restream limits and timings.
const (
	// MaxRestreamURL bounds the URL's length (platforms' are under 300).
	MaxRestreamURL = 1024
	// trackIdle: a track without a packet this long leaves the layout.
	trackIdle = 3 * time.Second
	// layoutCheck is how often the live tracks are compared with the
	// layout; a change must hold for two checks before ffmpeg restarts,
	// so a camera and microphone published together cost one restart.
	layoutCheck = time.Second
	// healthyRun: an ffmpeg that ran this long was streaming; the backoff
	// starts over after it.
	healthyRun = 30 * time.Second
	// maxBackoff caps the wait between reconnection attempts.
	maxBackoff = 30 * time.Second
	// maxFailures consecutive failed runs end the restream (about ten
	// minutes of attempts with the backoff).
	maxFailures = 25
	// haltWait is how long ffmpeg has to finish once interrupted.
	haltWait = 5 * time.Second
	// startSettle is how long the first run waits for the room's media.
	startSettle = 1500 * time.Millisecond
	// stderrTail is how much of ffmpeg's last messages is kept to log.
	stderrTail = 2048
	// firstFrameWait is how long a run may take to compose its first
	// frame (ffmpeg probes its inputs and waits for a key frame of every
	// video), and stallAfter how long a running composition may go
	// without a new frame, before the run is taken for stalled and
	// restarted; key frames are asked for every kickEvery meanwhile.
	firstFrameWait = 15 * time.Second
	stallAfter     = 8 * time.Second
	kickEvery      = 2 * time.Second
	// bindWait bounds the wait for ffmpeg to listen on every input port
	// before the tracks' packets are sent (see runFFmpeg).
	bindWait = 10 * time.Second
)

// Restream end reasons, handed to the restream's OnEnd.
const (
	RestreamStopped     = "stopped"
	RestreamUnreachable = "the RTMP server could not be reached"
	RestreamNoFFmpeg    = "ffmpeg is not installed"
)

// ErrRestreamURL is returned for a URL a restream cannot use.
var ErrRestreamURL = errors.New("restream: the URL must be rtmp:// or rtmps://, with a host and a path (the stream key)")

// ParseRestreamURL checks a restream URL: rtmp or rtmps, a host, a path,
// no spaces or control characters, at most MaxRestreamURL bytes. It
// returns the URL's host, the only part that may be logged.
func ParseRestreamURL(raw string) (host string, err error) {
	if raw == "" || len(raw) > MaxRestreamURL {
		return "", fmt.Errorf("%w (at most %d characters)", ErrRestreamURL, MaxRestreamURL)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", ErrRestreamURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" || u.Hostname() == "" ||
		strings.Trim(u.Path, "/") == "" || u.User != nil || u.Fragment != "" {
		return "", ErrRestreamURL
	}
	return u.Host, nil
}

// backoff is the wait before reconnection attempt n (1, 2, ...): 1 s,
// 2 s, 4 s, ... at most maxBackoff.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 6 {
		return maxBackoff
	}
	return min(time.Second<<(n-1), maxBackoff)
}

// RestreamCounters are the restreams' metrics, shared by every restream
// of the process.
type RestreamCounters struct {
	// Reconnects counts ffmpeg restarts after it ended by itself: the
	// RTMP server dropped or refused the stream.
	Reconnects atomic.Int64
	// LayoutRestarts counts ffmpeg restarts for a change of the live
	// tracks.
	LayoutRestarts atomic.Int64
	// Stalls counts ffmpeg restarts because it stopped composing frames
	// while it ran (see firstFrameWait and stallAfter).
	Stalls atomic.Int64
	// Active is the restreams running now.
	Active atomic.Int64
}

// RestreamOptions configure a restream.
type RestreamOptions struct {
	Room string
	// URL is the RTMP URL with its stream key: a secret.
	URL string
	// FFmpeg is the ffmpeg binary; empty: looked up in PATH.
	FFmpeg   string
	Log      *slog.Logger
	Counters *RestreamCounters
	// OnEnd is called once, on the restream's goroutine, when it ends by
	// itself (never after Stop returned): why, one of the Restream*
	// reasons.
	OnEnd func(reason string)

	// firstFrameWait and stallAfter replace the constants' in tests.
	firstFrameWait, stallAfter time.Duration
}

// Restream is one room's live restream. It takes the room's tracks as an
// SFU track sink's writers do (AddTrack, RemoveTrack); Stop ends it.
type Restream struct {
	opts   RestreamOptions
	host   string
	ffmpeg string
	log    *slog.Logger
	conn   *net.UDPConn // sends every track's RTP to ffmpeg
	dir    string       // the SDP file's

	mu     sync.Mutex
	tracks []*LiveTrack // in the order they came

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// StartRestream checks the URL, finds ffmpeg and starts streaming (at
// first the empty canvas; tracks join as they are added).
func StartRestream(opts RestreamOptions) (*Restream, error) {
	host, err := ParseRestreamURL(opts.URL)
	if err != nil {
		return nil, err
	}
	ffmpeg := opts.FFmpeg
	if ffmpeg == "" {
		if ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
			return nil, fmt.Errorf("restream: %s: %w", RestreamNoFFmpeg, err)
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Counters == nil {
		opts.Counters = &RestreamCounters{}
	}
	if opts.firstFrameWait == 0 {
		opts.firstFrameWait = firstFrameWait
	}
	if opts.stallAfter == 0 {
		opts.stallAfter = stallAfter
	}
	dir, err := os.MkdirTemp("", "parley-restream-")
	if err != nil {
		return nil, fmt.Errorf("restream: %w", err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("restream: %w", err)
	}
	r := &Restream{opts: opts, host: host, ffmpeg: ffmpeg, conn: conn, dir: dir,
		log: opts.Log.With("room", opts.Room, "rtmp_host", host), stop: make(chan struct{}), done: make(chan struct{})}
	opts.Counters.Active.Add(1)
	go r.run() // joined by Stop, or ends by itself (OnEnd) and is joined by Stop later
	return r, nil
}

// Host is the RTMP server's host: what may be shown of the URL.
func (r *Restream) Host() string { return r.host }

// Stop ends the restream: ffmpeg is stopped and waited for. Safe to call
// more than once, and after the restream ended by itself.
func (r *Restream) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
}

// Done is closed once the restream ended, by Stop or by itself.
func (r *Restream) Done() <-chan struct{} { return r.done }

// AddTrack takes a track of the room. Its packets go to ffmpeg once the
// track is in the layout. keyframe asks its publisher for a key frame
// (ffmpeg can only start decoding a video at one). Codecs ffmpeg takes
// over RTP: VP8, VP9, H.264, Opus; others are refused with ErrCodec.
func (r *Restream) AddTrack(t TrackInfo, keyframe func()) (*LiveTrack, error) {
	codec, ok := sdpCodec(t.Codec, t.Channels)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrCodec, t.Codec)
	}
	lt := &LiveTrack{info: t, codec: codec, conn: r.conn, keyframe: keyframe}
	lt.pt = 96
	if t.Kind == "audio" {
		lt.pt = 111
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.tracks, func(o *LiveTrack) bool { return o.info.SID == t.SID }) {
		return nil, fmt.Errorf("restream: track %s already added", t.SID)
	}
	r.tracks = append(r.tracks, lt)
	return lt, nil
}

// RemoveTrack drops a track: ffmpeg restarts without it at the next
// layout check.
func (r *Restream) RemoveTrack(sid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tracks = slices.DeleteFunc(r.tracks, func(o *LiveTrack) bool {
		if o.info.SID == sid {
			o.dst.Store(nil)
			return true
		}
		return false
	})
}

// LiveTrack forwards one track's RTP to the running ffmpeg. It implements
// pion's webrtc.TrackLocalWriter, as a recording's TrackWriter does.
type LiveTrack struct {
	info     TrackInfo
	codec    string // the SDP's rtpmap (and fmtp) for it
	pt       uint8
	conn     *net.UDPConn
	keyframe func()

	dst  atomic.Pointer[net.UDPAddr] // ffmpeg's port for it; nil: not in the layout
	last atomic.Int64                // Unix nanoseconds of its last packet

	mu  sync.Mutex // buf and the last packet's numbers
	buf []byte
	// The last packet's sequence number, timestamp, SSRC and arrival,
	// forwarded or not, for prime.
	lastSeq  uint16
	lastTS   uint32
	lastSSRC uint32
	lastAt   time.Time
}

// silenceOpus is a 20 ms Opus frame that decodes to silence (CELT,
// TOC config 31, mono; the range coder's silence flag).
func silenceOpus() []byte { return []byte{0xF8, 0xFF, 0xFE} }

// prime sends ffmpeg, as it starts listening, a silent Opus frame for a
// microphone, which may be in DTX (silent, sending a packet every 400 ms
// or so):
// ffmpeg starts each input's clock at its first packet, and without it
// that would be the microphone's next packet, up to 400 ms after the
// cameras' first, and the sound would run that much ahead of the
// picture. The frame continues the track's own timeline (its timestamp
// moved on by the time since its last packet, which ffmpeg never got,
// and its sequence number that packet's), so the next real packet
// follows it in place.
func (t *LiveTrack) prime(dst *net.UDPAddr, now time.Time) {
	if t.info.Kind != "audio" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idle := now.Sub(t.lastAt)
	if t.lastAt.IsZero() || idle > trackIdle {
		return // never sent, or gone
	}
	// Sent for a flowing track too: whether the next packet comes in
	// 20 ms or in 400 cannot be told from the last one. It then stands
	// in, silent, for that last packet, which ffmpeg never got.
	hh := rtp.Header{Version: 2, PayloadType: t.pt, SequenceNumber: t.lastSeq,
		Timestamp: t.lastTS + uint32(idle*opusRate/time.Second), SSRC: t.lastSSRC}
	n := hh.MarshalSize()
	silence := silenceOpus()
	buf := slices.Grow(t.buf[:0], n+len(silence))[:n]
	if _, err := hh.MarshalTo(buf); err != nil {
		return
	}
	t.buf = append(buf, silence...)
	_, _ = t.conn.WriteToUDP(t.buf, dst)
}

// opusRate is Opus's RTP clock rate.
const opusRate = 48000

// WriteRTP forwards one packet to ffmpeg with the SDP's payload type and
// without header extensions (ffmpeg needs neither the publisher's
// numbering nor its extensions). A datagram ffmpeg is not listening for
// yet is lost like any packet; ffmpeg waits for a key frame.
func (t *LiveTrack) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	now := time.Now()
	t.last.Store(now.UnixNano())
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastSeq, t.lastTS, t.lastSSRC, t.lastAt = h.SequenceNumber, h.Timestamp, h.SSRC, now
	dst := t.dst.Load()
	if dst == nil {
		return len(payload), nil
	}
	hh := rtp.Header{Version: 2, Marker: h.Marker, PayloadType: t.pt, SequenceNumber: h.SequenceNumber,
		Timestamp: h.Timestamp, SSRC: h.SSRC, CSRC: h.CSRC}
	n := hh.MarshalSize()
	buf := slices.Grow(t.buf[:0], n+len(payload))[:n]
	if _, err := hh.MarshalTo(buf); err != nil {
		return 0, fmt.Errorf("restream: %w", err)
	}
	t.buf = append(buf, payload...)
	_, _ = t.conn.WriteToUDP(t.buf, dst) // loopback; a lost datagram is a lost packet
	return len(payload), nil
}

// Write forwards one marshalled RTP packet.
func (t *LiveTrack) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, fmt.Errorf("restream: %w", err)
	}
	if _, err := t.WriteRTP(&p.Header, p.Payload); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (t *LiveTrack) live(now time.Time) bool {
	last := t.last.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) < trackIdle
}

// sdpCodec is the rtpmap (and fmtp) of a codec ffmpeg takes over RTP.
func sdpCodec(mime string, channels int) (string, bool) {
	switch strings.ToLower(mime) {
	case "video/vp8":
		return "VP8/90000", true
	case "video/vp9":
		return "VP9/90000", true
	case "video/h264":
		return "H264/90000\r\na=fmtp:%d packetization-mode=1", true
	case "audio/opus":
		// Opus is always described as stereo in SDP (RFC 7587); the
		// decoder follows what the packets carry.
		_ = channels
		return "opus/48000/2", true
	}
	return "", false
}

// liveInput is a track of one ffmpeg run: its SDP port and stream index.
type liveInput struct {
	t    *LiveTrack
	port int
}

// restreamSDP describes one input of a run to ffmpeg: the track's media
// section on its loopback port (RTCP on the next one).
func restreamSDP(in liveInput) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Parley restream\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
	codec := in.t.codec
	if strings.Contains(codec, "%d") {
		codec = fmt.Sprintf(codec, in.t.pt)
	}
	fmt.Fprintf(&b, "m=%s %d RTP/AVP %d\r\na=rtpmap:%d %s\r\n", in.t.info.Kind, in.port, in.t.pt, in.t.pt, codec)
	return b.String()
}

// restreamArgs is ffmpeg's command line for one run: an input per track,
// the SDP file sdpPaths[i] for ins[i] (none: the canvas and silence
// alone, paced by the realtime filters), the composition, H.264 and AAC
// to FLV at url.
//
// One input per track rather than one SDP for all: ffmpeg reads each of
// several inputs on its own thread into a queue (-thread_queue_size), so
// the UDP sockets are drained while the decoders, the filters and the
// encoder work. With a single input, reading waits for them, and on a
// busy machine the sockets overflow: lost packets, a video without a key
// frame, a composition that stops.
func restreamArgs(ins []liveInput, sdpPaths []string, url string) []string {
	// Warnings too: they are only kept (the last stderrTail bytes) to
	// say why a run ended or stalled. -progress on stdout feeds the
	// watchdog (progressWatch).
	args := []string{"-nostdin", "-hide_banner", "-v", "warning", "-nostats", "-progress", "pipe:1", "-stats_period", "1"}
	var cams, screens []compVideo[int]
	var audios []int
	for i, in := range ins {
		switch {
		case in.t.info.Kind == "audio":
			audios = append(audios, i)
		case in.t.info.Source == "screen":
			screens = append(screens, compVideo[int]{in.t.info.Name, i})
		default:
			cams = append(cams, compVideo[int]{in.t.info.Name, i})
		}
		// No probing: ffmpeg opens its inputs one after another, and
		// probing one (a camera's size comes with its first key frame)
		// would open the next late, which would then start its clock
		// late (see Sync above). The SDP says all ffmpeg needs; a
		// camera's size is taken from its first decoded frame.
		args = append(args, "-protocol_whitelist", "file,udp,rtp", "-nofind_stream_info",
			"-reorder_queue_size", "100", "-thread_queue_size", "1024", "-i", sdpPaths[i])
	}
	graph, videoOut, audioOut := compositionGraph(cams, screens, len(audios), 0,
		func(i int) string { return fmt.Sprintf("[%d:0]", i) },
		func(i int) string { return fmt.Sprintf("[%d:0]", audios[i]) })
	if len(ins) == 0 {
		// Nothing live paces the canvas: it is made as fast as the
		// encoder goes unless held to the clock.
		graph = append(graph, videoOut+"realtime[vrt]", audioOut+"arealtime[art]")
		videoOut, audioOut = "[vrt]", "[art]"
	}
	gop := strconv.Itoa(2 * composeFPS) // a key frame every 2 s, as platforms ask
	return append(args, "-filter_complex", strings.Join(graph, ";"),
		"-map", videoOut, "-map", audioOut,
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-r", strconv.Itoa(composeFPS), "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k",
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		// A server that stops reading fails the write after 10 s rather
		// than hanging the stream.
		"-rw_timeout", "10000000",
		"-f", "flv", "-flvflags", "no_duration_filesize", url)
}

// Redact removes a restream URL from text such as ffmpeg's messages:
// the whole URL, and its secret parts alone (the stream key, the path's
// last segment, and the query's values), which ffmpeg may print apart.
func Redact(text, rawURL string) string {
	if rawURL == "" {
		return text
	}
	text = strings.ReplaceAll(text, rawURL, "[restream URL]")
	u, err := url.Parse(rawURL)
	if err != nil {
		return text
	}
	secrets := []string{u.RawQuery, u.Path[strings.LastIndex(u.Path, "/")+1:]}
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	for _, sec := range secrets {
		if len(sec) >= 4 { // shorter would mangle words, and guards nothing
			text = strings.ReplaceAll(text, sec, "[redacted]")
		}
	}
	return text
}

// run keeps ffmpeg streaming until Stop or maxFailures failed runs.
func (r *Restream) run() {
	defer close(r.done)
	defer r.opts.Counters.Active.Add(-1)
	defer func() { _ = os.RemoveAll(r.dir) }()
	defer func() { _ = r.conn.Close() }()
	// The room's tracks are added as the tap attaches and their media
	// (video from a key frame) follows within a moment: the first run
	// waits for it, so the RTMP server sees one connection, not one
	// for the empty canvas and another as the tracks come.
	select {
	case <-r.stop:
		return
	case <-time.After(startSettle):
	}
	for _, t := range r.allTracks() {
		if t.info.Kind == "video" && t.keyframe != nil {
			t.keyframe()
		}
	}
	failures := 0
	for first := true; ; first = false {
		layout := r.liveTracks(time.Now())
		started := time.Now()
		why, err := r.runFFmpeg(layout)
		switch why {
		case runStopped:
			r.log.Info("restream stopped")
			return
		case runRelayout:
			r.opts.Counters.LayoutRestarts.Add(1)
			continue
		}
		stalled := why == runStalled
		if time.Since(started) >= healthyRun {
			failures = 0
		}
		failures++
		if failures > maxFailures || errors.Is(err, exec.ErrNotFound) {
			reason := RestreamUnreachable
			if errors.Is(err, exec.ErrNotFound) {
				reason = RestreamNoFFmpeg
			}
			r.log.Warn("restream ended", "reason", reason, "err", err)
			if r.opts.OnEnd != nil {
				r.opts.OnEnd(reason)
			}
			return
		}
		wait := backoff(failures)
		msg := "restream: ffmpeg ended, reconnecting"
		if stalled {
			msg = "restream: ffmpeg stalled, restarting"
		}
		r.log.Warn(msg, "err", err, "after", wait, "attempt", failures, "first_run", first)
		select {
		case <-r.stop:
			r.log.Info("restream stopped")
			return
		case <-time.After(wait):
		}
		if stalled {
			r.opts.Counters.Stalls.Add(1)
		} else {
			r.opts.Counters.Reconnects.Add(1)
		}
	}
}

// Why an ffmpeg run ended.
const (
	runStopped  = iota // Stop
	runRelayout        // the live tracks changed
	runExited          // ffmpeg ended by itself
	runStalled         // ffmpeg stopped composing frames and was stopped
)

// liveTracks is the layout of the next run: the tracks whose media flows
// now, in the order they came.
func (r *Restream) liveTracks(now time.Time) []*LiveTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*LiveTrack
	for _, t := range r.tracks {
		if t.live(now) {
			out = append(out, t)
		}
	}
	return out
}

// allTracks is every track taken so far.
func (r *Restream) allTracks() []*LiveTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tracks)
}

// runFFmpeg runs ffmpeg with layout's tracks until it exits, the layout
// changes or Stop.
func (r *Restream) runFFmpeg(layout []*LiveTrack) (int, error) {
	ports, err := loopbackPortPairs(len(layout))
	if err != nil {
		return runExited, err
	}
	ins := make([]liveInput, len(layout))
	for i, t := range layout {
		ins[i] = liveInput{t: t, port: ports[i]}
	}
	sdpPaths := make([]string, len(ins))
	for i, in := range ins {
		sdpPaths[i] = filepath.Join(r.dir, fmt.Sprintf("in%d.sdp", i))
		if err := os.WriteFile(sdpPaths[i], []byte(restreamSDP(in)), 0o600); err != nil {
			return runExited, fmt.Errorf("restream: %w", err)
		}
	}
	cmd := exec.Command(r.ffmpeg, restreamArgs(ins, sdpPaths, r.opts.URL)...) //nolint:gosec // our ffmpeg, arguments built here
	tail := &tailBuffer{max: stderrTail}
	prog := &progressWatch{}
	cmd.Stdout, cmd.Stderr = prog, tail
	cmd.WaitDelay = time.Second // stdout and stderr are let go once it exited
	if err := cmd.Start(); err != nil {
		return runExited, fmt.Errorf("restream: start ffmpeg: %w", err)
	}
	started := time.Now()
	r.log.Info("restream: ffmpeg started", "tracks", len(layout), "pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // always received below
	defer func() {
		for _, in := range ins {
			in.t.dst.Store(nil)
		}
	}()
	// halt asks ffmpeg to finish (an interrupt: it closes the FLV
	// stream) and waits; one that does not finish in haltWait is killed.
	halt := func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			_ = cmd.Process.Kill()
		}
		select {
		case err := <-exited:
			r.log.Debug("restream: ffmpeg finished", "err", err)
		case <-time.After(haltWait):
			_ = cmd.Process.Kill()
			err := <-exited
			r.log.Warn("restream: ffmpeg did not finish when asked; killed", "err", err)
		}
	}
	exitErr := func(err error) error {
		msg := strings.TrimSpace(Redact(tail.String(), r.opts.URL))
		if err == nil {
			err = errors.New("ffmpeg ended")
		}
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}

	// Every input's clock starts at its first packet, and ffmpeg opens
	// its inputs one after another (a few hundred milliseconds apart on
	// a busy machine, and a socket bound early would hold packets from
	// before the others listen): the tracks' packets go to ffmpeg only
	// once it listens on every port, so that their first packets come
	// together and audio lines up with video.
	bound := time.NewTicker(10 * time.Millisecond)
	deadline := time.Now().Add(bindWait)
	rtpPorts := make([]int, len(ins))
	for i, in := range ins {
		rtpPorts[i] = in.port
	}
waitBound:
	for len(ins) > 0 {
		select {
		case <-r.stop:
			bound.Stop()
			halt()
			return runStopped, nil
		case err := <-exited:
			bound.Stop()
			return runExited, exitErr(err)
		case now := <-bound.C:
			if listening(rtpPorts) {
				break waitBound
			}
			if now.After(deadline) {
				r.log.Warn("restream: ffmpeg does not listen on every input port yet; sending anyway", "after", bindWait)
				break waitBound
			}
		}
	}
	bound.Stop()
	now := time.Now()
	for _, in := range ins {
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: in.port}
		in.t.prime(dst, now)
		in.t.dst.Store(dst)
	}

	// Key frames: ffmpeg starts decoding a video at one, and binds its
	// ports some time after it starts; asked a few times while it does.
	kfTimes := []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 7 * time.Second}
	kf := time.NewTimer(kfTimes[0])
	defer kf.Stop()
	kfNext := 1
	check := time.NewTicker(layoutCheck)
	defer check.Stop()
	changed := 0
	var kicked time.Time
	for {
		select {
		case <-r.stop:
			halt()
			return runStopped, nil
		case err := <-exited:
			return runExited, exitErr(err)
		case <-kf.C:
			for _, in := range ins {
				if in.t.info.Kind == "video" && in.t.keyframe != nil {
					in.t.keyframe()
				}
			}
			if kfNext < len(kfTimes) {
				kf.Reset(kfTimes[kfNext] - kfTimes[kfNext-1])
				kfNext++
			}
		case now := <-check.C:
			// The watchdog: a composition that makes no frames (a video
			// input ffmpeg cannot decode, an input it stopped reading)
			// sends nothing, and the RTMP server would drop it after its
			// own timeout. Key frames are asked for first; a run that
			// still makes none is restarted.
			still, limit := now.Sub(prog.since(started)), r.opts.stallAfter
			if prog.frames() == 0 {
				limit = r.opts.firstFrameWait
			}
			if still >= limit {
				r.log.Warn("restream: ffmpeg composes no frames, restarting it", "frames", prog.frames(),
					"for", still.Round(time.Second), "ffmpeg", strings.TrimSpace(Redact(tail.String(), r.opts.URL)))
				halt()
				return runStalled, fmt.Errorf("restream: ffmpeg composed no frame for %v", still.Round(time.Second))
			}
			if still >= kickEvery && now.Sub(kicked) >= kickEvery && kfNext >= len(kfTimes) {
				kicked = now
				for _, in := range ins {
					if in.t.info.Kind == "video" && in.t.keyframe != nil {
						in.t.keyframe()
					}
				}
			}
			if sameTracks(r.liveTracks(now), layout) {
				changed = 0
				continue
			}
			if changed++; changed >= 2 {
				now := r.liveTracks(now)
				r.log.Info("restream: the live tracks changed, restarting ffmpeg",
					"joined", trackNames(now, layout), "left", trackNames(layout, now))
				halt()
				return runRelayout, nil
			}
		}
	}
}

func sameTracks(a, b []*LiveTrack) bool {
	return slices.Equal(a, b)
}

// trackNames names the tracks of a that are not in b, for the log.
func trackNames(a, b []*LiveTrack) string {
	var names []string
	for _, t := range a {
		if !slices.Contains(b, t) {
			names = append(names, t.info.SID+" ("+t.info.Kind+" of "+t.info.Identity+")")
		}
	}
	return strings.Join(names, ", ")
}

// loopbackPortPairs finds n pairs of free loopback UDP ports (p, p+1),
// for a track's RTP and RTCP. They are free when found; ffmpeg binds them
// a moment later (a port taken in between fails the run, which is
// retried).
func loopbackPortPairs(n int) ([]int, error) {
	var held []*net.UDPConn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("restream: no free loopback UDP ports")
		}
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, fmt.Errorf("restream: %w", err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p >= 65535 {
			held = append(held, a) // kept so the next try gets another
			continue
		}
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		held = append(held, a)
		if err != nil {
			continue
		}
		held = append(held, b)
		ports = append(ports, p)
	}
	return ports, nil
}

// progressWatch reads ffmpeg's -progress output (key=value lines, a
// block every stats period) and notes when its count of composed frames
// last grew.
type progressWatch struct {
	mu      sync.Mutex
	partial []byte
	n       int64
	grew    time.Time
}

func (p *progressWatch) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := slices.Index(p.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
		if v, ok := strings.CutPrefix(line, "frame="); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > p.n {
				p.n, p.grew = n, time.Now()
			}
		}
	}
	if len(p.partial) > 4096 { // not ffmpeg's progress output: ignored
		p.partial = p.partial[:0]
	}
	return len(b), nil
}

// frames is the count of frames composed so far.
func (p *progressWatch) frames() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// since is when the count last grew, or start if it has not.
func (p *progressWatch) since(start time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.grew.IsZero() {
		return start
	}
	return p.grew
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
