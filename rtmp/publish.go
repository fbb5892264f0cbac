package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

const (
	h264PayloadType = 96
	opusPayloadType = 111
	bitrateWindow   = 5 * time.Second
)

// refusal stops a publish with a message the publisher sees (an onStatus
// error; ffmpeg prints it as "Server error: <Desc>").
type refusal struct {
	Reason string // metric label
	Code   string // onStatus code
	Desc   string
	Err    error
}

func (r *refusal) Error() string { return r.Desc + ": " + r.Err.Error() }
func (r *refusal) Unwrap() error { return r.Err }

// ErrBFrames is the refusal of a stream whose frames are reordered.
var ErrBFrames = errors.New("H.264 B-frames are not supported")

// bFramesAdvice is what the publisher reads when refused for B-frames.
const bFramesAdvice = "parley: H.264 B-frames are not supported by WebRTC. In OBS set Settings > Output > (Advanced) x264 Profile to baseline, or B-frames to 0 (x264 options: bframes=0); in ffmpeg use -bf 0"

// publish is one accepted stream: it remuxes video and feeds audio to the
// transcoder, writing RTP to the Session's tracks. Its video methods run
// on the RTMP connection's read goroutine; audio work runs in the pipeline.
type publish struct {
	ctx     context.Context
	cancel  context.CancelFunc
	info    StreamInfo
	session Session
	log     *slog.Logger
	m       *metrics
	opts    publishOptions

	rtmpStream uint32 // RTMP message stream id, for onStatus

	// video
	avc         *avcConfig
	profileID   string
	videoW      TrackWriter
	pkt         h264Packetizer
	vclock      *rtmpClock
	lastPTS     int64
	havePTS     bool
	gotKeyframe bool
	lastKeyMs   int64
	paramSets   [][]byte // SPS and PPS to send in front of every keyframe
	onVideoPkts func(in time.Time, pkts []*rtp.Packet)

	// audio
	audioCfg   *AudioConfig
	audioW     TrackWriter
	audio      *audioPipeline
	audioOff   bool // unsupported audio: ignored for the rest of the publish
	audioSSRC  uint32
	audioTSOff uint32
	// ended is set when a TrackWriter says the publish must end (its key
	// was revoked, or the Sink can no longer carry it), so an audio-only
	// publish ends too (endRefusal). The first reason wins.
	ended atomic.Pointer[refusal]

	// bitrate windows (wall time)
	winStart time.Time
	winBytes map[string]int
}

type publishOptions struct {
	MTU        int
	Transcoder Transcoder
	RestartMin time.Duration
	RestartMax time.Duration
	onOpus     func(p *rtp.Packet)
}

func newPublish(ctx context.Context, info StreamInfo, s Session, o publishOptions, log *slog.Logger, m *metrics) *publish {
	ctx, cancel := context.WithCancel(ctx)
	info.Key = "" // the Sink had it at Start; nothing here needs the secret
	return &publish{
		ctx: ctx, cancel: cancel, info: info, session: s, log: log, m: m, opts: o,
		pkt:        h264Packetizer{mtu: o.MTU, pt: h264PayloadType, ssrc: rand.Uint32(), seq: uint16(rand.Uint32())},
		vclock:     newRTMPClock(90000, rand.Uint32()),
		audioSSRC:  rand.Uint32(),
		audioTSOff: rand.Uint32(),
		winStart:   time.Now(),
		winBytes:   map[string]int{},
	}
}

func (p *publish) streamID() uint32 { return p.rtmpStream }

func (p *publish) account(kind string, n int) {
	p.m.bytes(kind, n)
	p.winBytes[kind] += n
	if el := time.Since(p.winStart); el >= bitrateWindow {
		for k, b := range p.winBytes {
			p.m.streamBitrate(k, float64(b*8)/el.Seconds())
			p.winBytes[k] = 0
		}
		p.winStart = time.Now()
	}
}

// video handles one FLV video tag body at RTMP timestamp ts (ms).
func (p *publish) video(ts uint32, body []byte) error {
	in := time.Now()
	p.account("video", len(body))
	tag, err := parseVideoTag(body)
	if err != nil {
		if errors.Is(err, ErrUnsupportedVideoCodec) {
			return &refusal{Reason: reasonVideoCodec, Code: "NetStream.Publish.Failed", Desc: "parley: " + err.Error(), Err: err}
		}
		return err
	}
	if tag.Command {
		return nil
	}
	switch tag.PacketType {
	case avcSequenceHeader:
		return p.videoConfig(tag.Data)
	case avcEndOfSequence:
		return nil
	}
	if p.avc == nil {
		return nil // pictures before the decoder configuration are undecodable
	}
	nalus, err := splitNALUs(tag.Data, p.avc.LengthSize)
	if err != nil {
		return err
	}
	ms := p.vclock.unwrap(ts)
	pts := ms + int64(tag.CompositionTime)
	// WebRTC receivers decode in arrival order and play by RTP timestamp;
	// a frame presented before one decoded earlier means B-frames.
	if p.havePTS && pts < p.lastPTS {
		return &refusal{Reason: reasonBFrames, Code: "NetStream.Publish.Failed", Desc: bFramesAdvice, Err: ErrBFrames}
	}
	p.lastPTS, p.havePTS = pts, true

	out := make([][]byte, 0, len(nalus)+2)
	keyframe := false
	for _, n := range nalus {
		switch n[0] & 0x1f {
		case naluAUD, 12: // access unit delimiter, filler: useless over RTP
			continue
		case naluSPS, naluPPS:
			// In-band parameter sets replace the stored ones; they are sent
			// (once) in front of the keyframe below.
			p.updateParamSet(n)
			continue
		case naluIDR:
			keyframe = true
		}
		out = append(out, n)
	}
	if !keyframe && !p.gotKeyframe {
		return nil // a receiver cannot start on a delta frame
	}
	if keyframe {
		if p.gotKeyframe {
			p.m.keyframeInterval(float64(ms-p.lastKeyMs) / 1000)
		}
		p.gotKeyframe, p.lastKeyMs = true, ms
		out = append(append(make([][]byte, 0, len(out)+len(p.paramSets)), p.paramSets...), out...)
	}
	if len(out) == 0 {
		return nil
	}
	pkts := p.pkt.packetize(out, p.vclock.rtp(pts))
	for _, pk := range pkts {
		if err := p.videoW.WriteRTP(pk); err != nil {
			if p.writerEnded(err) {
				return p.endRefusal()
			}
			p.log.LogAttrs(p.ctx, slog.LevelDebug, "video write failed", slog.Any("err", err))
		}
	}
	p.m.remuxed(time.Since(in).Seconds())
	if p.onVideoPkts != nil {
		p.onVideoPkts(in, pkts)
	}
	return nil
}

func (p *publish) updateParamSet(n []byte) {
	t := n[0] & 0x1f
	for i, ps := range p.paramSets {
		if ps[0]&0x1f == t {
			p.paramSets[i] = append(ps[:0:0], n...)
			return
		}
	}
	p.paramSets = append(p.paramSets, append([]byte(nil), n...))
}

func (p *publish) videoConfig(b []byte) error {
	cfg, err := parseAVCConfig(b)
	if err != nil {
		return err
	}
	sps, err := parseSPS(cfg.SPS[0])
	if err != nil {
		return err
	}
	pid, err := profileLevelID(sps)
	if err != nil {
		return &refusal{Reason: reasonVideoCodec, Code: "NetStream.Publish.Failed", Desc: "parley: " + err.Error(), Err: err}
	}
	p.avc = &cfg
	p.paramSets = nil
	for _, s := range cfg.SPS {
		p.updateParamSet(s)
	}
	p.paramSets = append(p.paramSets, cfg.PPS...)
	if p.videoW != nil {
		if pid[:4] != p.profileID[:4] {
			// The SDP cannot change under a live track; browsers decode
			// within a family, so a different family is refused.
			err := fmt.Errorf("%w: profile changed mid-stream from %s to %s", ErrUnsupportedVideoCodec, p.profileID, pid)
			return &refusal{Reason: reasonVideoCodec, Code: "NetStream.Publish.Failed", Desc: "parley: video profile changed mid-stream; restart the stream", Err: err}
		}
		p.gotKeyframe = false
		return nil
	}
	w, err := p.session.AddVideoTrack(TrackSpec{
		MimeType:    "video/H264",
		ClockRate:   90000,
		SDPFmtpLine: h264FmtpLine(pid),
		PayloadType: h264PayloadType,
		SSRC:        p.pkt.ssrc,
		Width:       sps.Width,
		Height:      sps.Height,
	})
	if err != nil {
		return fmt.Errorf("add video track: %w", err)
	}
	p.videoW, p.profileID = w, pid
	p.log.Info("video track added", "profile_level_id", pid, "width", sps.Width, "height", sps.Height)
	return nil
}

// audio handles one FLV audio tag body. Audio problems never stop the
// publish: the Session is told audio is unavailable and video continues.
func (p *publish) audioTag(ts uint32, body []byte) {
	p.account("audio", len(body))
	if p.audioOff {
		return
	}
	tag, err := parseAudioTag(body)
	if err != nil {
		p.disableAudio(err)
		return
	}
	if tag.PacketType == aacSequenceHeader {
		cfg, err := parseAudioSpecificConfig(tag.Data)
		if err != nil {
			p.disableAudio(err)
			return
		}
		p.audioConfig(cfg)
		return
	}
	if p.audio != nil && len(tag.Data) > 0 {
		p.audio.push(tag.Data)
	}
}

func (p *publish) disableAudio(err error) {
	p.audioOff = true
	p.log.Warn("audio ignored; video continues", "err", err)
	if p.audio != nil {
		p.audio.stop()
		p.audio = nil
	}
	p.session.AudioUnavailable(err)
}

func (p *publish) audioConfig(cfg AudioConfig) {
	if p.audioCfg != nil && string(p.audioCfg.ASC) == string(cfg.ASC) {
		return // OBS repeats the sequence header; nothing changed
	}
	if p.audioW == nil {
		w, err := p.session.AddAudioTrack(TrackSpec{
			MimeType:    "audio/opus",
			ClockRate:   48000,
			Channels:    2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
			PayloadType: opusPayloadType,
			SSRC:        p.audioSSRC,
		})
		if err != nil {
			p.disableAudio(fmt.Errorf("add audio track: %w", err))
			return
		}
		p.audioW = w
	}
	if p.audio != nil {
		p.audio.stop()
	}
	p.audioCfg = &cfg
	p.log.Info("audio track added", "sample_rate", cfg.SampleRate, "channels", cfg.Channels)
	p.audio = startAudioPipeline(p.ctx, audioPipelineOptions{
		Config: cfg, Transcoder: p.opts.Transcoder, Writer: p.audioW, Session: p.session,
		SSRC: p.audioSSRC, TSOffset: p.audioTSOff,
		RestartMin: p.opts.RestartMin, RestartMax: p.opts.RestartMax,
		Logger: p.log, Metrics: p.m, onOpus: p.opts.onOpus,
		OnWriteError: func(err error) { p.writerEnded(err) },
	})
}

// writerEnded records why the publish must end when a TrackWriter's
// error says so (ErrRevoked, ErrSessionEnded) and reports whether it did.
func (p *publish) writerEnded(err error) bool {
	var r *refusal
	switch {
	case errors.Is(err, ErrRevoked):
		r = revokedKeyRefusal(ErrRevoked)
	case errors.Is(err, ErrSessionEnded):
		r = &refusal{Reason: reasonSinkEnded, Code: "NetStream.Publish.Failed", Desc: "parley: stream ended by the server, reconnect", Err: err}
	default:
		return false
	}
	p.ended.CompareAndSwap(nil, r)
	return true
}

// endRefusal is the refusal that ends a publish a TrackWriter ended
// (writerEnded), on the video path or once the audio pipeline noticed;
// nil otherwise.
func (p *publish) endRefusal() error {
	if r := p.ended.Load(); r != nil {
		return r
	}
	return nil
}

// revokedKeyRefusal is what a publisher hears about a revoked key, at
// publish time or while live.
func revokedKeyRefusal(err error) *refusal {
	return &refusal{Reason: reasonRevokedKey, Code: "NetStream.Publish.BadName", Desc: "parley: stream key revoked", Err: err}
}

// close stops the audio pipeline (and its ffmpeg) and ends the Session.
func (p *publish) close() error {
	p.cancel()
	if p.audio != nil {
		p.audio.stop()
	}
	return p.session.Close()
}
