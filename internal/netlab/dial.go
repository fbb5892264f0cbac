//go:build linux

package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Dial connects from inside the host's namespace (to its own loopback,
// for example): the socket is made on a thread moved into the namespace,
// and a socket keeps its namespace for life.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it leaves the process with this
		// goroutine instead of going back to the pool in the host's
		// namespace.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + h.Netns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer func() { _ = f.Close() }()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", h.Netns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Forward listens on 127.0.0.1 in the test's namespace and relays each
// connection to addr dialled inside the host's namespace, until the
// test ends. It returns the local address.
func (h *Host) Forward(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("netlab: forward to %s in %s: %v", addr, h.Name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c, true)
			wg.Go(func() {
				defer func() { _ = c.Close(); track(c, false) }()
				r, err := h.Dial(context.Background(), "tcp", addr)
				if err != nil {
					return
				}
				track(r, true)
				defer func() { _ = r.Close(); track(r, false) }()
				relay(c, r)
			})
		}
	})
	return ln.Addr().String()
}

// relay copies both ways until either side ends.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // ends with an error when the other way closed both: normal
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}
