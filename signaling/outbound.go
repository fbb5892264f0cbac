package signaling

import "github.com/parleyhq/parley/signaling/proto"

// outbound is how sessions and the call table reach one connection's
// socket. Every method only queues, so it may be called under locks and
// from any goroutine; behind it the socket could as well be on another
// node. *wsConn implements it; a chatSession passes it on.
type outbound interface {
	// enqueue queues one encoded server message.
	enqueue(msg []byte)
	// sendError queues an error answering request re.
	sendError(re string, perr *proto.Error)
	// sendBye says why the connection ends, then closes it.
	sendBye(reason string)
}

var _ outbound = (*wsConn)(nil)
