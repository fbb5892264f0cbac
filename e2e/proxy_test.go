package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// silencingProxy forwards TCP to the server and can make the connections
// open at a given moment go silent: bytes are read and dropped in both
// directions while the sockets stay open. That is what a dead network path
// looks like to both ends (no FIN, no RST), which only heartbeats detect.
// Connections opened later are forwarded normally, so a client can rejoin.
type silencingProxy struct {
	Host string
	ln   net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[*proxiedConn]struct{}
}

type proxiedConn struct {
	client, server net.Conn
	silent         atomic.Bool
}

func startProxy(t *testing.T, target string) *silencingProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silencingProxy{Host: ln.Addr().String(), ln: ln, conns: map[*proxiedConn]struct{}{}}
	p.wg.Go(func() { p.accept(target) })
	t.Cleanup(p.close)
	return p
}

func (p *silencingProxy) accept(target string) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		s, err := net.Dial("tcp4", target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxiedConn{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { pc.pipe(s, c) })
		p.wg.Go(func() {
			pc.pipe(c, s)
			p.mu.Lock()
			delete(p.conns, pc)
			p.mu.Unlock()
		})
	}
}

// pipe copies src to dst until either side closes; once the connection is
// silenced it keeps reading (so nothing backs up) but writes nothing.
func (pc *proxiedConn) pipe(dst, src net.Conn) {
	defer func() {
		pc.client.Close()
		pc.server.Close()
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pc.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset or closed by close(): the pair is done
		}
	}
}

// SilenceExisting makes every currently open connection go quiet and
// reports how many there were.
func (p *silencingProxy) SilenceExisting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.silent.Store(true)
	}
	return len(p.conns)
}

func (p *silencingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
