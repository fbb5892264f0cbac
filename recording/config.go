package recording

import (
	"errors"
	"time"
)

// Config is the recording section of Parley's configuration.
type Config struct {
	// Enabled lets moderators and the admin API record meetings.
	Enabled bool `yaml:"enabled"`
	// Dir holds the recordings; empty means <data_dir>/recordings.
	Dir string `yaml:"dir"`
	// MaxTotalBytes is the disk budget of all recordings together: a new
	// recording does not start when it is spent, and a running one stops
	// when it is reached.
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// MaxRecordingBytes stops one recording (with a notice to the room)
	// when its files reach this size.
	MaxRecordingBytes int64 `yaml:"max_recording_bytes"`
	// SyncInterval is how often open files are flushed and fsynced and the
	// manifest rewritten: at most this much is lost to a power cut (a
	// killed process loses at most a second, the files' cluster length).
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Compose makes a composed MP4 of each recording once it stops
	// (Store.Compose: ffmpeg, one at a time).
	Compose bool `yaml:"compose"`
	// StopWhenEmpty stops a recording once its room has had nobody in it
	// for this long (a reconnect is not the end of a meeting); 0 never.
	StopWhenEmpty time.Duration `yaml:"stop_when_empty"`
	// RestreamAllowedNetworks are CIDRs a restream may be sent to even
	// though they are special-purpose (loopback, private, link-local...):
	// by default a moderator can only point a restream at public
	// addresses, so it cannot be used to reach the server's own network.
	RestreamAllowedNetworks []string `yaml:"restream_allowed_networks"`
}

// DefaultConfig: 20 GiB for all recordings, 4 GiB each (about 8 hours of
// a 5-person call at the web client's bitrates), fsync every 2 s, a
// composed MP4 after each recording.
func DefaultConfig() Config {
	return Config{
		MaxTotalBytes:     20 << 30,
		MaxRecordingBytes: 4 << 30,
		SyncInterval:      2 * time.Second,
		Compose:           true,
		StopWhenEmpty:     30 * time.Second,
	}
}

// Validate names the failing key.
func (c Config) Validate() error {
	switch {
	case c.MaxTotalBytes <= 0:
		return errors.New("recording.max_total_bytes: must be positive")
	case c.MaxRecordingBytes <= 0 || c.MaxRecordingBytes > c.MaxTotalBytes:
		return errors.New("recording.max_recording_bytes: must be positive and at most recording.max_total_bytes")
	case c.SyncInterval < 100*time.Millisecond:
		return errors.New("recording.sync_interval: must be at least 100ms")
	case c.StopWhenEmpty < 0:
		return errors.New("recording.stop_when_empty: must not be negative (0 never stops)")
	}
	return nil
}
