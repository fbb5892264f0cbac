package relay

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Loops is the server's set of event loops. Sockets are spread over them:
// listening socket i to loop i mod n, a client's relay socket and stream
// by the client's port, so both directions of one allocation are served
// by the same loop. A nil *Loops is an empty set.
type Loops struct {
	loops   []*Loop
	started sync.WaitGroup
	once    sync.Once
}

// NewLoops makes n loops; Start serves them.
func NewLoops(n int) (*Loops, error) {
	ls := &Loops{}
	for range n {
		l, err := newLoop()
		if err != nil {
			ls.Close()

			return nil, fmt.Errorf("event loop: %w", err)
		}
		ls.loops = append(ls.loops, l)
	}

	return ls, nil
}

// Len is the number of loops.
func (ls *Loops) Len() int {
	if ls == nil {
		return 0
	}

	return len(ls.loops)
}

// Start runs each loop on a goroutine of its own; Close stops and waits
// for them. It is called at most once.
func (ls *Loops) Start() {
	if ls == nil {
		return
	}
	ls.once.Do(func() {
		for _, l := range ls.loops {
			ls.started.Go(l.run)
		}
	})
}

// Close stops every loop and waits for the goroutines Start started.
func (ls *Loops) Close() {
	if ls == nil {
		return
	}
	ls.once.Do(func() {}) // a set closed before Start never starts
	for _, l := range ls.loops {
		l.stop()
	}
	ls.started.Wait()
}

// Socket moves listening socket i of an address (a bound UDP socket of the
// host) to a loop. pc is closed; its socket lives on in the result. Call
// Attach to start serving.
func (ls *Loops) Socket(pc net.PacketConn, i int, dropped Counter) (Socket, error) {
	if ls.Len() == 0 {
		return nil, ErrNoLoops
	}
	s, err := newSock(pc, ls.loops[i%len(ls.loops)], dropped)
	if err != nil {
		return nil, err
	}

	return s, nil
}

// RelaySocket moves an allocation's relay socket to the loop of its client.
func (ls *Loops) RelaySocket(pc net.PacketConn, client netip.AddrPort, dropped Counter) (Socket, error) {
	return ls.Socket(pc, int(client.Port()), dropped)
}

// Stream moves a client's TCP connection to the loop of its client,
// carrying over bytes already read into in. c is closed; its socket lives
// on in the result. Call Attach to start serving.
func (ls *Loops) Stream(c *net.TCPConn, client netip.AddrPort, in FrameReader) (StreamConn, error) {
	if ls.Len() == 0 {
		return nil, ErrNoLoops
	}
	s, err := newStream(c, ls.loops[int(client.Port())%len(ls.loops)], in)
	if err != nil {
		return nil, err
	}

	return s, nil
}
