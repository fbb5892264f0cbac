package wsbatch

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gorilla's buffer sizes. Memory per idle connection is the budget that
// matters at thousands of clients: a small read buffer (larger messages
// are read in several syscalls, which is rare), and write buffers from a
// pool, held only while a frame is being built (frames are then batched
// by Conn).
const (
	readBufferSize  = 1024
	writeBufferSize = 2048
)

// Upgrader returns the WebSocket upgrader for connections written through
// this package. Compression stays off: direct writes frame messages
// themselves, uncompressed.
func Upgrader(checkOrigin func(*http.Request) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout:  10 * time.Second,
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       checkOrigin,
		EnableCompression: false,
	}
}

// Upgrade upgrades r with u, putting a Conn between the WebSocket and the
// hijacked socket. The Conn is nil if the upgrade failed (u has answered
// with an HTTP error then).
func Upgrade(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request, writeTimeout time.Duration, bufs *sync.Pool) (*websocket.Conn, *Conn, error) {
	h := &hijacker{ResponseWriter: w, writeTimeout: writeTimeout, bufs: bufs}
	ws, err := u.Upgrade(h, r, nil)
	if err != nil {
		return nil, nil, err
	}
	return ws, h.conn, nil
}

// hijacker hands gorilla's Upgrade a Conn instead of the raw hijacked
// connection.
type hijacker struct {
	http.ResponseWriter
	writeTimeout time.Duration
	bufs         *sync.Pool
	conn         *Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = newConn(nc, h.writeTimeout, h.bufs)
	return h.conn, brw, nil
}
