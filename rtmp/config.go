package rtmp

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the "rtmp" section of parley.yaml.
type Config struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	App     string `yaml:"app"`
	// HandshakeTimeout bounds the time from accept until publish starts
	// (handshake, connect, createStream, publish).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadTimeout closes a publisher that sends nothing for this long.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxChunkSize is the largest chunk size a publisher may set (OBS uses 4096).
	MaxChunkSize int `yaml:"max_chunk_size"`
	// MaxMessageSize is the largest audio/video message accepted (bytes);
	// a bigger one closes the connection.
	MaxMessageSize int `yaml:"max_message_size"`
	MaxConnections int `yaml:"max_connections"`
	// FFmpegPath is the AAC->Opus transcoder binary.
	FFmpegPath string `yaml:"ffmpeg_path"`
	// OpusBitrate is the Opus bitrate in bits per second.
	OpusBitrate int `yaml:"opus_bitrate"`
	// MTU is the largest RTP payload for video packets.
	MTU int `yaml:"mtu"`
	// TranscoderRestartMin/Max bound the backoff between transcoder restarts.
	TranscoderRestartMin time.Duration `yaml:"transcoder_restart_min"`
	TranscoderRestartMax time.Duration `yaml:"transcoder_restart_max"`
}

// DefaultConfig returns the defaults documented in parley.yaml.
func DefaultConfig() Config {
	return Config{
		Enabled:              false,
		Listen:               ":1935",
		App:                  "live",
		HandshakeTimeout:     10 * time.Second,
		ReadTimeout:          15 * time.Second,
		WriteTimeout:         10 * time.Second,
		MaxChunkSize:         65536,
		MaxMessageSize:       8 << 20,
		MaxConnections:       64,
		FFmpegPath:           "/usr/bin/ffmpeg",
		OpusBitrate:          64000,
		MTU:                  1200,
		TranscoderRestartMin: 250 * time.Millisecond,
		TranscoderRestartMax: 10 * time.Second,
	}
}

// Validate checks every field; errors name the yaml key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("rtmp.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port: %v", c.Listen, err)
	}
	if c.App == "" || strings.ContainsAny(c.App, "/? ") {
		bad("app", "%q must be a non-empty name without '/', '?' or spaces", c.App)
	}
	if c.HandshakeTimeout <= 0 {
		bad("handshake_timeout", "must be > 0, got %s", c.HandshakeTimeout)
	}
	if c.ReadTimeout <= 0 {
		bad("read_timeout", "must be > 0, got %s", c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		bad("write_timeout", "must be > 0, got %s", c.WriteTimeout)
	}
	if c.MaxChunkSize < 128 || c.MaxChunkSize > 0xffffff {
		bad("max_chunk_size", "must be in [128, 16777215], got %d", c.MaxChunkSize)
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > 0xffffff {
		bad("max_message_size", "must be in [1024, 16777215], got %d", c.MaxMessageSize)
	}
	if c.MaxConnections <= 0 {
		bad("max_connections", "must be > 0, got %d", c.MaxConnections)
	}
	if c.FFmpegPath == "" {
		bad("ffmpeg_path", "must not be empty")
	}
	if c.OpusBitrate < 6000 || c.OpusBitrate > 510000 {
		bad("opus_bitrate", "must be in [6000, 510000], got %d", c.OpusBitrate)
	}
	if c.MTU < 200 || c.MTU > 1400 {
		bad("mtu", "must be in [200, 1400], got %d", c.MTU)
	}
	if c.TranscoderRestartMin <= 0 || c.TranscoderRestartMax < c.TranscoderRestartMin {
		bad("transcoder_restart_min", "must be > 0 and <= transcoder_restart_max (%s, %s)", c.TranscoderRestartMin, c.TranscoderRestartMax)
	}
	return errors.Join(errs...)
}
