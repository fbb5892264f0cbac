package testkit

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"
)

// TestTCPProxy: a line sent through the proxy comes back from an echo
// server; Down resets the connection and refuses new ones; Up on the
// same address forwards again.
func TestTCPProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var server sync.WaitGroup
	defer func() { _ = ln.Close(); server.Wait() }()
	server.Go(func() { // the echo server; ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			server.Go(func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte(line))
				}
				_, _ = c.Read(make([]byte, 1)) // hold until the other side closes
			})
		}
	})
	p := StartTCPProxy(t, ln.Addr().String())
	echo := func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return c, err
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && got != "hello\n" {
			t.Errorf("echoed %q", got)
		}
		return c, err
	}
	c, err := echo()
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Down()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection survived Down")
	}
	c.Close()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a connection was accepted while down")
	}
	p.Up(t)
	c, err = echo()
	if err != nil {
		t.Fatalf("after Up: %v", err)
	}
	c.Close()
}
