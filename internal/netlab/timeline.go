//go:build linux

package netlab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Timeline is what a scenario measured, one Sample per host per second:
// written as JSON for tools and as a PNG plot for people.
type Timeline struct {
	Scenario string   `json:"scenario"`
	Notes    []string `json:"notes,omitempty"` // what happened when, e.g. "t=10 cap 300 kbit/s on carol"
	Samples  []Sample `json:"samples"`
}

// Sample is one host's view at one second of the run.
type Sample struct {
	T    float64 `json:"t"` // seconds since the start of the scenario
	Host string  `json:"host"`
	// DownCapKbps is the host's downlink cap at the time (0: none).
	DownCapKbps int `json:"downCapKbps"`
	// AvailableOutgoingKbps is the browser's estimate for its publisher
	// connection (Chrome's availableOutgoingBitrate).
	AvailableOutgoingKbps float64 `json:"availableOutgoingKbps"`
	// ServerEstimateKbps is the SFU's bandwidth estimate for the host's
	// subscriber connection, when the test can read it (0 otherwise).
	ServerEstimateKbps float64 `json:"serverEstimateKbps,omitempty"`
	// Sending lists the host's own camera layers being encoded, as
	// "rid:height", and why the browser limits them (e.g. "cpu").
	Sending []string `json:"sending,omitempty"`
	Tracks  []Track  `json:"tracks"`
}

// Track is one received track in a Sample.
type Track struct {
	From string `json:"from"` // the publisher's name
	Kind string `json:"kind"` // "audio" or "video"
	// Kbps is the received bitrate over the last second.
	Kbps float64 `json:"kbps"`
	// Video: frames decoded in the last second, the decoded size, and
	// Chrome's freeze counters (cumulative).
	FPS           float64 `json:"fps,omitempty"`
	Width         int     `json:"width,omitempty"`
	Height        int     `json:"height,omitempty"`
	FreezeCount   int     `json:"freezeCount,omitempty"`
	FreezeSeconds float64 `json:"freezeSeconds,omitempty"`
	// Audio: concealed samples over received samples, cumulative, in
	// %, and the two counters.
	ConcealedPct     float64 `json:"concealedPct,omitempty"`
	AudioSamples     int64   `json:"audioSamples,omitempty"`
	ConcealedSamples int64   `json:"concealedSamples,omitempty"`
	// JitterBufferMs is the average jitter buffer delay so far.
	JitterBufferMs float64 `json:"jitterBufferMs,omitempty"`
}

// Write saves the timeline as dir/name.json and its plot as dir/name.png.
func (tl *Timeline) Write(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netlab: timeline dir: %w", err)
	}
	js, err := tl.marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), js, 0o644); err != nil {
		return fmt.Errorf("netlab: write timeline: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, name+".png"))
	if err != nil {
		return fmt.Errorf("netlab: plot: %w", err)
	}
	if err := tl.Plot(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// marshal writes the timeline as JSON with one sample per line: small
// enough to keep in the repository, still readable and diffable.
func (tl *Timeline) marshal() ([]byte, error) {
	head, err := json.Marshal(struct {
		Scenario string   `json:"scenario"`
		Notes    []string `json:"notes,omitempty"`
	}{tl.Scenario, tl.Notes})
	if err != nil {
		return nil, fmt.Errorf("netlab: timeline: %w", err)
	}
	var b bytes.Buffer
	b.Write(head[:len(head)-1]) // without the closing brace
	b.WriteString(",\n\"samples\": [\n")
	for i, s := range tl.Samples {
		js, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("netlab: timeline: %w", err)
		}
		b.Write(js)
		if i < len(tl.Samples)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes(), nil
}
