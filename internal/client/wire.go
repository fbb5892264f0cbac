// Package client is a Go client of Parley's signaling protocol
// (docs/protocol.md) with pion PeerConnections. The load tool and the
// server's end-to-end tests use it to act as a participant without a
// browser. It is written against the protocol document, not the server's
// types, so it catches drift between the two.
package client

import "encoding/json"

type envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Re   string          `json:"re,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// TrackMeta is one entry of a participant's track list.
type TrackMeta struct {
	SID     string `json:"sid,omitempty"`
	TrackID string `json:"trackId"`
	Kind    string `json:"kind"`
	Source  string `json:"source"`
	Muted   bool   `json:"muted"`
}

// Participant is a participant as the protocol describes it.
type Participant struct {
	SID      string      `json:"sid"`
	Identity string      `json:"identity"`
	Name     string      `json:"name"`
	Tracks   []TrackMeta `json:"tracks"`
}

type joinData struct {
	Token    string `json:"token"`
	Protocol int    `json:"protocol"`
}

// Joined is the server's answer to join.
type Joined struct {
	Room         string        `json:"room"`
	Participant  Participant   `json:"participant"`
	Participants []Participant `json:"participants"`
}

type sdpData struct {
	SDP string `json:"sdp"`
}

type candidateData struct {
	Target    string          `json:"target"`
	Candidate json.RawMessage `json:"candidate"`
}

type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type pingData struct {
	TS int64 `json:"ts"`
}
