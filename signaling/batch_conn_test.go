package signaling

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/wsbatch"
	"github.com/parleyhq/parley/signaling/auth"
)

// batchPair is a server conn (upgraded through wsbatch, its writer
// running) and the client end of the same WebSocket.
func batchPair(t *testing.T, mutate func(*Config)) (*wsConn, *websocket.Conn) {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Media: newFakeMedia(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	upgraded := make(chan *wsConn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, _, err := wsbatch.Upgrade(s.upgr, w, r, cfg.WriteTimeout, wsbatch.NewBufPool())
		if err != nil {
			t.Error(err)
			return
		}
		upgraded <- newWSConn(s, ws, s.log)
	}))
	t.Cleanup(hs.Close)
	cli, _, err := websocket.DefaultDialer.Dial(strings.Replace(hs.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	c := <-upgraded
	if c.bc == nil || !c.bc.CanWriteDirect() {
		t.Fatal("upgraded socket is not a batchConn with a file descriptor")
	}
	go c.writeLoop()
	t.Cleanup(func() {
		_ = c.ws.NetConn().Close()
		c.requestClose(websocket.CloseNormalClosure, "") // ends the writer
		<-c.writerDone
	})
	return c, cli
}

// testPayload is message i, padded to sizes that cross the 7-bit and
// 16-bit frame length boundaries; the first directSized messages are small
// enough for direct writes, the rest only go through the writer.
func testPayload(i int) []byte {
	small := []int{10, 125, 126, 127, 3000, 20000, 30000}
	large := []int{65535, 65536, 70000}
	n := small[i%len(small)]
	if i >= directSized {
		n = large[i%len(large)]
	}
	p := []byte(fmt.Sprintf("%06d:", i))
	return append(p, bytes.Repeat([]byte{'a' + byte(i%26)}, n)...)
}

const directSized = 70 // about 0.9 MiB

// While the client does not read, its socket fills: pushes first go out
// directly, then one is cut short by the full socket buffer and the rest
// wait in the queue. Once the client reads, every message arrives whole
// and in order.
func TestBatchConnFullSocketKeepsFramesWhole(t *testing.T) {
	const n = directSized + 12
	c, cli := batchPair(t, func(cfg *Config) { cfg.SendQueue = n })
	// Small socket buffers, so that they fill within a few messages.
	if err := c.bc.Conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := cli.NetConn().(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c.enqueue(testPayload(i))
	}
	if c.closing.Load() {
		t.Fatal("connection dropped while enqueueing")
	}
	_ = cli.SetReadDeadline(time.Now().Add(waitLimit))
	for i := range n {
		mt, got, err := cli.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := testPayload(i); mt != websocket.TextMessage || !bytes.Equal(got, want) {
			t.Fatalf("message %d: type %d, %d bytes starting %.10q; want %d bytes starting %.10q", i, mt, len(got), got, len(want), want)
		}
	}
}

// A direct write after the last batch's write deadline has passed goes
// through the queue (the writer sets a fresh deadline) instead of failing
// the connection with a timeout. The writer's pings are the batches here.
func TestBatchConnStaleDeadline(t *testing.T) {
	c, cli := batchPair(t, func(cfg *Config) {
		cfg.WriteTimeout = 50 * time.Millisecond
		cfg.PingInterval = 300 * time.Millisecond
	})
	c.joined.Store(true) // the writer pings joined sessions only
	_ = cli.SetReadDeadline(time.Now().Add(waitLimit))
	next := func() string {
		t.Helper()
		_, got, err := cli.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (connection closing: %v)", err, c.closing.Load())
		}
		return string(got)
	}
	for i := range 3 {
		for !strings.Contains(next(), `"type":"ping"`) {
		}
		time.Sleep(120 * time.Millisecond) // the ping batch's deadline passes
		c.enqueue(testPayload(i))
		got := next()
		for strings.Contains(got, `"type":"ping"`) {
			got = next()
		}
		if got != string(testPayload(i)) {
			t.Fatalf("message %d: got %.20q", i, got)
		}
	}
	if c.closing.Load() {
		t.Fatal("connection closed")
	}
}
