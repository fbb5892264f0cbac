package rtmp

import (
	"context"
	"errors"
)

// ErrTranscoderUnavailable means the transcoder cannot run at all (for
// example the ffmpeg binary is missing); Parley keeps publishing video.
var ErrTranscoderUnavailable = errors.New("audio transcoder unavailable")

// OpusPacket is one Opus packet (RFC 6716) and its duration.
type OpusPacket struct {
	Data    []byte
	Samples int // duration in 48 kHz samples
}

// Transcoder turns AAC into Opus. The default is an ffmpeg subprocess
// (FFmpegTranscoder); any other implementation can replace it.
type Transcoder interface {
	// Start begins transcoding one AAC stream. It returns an error wrapping
	// ErrTranscoderUnavailable when the transcoder cannot run at all.
	Start(ctx context.Context, cfg AudioConfig) (TranscodeStream, error)
}

// TranscodeStream is one running transcode. WriteAAC and ReadOpus are
// called from different goroutines. When the transcode dies both return
// errors and the caller closes it and may Start another.
type TranscodeStream interface {
	// WriteAAC takes one raw AAC access unit (no ADTS header), in order.
	WriteAAC(au []byte) error
	// ReadOpus blocks for the next Opus packet.
	ReadOpus() (OpusPacket, error)
	// Close stops the transcode and releases everything it holds (for
	// ffmpeg: the process is killed and reaped). Safe to call twice.
	Close() error
}
