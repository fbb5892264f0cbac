package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/parleyhq/parley/internal/testkit"
)

// loopPair runs an event loop and returns a TCP connection pair on
// loopback: the client side, and the server side moved to the loop.
func loopPair(t *testing.T, toPeer func([]byte) bool, backlog func()) (*net.TCPConn, *Stream) {
	t.Helper()
	loops := startLoops(t, 1)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := loops.Stream(server, netip.AddrPort{}, FrameReader{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sc.(*Stream)
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Attach(toPeer, backlog); err != nil {
		t.Fatal(err)
	}

	return client, st
}

// TestRawStreamQueuesMessagesAndRelaysData: STUN messages reach the
// reader one per Read in order, ChannelData goes to the fast path, and
// the end of the stream comes after the last message.
func TestRawStreamQueuesMessagesAndRelaysData(t *testing.T) {
	relayed := make(chan []byte, 10)
	client, st := loopPair(t, func(f []byte) bool { relayed <- append([]byte(nil), f...); return true }, nil)
	data, msgs := stream(t)
	if _, err := client.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	buf := make([]byte, 1600)
	for i, want := range msgs {
		_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := st.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("message %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := st.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
	select {
	case f := <-relayed:
		if want := data[len(msgs[0]) : len(data)-len(msgs[1])]; !bytes.Equal(f, want) {
			t.Fatalf("relayed % x, want % x", f, want)
		}
	default:
		t.Fatal("ChannelData not relayed")
	}
}

// TestRawStreamClosesFlood: a client that sends requests faster than they
// are read gets its connection ended once the queue is full, and is
// counted, instead of growing the server's memory.
func TestRawStreamClosesFlood(t *testing.T) {
	flooded := 0
	client, st := loopPair(t, func([]byte) bool { return false }, func() { flooded++ })
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	var data []byte
	for range streamQueueLen + 10 {
		data = append(data, req.Raw...)
	}
	if _, err := client.Write(data); err != nil {
		t.Fatal(err)
	}
	// Nobody reads until the loop has had the whole flood.
	testkit.Eventually(t, 2*time.Second, "the stream to end", func() bool {
		select {
		case <-st.ended:
			return true
		default:
			return false
		}
	})
	buf := make([]byte, 1600)
	read := 0
	var err error
	for range streamQueueLen + 10 {
		_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err = st.Read(buf); err != nil {
			break
		}
		read++
	}
	if !errors.Is(err, ErrBacklog) || read != streamQueueLen || flooded != 1 {
		t.Fatalf("read %d messages then %v (flood counted %d); want %d then the backlog error, counted once",
			read, err, flooded, streamQueueLen)
	}
}

// TestRawStreamSlowClient: relayed frames for a client that does not read
// wait in the server up to a bound, further ones are dropped whole, and
// when the client reads again it gets whole frames only.
func TestRawStreamSlowClient(t *testing.T) {
	client, st := loopPair(t, func([]byte) bool { return false }, nil)
	frame := paddedChannelData(0x4000, bytes.Repeat([]byte{9}, 996))
	accepted := 0
	for range 100000 {
		if err := st.TryWrite(frame); err != nil {
			if !errors.Is(err, ErrBacklog) {
				t.Fatal(err)
			}

			break
		}
		accepted++
	}
	if accepted == 100000 {
		t.Fatal("no backlog bound reached")
	}
	// pion's own writes wait for room instead of failing.
	reply := stun.MustBuild(stun.TransactionID, stun.BindingSuccess)
	wrote := make(chan error, 1)
	go func() { _, err := st.Write(reply.Raw); wrote <- err }()
	got := 0
	buf := make([]byte, len(frame))
	for got < accepted {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatalf("after %d of %d frames: %v", got, accepted, err)
		}
		if !bytes.Equal(buf, frame) {
			t.Fatalf("frame %d damaged", got)
		}
		got++
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, len(reply.Raw))
	if _, err := io.ReadFull(client, tail); err != nil || !bytes.Equal(tail, reply.Raw) {
		t.Fatalf("pion's message after the backlog: %v", err)
	}
}

// paddedChannelData builds a ChannelData frame padded to 4 bytes, as a
// stream transport carries it.
func paddedChannelData(ch uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, ch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload))) //nolint:gosec // test payloads are small
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}

	return b
}
