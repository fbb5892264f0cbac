package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// FFmpegOptions configures FFmpegTranscoder.
type FFmpegOptions struct {
	Path    string // ffmpeg binary
	Bitrate int    // Opus bits per second
	Logger  *slog.Logger
}

// FFmpegTranscoder runs one audio-only ffmpeg per stream: ADTS AAC on
// stdin, Ogg/Opus on stdout with one packet per page so nothing waits for
// a page to fill. Each ffmpeg is in its own process group, is killed with
// its context or Close, and gets SIGKILL if Parley itself dies (Pdeathsig).
type FFmpegTranscoder struct {
	opts FFmpegOptions
}

// NewFFmpegTranscoder returns a Transcoder backed by ffmpeg.
func NewFFmpegTranscoder(opts FFmpegOptions) *FFmpegTranscoder {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Bitrate == 0 {
		opts.Bitrate = 64000
	}
	return &FFmpegTranscoder{opts: opts}
}

func (f *FFmpegTranscoder) args(cfg AudioConfig) []string {
	ch := min(cfg.Channels, 2)
	return []string{
		"-hide_banner", "-nostdin", "-loglevel", "error",
		// Small probe: the input format is given and ADTS headers carry
		// everything the decoder needs, so start at the first frame.
		"-fflags", "+nobuffer", "-probesize", "32", "-analyzeduration", "0",
		"-f", "aac", "-i", "pipe:0",
		"-vn", "-c:a", "libopus", "-b:a", strconv.Itoa(f.opts.Bitrate),
		"-ar", "48000", "-ac", strconv.Itoa(ch),
		"-frame_duration", "20", "-application", "lowdelay",
		// One 20 ms packet per Ogg page, flushed at once: with the
		// default (1 s pages) or page_duration 0, ffmpeg holds all output
		// until stdin closes; without the small probe it waits ~1 s.
		"-f", "ogg", "-page_duration", "20000", "-flush_packets", "1",
		"pipe:1",
	}
}

// Start launches ffmpeg for one AAC stream.
func (f *FFmpegTranscoder) Start(ctx context.Context, cfg AudioConfig) (TranscodeStream, error) {
	if _, err := os.Stat(f.opts.Path); err != nil {
		if _, lerr := exec.LookPath(f.opts.Path); lerr != nil {
			return nil, fmt.Errorf("%w: ffmpeg at %q: %w (install it: apt-get install -y ffmpeg)", ErrTranscoderUnavailable, f.opts.Path, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, f.opts.Path, f.args(cfg)...)
	ownChild(cmd)
	cmd.WaitDelay = 2 * time.Second
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ffmpeg stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ffmpeg stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w: start ffmpeg: %w", ErrTranscoderUnavailable, err)
		}
		return nil, fmt.Errorf("start ffmpeg: %w", err)
	}
	f.opts.Logger.Debug("ffmpeg started", "pid", cmd.Process.Pid, "sample_rate", cfg.SampleRate, "channels", cfg.Channels)
	return &ffmpegStream{
		cfg:    cfg,
		cmd:    cmd,
		cancel: cancel,
		stdin:  stdin,
		ogg:    newOggReader(stdout),
		stderr: stderr,
		log:    f.opts.Logger,
	}, nil
}

type ffmpegStream struct {
	cfg    AudioConfig
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	ogg    *oggReader
	stderr *tailBuffer
	log    *slog.Logger
	buf    []byte
	heads  int // Ogg header packets seen (OpusHead, OpusTags)

	closeOnce sync.Once
	closeErr  error
}

func (s *ffmpegStream) WriteAAC(au []byte) error {
	var err error
	s.buf, err = appendADTS(s.buf[:0], s.cfg, au)
	if err != nil {
		return err
	}
	if _, err := s.stdin.Write(s.buf); err != nil {
		return fmt.Errorf("write to ffmpeg: %w (stderr: %s)", err, s.stderr.String())
	}
	return nil
}

func (s *ffmpegStream) ReadOpus() (OpusPacket, error) {
	for {
		p, err := s.ogg.next()
		if err != nil {
			return OpusPacket{}, fmt.Errorf("read from ffmpeg: %w (stderr: %s)", err, s.stderr.String())
		}
		if s.heads < 2 && (bytes.HasPrefix(p, []byte("OpusHead")) || bytes.HasPrefix(p, []byte("OpusTags"))) {
			s.heads++
			continue
		}
		n, err := opusSamples(p)
		if err != nil {
			return OpusPacket{}, err
		}
		return OpusPacket{Data: p, Samples: n}, nil
	}
}

func (s *ffmpegStream) Close() error {
	s.closeOnce.Do(func() {
		_ = s.stdin.Close()
		s.cancel() // kills the process group
		err := s.cmd.Wait()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("wait ffmpeg: %w", err)
		}
	})
	return s.closeErr
}

// tailBuffer keeps the last max bytes written (ffmpeg's stderr) for errors.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
