package main

import (
	"errors"
	"sync/atomic"

	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling"
)

// streamDirectory forwards ingest's room directory calls to the signaling
// server once it exists. Ingest is built before signaling (signaling's
// routes include WHIP), so the target is set after both are made and
// before either runs; until then streams are refused rather than lost.
type streamDirectory struct {
	target atomic.Pointer[signaling.Server]
}

var _ ingest.Directory = (*streamDirectory)(nil)

func (d *streamDirectory) set(s *signaling.Server) { d.target.Store(s) }

func (d *streamDirectory) AddStream(room, participantID, identity, name string) error {
	s := d.target.Load()
	if s == nil {
		return errors.New("rooms are not ready yet")
	}
	return s.AddStream(room, participantID, identity, name)
}

func (d *streamDirectory) StreamTrackPublished(room, participantID string, t sfu.TrackInfo, source string) {
	if s := d.target.Load(); s != nil {
		s.StreamTrackPublished(room, participantID, t, source)
	}
}

func (d *streamDirectory) StreamTrackUnpublished(room, participantID string, t sfu.TrackInfo) {
	if s := d.target.Load(); s != nil {
		s.StreamTrackUnpublished(room, participantID, t)
	}
}

func (d *streamDirectory) StreamAudioUnavailable(room, participantID, reason string) {
	if s := d.target.Load(); s != nil {
		s.StreamAudioUnavailable(room, participantID, reason)
	}
}

func (d *streamDirectory) RemoveStream(room, participantID string) {
	if s := d.target.Load(); s != nil {
		s.RemoveStream(room, participantID)
	}
}
