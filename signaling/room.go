package signaling

import (
	"log/slog"

	"github.com/parleyhq/parley/rooms"
)

// callSession is the media side of a call connection: its place in the
// room directory and its SFU session. It is set by the reader when the
// join succeeds and never changes after.
type callSession struct {
	p    *rooms.Participant
	peer MediaPeer
	log  *slog.Logger // carries room, participant and identity
}

// conn is how the room directory reaches a call participant.
var _ rooms.Member = (*conn)(nil)

// Send queues a room message (rooms.Member).
func (c *conn) Send(msg []byte) { c.enqueue(msg) }

// Bye says goodbye and closes (rooms.Member).
func (c *conn) Bye(reason string) { c.sendBye(reason) }
