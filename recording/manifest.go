package recording

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// State of a recording, as its manifest says.
type State string

// A recording is "recording" while it runs, "complete" once stopped, and
// "incomplete" when the process died while it ran.
const (
	StateRecording  State = "recording"
	StateComplete   State = "complete"
	StateIncomplete State = "incomplete"
)

const manifestName = "manifest.json"

// Manifest describes a recording so that tools can line its files up:
// every track's offsets are on the recording's timeline (0 = Started).
type Manifest struct {
	ID         string     `json:"id"`
	Room       string     `json:"room"`
	State      State      `json:"state"`
	StartedBy  string     `json:"startedBy,omitempty"`
	Started    time.Time  `json:"started"`
	Ended      *time.Time `json:"ended,omitempty"`
	StopReason string     `json:"stopReason,omitempty"`
	Bytes      int64      `json:"bytes"`
	Tracks     []TrackRef `json:"tracks"`
	// Composed is the composed MP4's file name once it was made.
	Composed string `json:"composed,omitempty"`
}

// TrackRef is one track's file.
type TrackRef struct {
	SID      string `json:"sid"`
	Identity string `json:"identity"`
	Name     string `json:"name,omitempty"`
	Kind     string `json:"kind"`   // audio or video
	Source   string `json:"source"` // camera, microphone, screen, ...
	Codec    string `json:"codec"`  // the RTP codec, e.g. video/VP8
	File     string `json:"file"`
	// StartMs and EndMs are the first and last media written, in ms from
	// the recording's start.
	StartMs int64 `json:"startMs"`
	EndMs   int64 `json:"endMs"`
	Frames  int   `json:"frames"`
	Bytes   int64 `json:"bytes"`
}

// writeManifest replaces dir's manifest atomically (write, fsync, rename).
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("recording: encode manifest: %w", err)
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if werr != nil || serr != nil || cerr != nil {
		return fmt.Errorf("recording: write manifest: %w", firstErr(werr, serr, cerr))
	}
	if err := os.Rename(tmp, filepath.Join(dir, manifestName)); err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	return nil
}

func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("recording: %s: %w", dir, err)
	}
	return &m, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
