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
	HandshakeTimeout time.Duration `yaml:"handshake_timeout" doc:"deadline from accept until the publish key is accepted (handshake, connect, createStream, publish); the connection is closed then"`
	// ReadTimeout closes a publisher that sends nothing for this long.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxChunkSize is the largest chunk size a publisher may set (OBS uses 4096).
	MaxChunkSize int `yaml:"max_chunk_size"`
	// MaxMessageSize is the largest message accepted once publishing
	// (bytes), checked against the length a chunk header declares; a
	// bigger one closes the connection before its body is buffered.
	MaxMessageSize int `yaml:"max_message_size" doc:"largest message (a video frame) a publisher may send, checked when its chunk header declares it"`
	MaxConnections int `yaml:"max_connections" doc:"open RTMP connections, publishing or not"`
	// The limits below bound what a client can make the server hold before
	// its stream key is accepted; see the limits table in rtmp/README.md.
	MaxConnectionsPerIP        int `yaml:"max_connections_per_ip" doc:"open RTMP connections from one IPv4 address or IPv6 /64"`
	MaxUnauthenticated         int `yaml:"max_unauthenticated" doc:"connections whose publish has not been accepted yet; at most half of max_connections, so publishers always keep slots"`
	MaxUnauthenticatedPerIP    int `yaml:"max_unauthenticated_per_ip" doc:"of those, from one IPv4 address or IPv6 /64"`
	MaxChunkStreams            int `yaml:"max_chunk_streams" doc:"RTMP chunk streams one connection may use (ffmpeg and OBS use 4 to 6)"`
	MaxCommandSize             int `yaml:"max_command_size" doc:"largest command or metadata message (anything but audio and video), and largest message of any kind before the publish key is accepted; connect, publish and metadata are a few hundred bytes"`
	UnauthenticatedBufferBytes int `yaml:"unauthenticated_buffer_bytes" doc:"sum over a connection's chunk streams of the largest message declared on each, before the publish key is accepted; at most max_buffer_bytes is used"`
	MaxBufferBytes             int `yaml:"max_buffer_bytes" doc:"the same sum once publishing; at least max_message_size"`
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
		Enabled:                    false,
		Listen:                     ":1935",
		App:                        "live",
		HandshakeTimeout:           10 * time.Second,
		ReadTimeout:                15 * time.Second,
		WriteTimeout:               10 * time.Second,
		MaxChunkSize:               65536,
		MaxMessageSize:             8 << 20,
		MaxConnections:             64,
		MaxConnectionsPerIP:        8,
		MaxUnauthenticated:         16,
		MaxUnauthenticatedPerIP:    4,
		MaxChunkStreams:            16,
		MaxCommandSize:             16 << 10,
		UnauthenticatedBufferBytes: 64 << 10,
		MaxBufferBytes:             16 << 20,
		FFmpegPath:                 "/usr/bin/ffmpeg",
		OpusBitrate:                64000,
		MTU:                        1200,
		TranscoderRestartMin:       250 * time.Millisecond,
		TranscoderRestartMax:       10 * time.Second,
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
	if c.MaxConnectionsPerIP <= 0 || c.MaxConnectionsPerIP > c.MaxConnections {
		bad("max_connections_per_ip", "must be in [1, max_connections (%d)], got %d", c.MaxConnections, c.MaxConnectionsPerIP)
	}
	if c.MaxUnauthenticated <= 0 || c.MaxUnauthenticated > max(1, c.MaxConnections/2) {
		bad("max_unauthenticated", "must be in [1, max_connections/2 (%d)], got %d", max(1, c.MaxConnections/2), c.MaxUnauthenticated)
	}
	if c.MaxUnauthenticatedPerIP <= 0 || c.MaxUnauthenticatedPerIP > c.MaxUnauthenticated || c.MaxUnauthenticatedPerIP > c.MaxConnectionsPerIP {
		bad("max_unauthenticated_per_ip", "must be in [1, min(max_unauthenticated, max_connections_per_ip)], got %d", c.MaxUnauthenticatedPerIP)
	}
	if c.MaxChunkStreams < 4 || c.MaxChunkStreams > 1024 {
		bad("max_chunk_streams", "must be in [4, 1024], got %d", c.MaxChunkStreams)
	}
	// max_command_size and unauthenticated_buffer_bytes are used capped at
	// max_message_size and max_buffer_bytes (see limits), so lowering
	// those alone works.
	if c.MaxCommandSize < 1024 || c.MaxCommandSize > 0xffffff {
		bad("max_command_size", "must be in [1024, 16777215], got %d", c.MaxCommandSize)
	}
	if c.UnauthenticatedBufferBytes < c.MaxCommandSize || c.UnauthenticatedBufferBytes > 1<<30 {
		bad("unauthenticated_buffer_bytes", "must be in [max_command_size (%d), 1073741824], got %d",
			c.MaxCommandSize, c.UnauthenticatedBufferBytes)
	}
	if c.MaxBufferBytes < c.MaxMessageSize || c.MaxBufferBytes > 1<<30 {
		bad("max_buffer_bytes", "must be in [max_message_size (%d), 1073741824], got %d", c.MaxMessageSize, c.MaxBufferBytes)
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

// limits are the chunk limits before and after the publish key is
// accepted. Before, they never exceed after: a connection gains room by
// authenticating, never loses it.
func (c Config) limits() (unauth, authed chunkLimits) {
	authed = chunkLimits{
		MaxMessage:      uint32(c.MaxMessageSize),
		MaxBuffered:     int64(c.MaxBufferBytes),
		MaxChunkStreams: c.MaxChunkStreams,
		MaxChunkSize:    uint32(c.MaxChunkSize),
	}
	authed.MaxCommand = min(authed.MaxMessage, uint32(c.MaxCommandSize))
	unauth = authed
	unauth.MaxMessage = authed.MaxCommand
	unauth.MaxBuffered = min(authed.MaxBuffered, int64(c.UnauthenticatedBufferBytes))
	return unauth, authed
}
