package wsbatch

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpgraderNeverCompresses guards the assumption direct writes rest
// on: a client that asks for permessage-deflate does not get it, and a
// frame written by TryDirect (uncompressed, built by appendTextFrame)
// reads back as the message it was.
func TestUpgraderNeverCompresses(t *testing.T) {
	bufs := NewBufPool()
	u := Upgrader(func(*http.Request) bool { return true })
	upgraded := make(chan *Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, bc, err := Upgrade(u, w, r, time.Second, bufs)
		if err != nil {
			t.Error(err)
			close(upgraded)
			return
		}
		upgraded <- bc
	}))
	defer hs.Close()

	d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	cli, resp, err := d.Dial(strings.Replace(hs.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("upgrade negotiated %q; direct writes send uncompressed frames and need it off", ext)
	}
	bc := <-upgraded
	if bc == nil {
		t.Fatal("upgrade failed")
	}
	defer bc.Close()
	if !bc.CanWriteDirect() {
		t.Fatal("a TCP socket should allow direct writes")
	}
	for _, n := range []int{0, 125, 126, 127, 65535 - maxFrameHeader, 20000} {
		msg := []byte(strings.Repeat("x", n))
		if n > maxBatchBytes-maxFrameHeader {
			continue
		}
		handled, wake, err := bc.TryDirect(msg)
		if !handled || wake || err != nil {
			t.Fatalf("TryDirect(%d bytes) = %v, %v, %v; want written whole", n, handled, wake, err)
		}
		_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, got, err := cli.ReadMessage()
		if err != nil || mt != websocket.TextMessage || string(got) != string(msg) {
			t.Fatalf("read back %d bytes: type %d, %d bytes, err %v", n, mt, len(got), err)
		}
	}
}
