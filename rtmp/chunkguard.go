package rtmp

import (
	"errors"
	"log/slog"
)

// chunkGuard is the connection go-rtmp reads from. It runs every byte
// through a chunkParser first, so a chunk header declaring more than the
// connection may buffer ends the connection before go-rtmp has reserved
// anything for it: go-rtmp reassembles whole messages inside its chunk
// reader and enforces no size of its own.
//
// Until the publish key is accepted the limits are small, and the guard
// hands go-rtmp at most one message per Read: go-rtmp's buffered reader
// asks for more only after it consumed everything before, so the publish
// command has been handled (and the limits raised) before the guard looks
// at the header that follows it.
type chunkGuard struct {
	*deadlineConn
	parser *chunkParser
	unauth chunkLimits // until the publish key is accepted
	authed chunkLimits // after
	log    *slog.Logger

	held    []byte // read from the connection, not yet given to go-rtmp
	heldBuf []byte // backing array of held, reused while unauthenticated
	readErr error  // the connection's error, due once held is drained
	err     error  // the refusal; every later Read returns it
}

func (g *chunkGuard) Read(b []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	authed := g.publishing.Load()
	lim := g.unauth
	if authed {
		lim = g.authed
	}
	fromConn := len(g.held) == 0
	var data []byte
	if fromConn {
		if err := g.readErr; err != nil {
			g.readErr = nil
			return 0, err
		}
		n, err := g.deadlineConn.Read(b)
		if n == 0 {
			return 0, err
		}
		data, g.readErr = b[:n], err
	} else {
		data = b[:copy(b, g.held)]
	}
	used, err := g.parser.feed(data, lim, !authed)
	if err != nil {
		g.refuse(err)
		return 0, g.err
	}
	switch {
	case !fromConn:
		g.held = g.held[used:]
	case used < len(data):
		g.heldBuf = append(g.heldBuf[:0], data[used:]...)
		g.held = g.heldBuf
	default:
		err, g.readErr = g.readErr, nil
		return used, err
	}
	if authed && len(g.held) == 0 {
		g.heldBuf = nil // one message per Read is over; free the copy
	}
	return used, nil
}

func (g *chunkGuard) refuse(err error) {
	g.err = err
	reason := reasonMalformed
	var r *chunkRefusal
	if errors.As(err, &r) {
		reason = r.Reason
	}
	g.s.m.refuse(reason)
	g.log.Info("RTMP connection refused", "reason", reason, "err", err, "publishing", g.publishing.Load())
}
