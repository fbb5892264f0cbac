package firefox

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// sinkProxy is an HTTP proxy on 127.0.0.1 that forwards nothing: it
// reads each request line (e.g. "CONNECT example.org:443 HTTP/1.1"),
// remembers it, answers 403 and hangs up. Firefox is pointed at it for
// all non-loopback traffic, so a background fetch the prefs did not turn
// off fails at once instead of leaving the machine or hanging.
type sinkProxy struct {
	ln   net.Listener
	done sync.WaitGroup

	mu   sync.Mutex
	seen []string
}

func startSinkProxy() (*sinkProxy, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink proxy: %w", err)
	}
	s := &sinkProxy{ln: ln}
	s.done.Go(s.accept)
	return s, nil
}

func (s *sinkProxy) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sinkProxy) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.done.Go(func() { s.refuse(c) })
	}
}

func (s *sinkProxy) refuse(c net.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReaderSize(c, 4096).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	line = strings.TrimSpace(line)
	if len(line) > 300 {
		line = line[:300]
	}
	s.mu.Lock()
	if len(s.seen) < 200 {
		s.seen = append(s.seen, line)
	}
	s.mu.Unlock()
	_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// requests returns the request lines refused so far.
func (s *sinkProxy) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// close stops accepting and waits for the open exchanges, each bounded
// by its 5 s deadline.
func (s *sinkProxy) close() {
	_ = s.ln.Close()
	s.done.Wait()
}
