package testkit

import (
	"net"
	"sync"
	"testing"
)

// FreezeProxy forwards loopback connections to a target and can freeze
// them: while frozen it carries no byte in either direction, on the
// connections it has and on new ones, but closes nothing. That is what
// a client sees of a network partition without resets, or of a stopped
// (SIGSTOP) server: the connection stays up and goes silent. (TCPProxy
// is the one for outages that close connections.)
type FreezeProxy struct {
	addr, target string
	ln           net.Listener

	mu    sync.Mutex
	open  chan struct{} // closed while bytes flow
	conns []net.Conn
	done  chan struct{}
	wg    sync.WaitGroup
}

// StartFreezeProxy listens on a loopback port; tb's cleanup stops it.
func StartFreezeProxy(tb testing.TB, target string) *FreezeProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FreezeProxy{addr: ln.Addr().String(), target: target, ln: ln, open: make(chan struct{}), done: make(chan struct{})}
	close(p.open)
	p.wg.Go(p.accept)
	tb.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.closeConns()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *FreezeProxy) Addr() string { return p.addr }

// Freeze stops every byte until Thaw or Reset.
func (p *FreezeProxy) Freeze() {
	p.mu.Lock()
	p.open = make(chan struct{})
	p.mu.Unlock()
}

// Thaw lets bytes flow again, those held back first: a partition that
// ends before TCP gives up.
func (p *FreezeProxy) Thaw() {
	p.mu.Lock()
	select {
	case <-p.open: // not frozen
	default:
		close(p.open)
	}
	p.mu.Unlock()
}

// Reset ends a freeze as a long partition ends (or cuts the connections
// when there is none): the connections held so far are closed, new ones
// flow.
func (p *FreezeProxy) Reset() {
	p.closeConns()
	p.Thaw()
}

func (p *FreezeProxy) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *FreezeProxy) accept() {
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
func (p *FreezeProxy) pipe(dst, src net.Conn) {
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
