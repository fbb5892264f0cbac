package signaling

import (
	"net"
	"sync"
	"testing"
)

// freezeProxy forwards loopback connections to a target. Frozen, it
// carries no byte either way, on the connections it has and on new ones,
// and closes nothing: what a node sees of a network partition without
// resets. Reset ends a freeze as a long partition ends: the connections
// held are reset, new ones flow. (cluster/freezeproxy_test.go has the
// same for the bus's own tests; the two belong in internal/testkit.)
type freezeProxy struct {
	addr, target string
	ln           net.Listener

	mu    sync.Mutex
	open  chan struct{} // closed while bytes flow
	conns []net.Conn
	done  chan struct{}
	wg    sync.WaitGroup
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{addr: ln.Addr().String(), target: target, ln: ln, open: make(chan struct{}), done: make(chan struct{})}
	close(p.open)
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.closeConns()
		p.wg.Wait()
	})
	return p
}

func (p *freezeProxy) Addr() string { return p.addr }

// Freeze stops every byte until Reset.
func (p *freezeProxy) Freeze() {
	p.mu.Lock()
	p.open = make(chan struct{})
	p.mu.Unlock()
}

// Reset closes the connections held so far and lets new ones flow.
func (p *freezeProxy) Reset() {
	p.closeConns()
	p.mu.Lock()
	close(p.open)
	p.mu.Unlock()
}

func (p *freezeProxy) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies src to dst, holding each chunk read while frozen; the
// chunk it holds keeps it from reading more, so the sender's writes
// pile up in its socket buffer as on a silent network.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			open := p.open
			p.mu.Unlock()
			select {
			case <-open:
			case <-p.done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or closed: the close above ends the other side
			return
		}
	}
}
