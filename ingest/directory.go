package ingest

import "github.com/parleyhq/parley/sfu"

// Directory is how the room directory (*rooms.Directory, built by cmd
// before ingest and signaling) learns about ingest streams, so viewers
// see each stream as a participant with its tracks. It is declared here,
// by its user, and uses only strings and sfu types, so ingest needs
// nothing of the rooms package.
//
// Calls for one stream come in this order, never concurrently:
// AddStream, then any number of StreamTrackPublished /
// StreamTrackUnpublished / StreamAudioUnavailable, then RemoveStream.
// A publisher that reconnects within Config.ReconnectGrace keeps its
// participant: its old tracks are unpublished, new ones published, and
// RemoveStream comes only when the stream has been gone for the grace
// period. Implementations must not block (queue a message at most) and
// must not call back into the Service.
type Directory interface {
	// AddStream announces a stream joining room as a participant. The
	// participantID ("PA_...") is the one in its tracks' stream ids
	// ("<participantID>|<track sid>"); identity comes from the stream key
	// and name is its display name. Viewers should see it marked as a
	// stream (no chat, no call controls). An error refuses the publish,
	// for instance when a user with that identity is in the room or the
	// room is full; the publisher is told the room refused the stream.
	AddStream(room, participantID, identity, name string) error
	// StreamTrackPublished reports a track the SFU now forwards for the
	// stream; source is "camera" for video or "microphone" for audio.
	StreamTrackPublished(room, participantID string, t sfu.TrackInfo, source string)
	// StreamTrackUnpublished reports that a track ended.
	StreamTrackUnpublished(room, participantID string, t sfu.TrackInfo)
	// StreamAudioUnavailable reports that the stream's audio is not
	// flowing (reason, for the admin API and a hint in the web client),
	// or flows again (reason "").
	StreamAudioUnavailable(room, participantID, reason string)
	// RemoveStream reports that the stream left the room.
	RemoveStream(room, participantID string)
}

// NopDirectory is a Directory that tells nobody: streams still reach
// every subscriber through the SFU, but the web client has no participant
// entry to put them under.
type NopDirectory struct{}

func (NopDirectory) AddStream(string, string, string, string) error             { return nil }
func (NopDirectory) StreamTrackPublished(string, string, sfu.TrackInfo, string) {}
func (NopDirectory) StreamTrackUnpublished(string, string, sfu.TrackInfo)       {}
func (NopDirectory) StreamAudioUnavailable(string, string, string)              {}
func (NopDirectory) RemoveStream(string, string)                                {}
