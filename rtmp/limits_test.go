package rtmp

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"
)

// longTimeouts keeps the server's own timeouts out of the way, so a
// connection that closes within a few seconds was closed by a limit.
func longTimeouts(c *Config, _ *Deps) {
	c.HandshakeTimeout = time.Minute
	c.ReadTimeout = time.Minute
}

// TestChunkLimitsBeforePublish: a client that has not had a publish
// accepted declares more than it may buffer. Each connection must be
// closed at once, for the named reason, instead of go-rtmp reserving (and
// keeping) what the headers declare until the handshake deadline.
func TestChunkLimitsBeforePublish(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, longTimeouts)
	cases := []struct {
		name   string
		reason string
		send   func() []byte
	}{{
		name: "16 MiB message declared", reason: reasonTooLarge,
		send: func() []byte {
			return append(type0Header(3, 20, 0, 0, 0xffffff), make([]byte, 128)...)
		},
	}, {
		name: "20 chunk streams", reason: reasonChunkStreams,
		send: func() []byte {
			var b []byte
			for cs := range 20 {
				b = append(b, type0Header(4+cs, 20, 0, 0, 200)...)
				b = append(b, make([]byte, 128)...) // the first chunk of each message
			}
			return b
		},
	}, {
		name: "8 chunk streams of 15000 bytes", reason: reasonBufferBudget,
		send: func() []byte {
			var b []byte
			for cs := range 8 {
				b = append(b, type0Header(4+cs, 20, 0, 0, 15000)...)
				b = append(b, make([]byte, 128)...)
			}
			return b
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := metricValue(t, ts.srv.m.refused.WithLabelValues(tc.reason))
			c := rawDial(t, ts.addr, nil)
			if _, err := c.Write(tc.send()); err != nil {
				t.Fatal(err)
			}
			closedByServer(t, c, 5*time.Second)
			waitMetric(t, ts.srv.m.refused.WithLabelValues(tc.reason), before+1)
		})
	}
}

// TestDeclaredTooLargeWhilePublishing: once publishing, a header declaring
// more than max_message_size ends the publish without its body arriving.
func TestDeclaredTooLargeWhilePublishing(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, longTimeouts)
	c := rawDial(t, ts.addr, nil)
	if err := writeMsgs(c, 128, publishCommands(t, "live", "k")...); err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.sink)
	hdr := type0Header(6, 9, 1, 0, uint32(ts.srv.cfg.MaxMessageSize)+1)
	if _, err := c.Write(append(hdr, 0x17, 0x01, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, c, 5*time.Second)
	waitClosed(t, s, 5*time.Second)
	waitMetric(t, ts.srv.m.refused.WithLabelValues(reasonTooLarge), 1)
}

// TestPipelinedPublishAndMedia: a client may send media right behind its
// publish command, in the same TCP segment. The media header must be
// judged by the limits of a publishing connection (the publish has been
// accepted by then), not the small ones before it.
func TestPipelinedPublishAndMedia(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, longTimeouts)
	c := rawDial(t, ts.addr, nil)
	// An inter frame before any decoder configuration: read in full and
	// dropped. 100 KiB is more than the pre-publish limit.
	frame := append([]byte{0x27, 1, 0, 0, 0}, bytes.Repeat([]byte{0xab}, 100<<10)...)
	msgs := append(publishCommands(t, "live", "k"), rawMsg{csid: 6, typeID: 9, streamID: 1, payload: frame})
	if err := writeMsgs(c, 128, msgs...); err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.sink)
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break // still open
			}
			t.Fatalf("server closed a publisher that pipelined its first video message: %v", err)
		}
	}
	select {
	case <-s.closedCh:
		t.Fatal("session ended")
	default:
	}
	waitMetric(t, ts.srv.m.bytesIn.WithLabelValues("video"), float64(len(frame)))
}

// amfConnect is a connect command whose command object holds a value
// declaring a huge size in a few bytes (marker, then a 32-bit count or
// length, then nothing).
func amfConnect(marker byte, declared uint32) []byte {
	b := []byte{amf0String, 0, 7}
	b = append(b, "connect"...)
	b = append(b, amf0Number, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0) // transaction 1
	b = append(b, amf0Object, 0, 3, 'a', 'p', 'p', amf0String, 0, 4, 'l', 'i', 'v', 'e', 0, 1, 'x', marker)
	return binary.BigEndian.AppendUint32(b, declared)
}

// TestAMFDeclaredSizesBeforePublish: go-amf0 allocates what an AMF0
// strict array count or long string length declares before reading it.
// A connect command of 40 bytes declaring 2^26 array elements (1 GiB of
// interface values) must be refused before go-rtmp decodes it.
func TestAMFDeclaredSizesBeforePublish(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, longTimeouts)
	for _, tc := range []struct {
		name     string
		marker   byte
		declared uint32
	}{
		{"strict array of 2^26", amf0StrictArray, 1 << 26},
		{"long string of 1 GiB", amf0LongString, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metricValue(t, ts.srv.m.refused.WithLabelValues(reasonAMF))
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			alloc := ms.TotalAlloc
			c := rawDial(t, ts.addr, nil)
			if err := writeMsgs(c, 128, rawMsg{csid: 3, typeID: typeCommandAMF0, payload: amfConnect(tc.marker, tc.declared)}); err != nil {
				t.Fatal(err)
			}
			closedByServer(t, c, 5*time.Second)
			runtime.ReadMemStats(&ms)
			if grew := ms.TotalAlloc - alloc; grew > 64<<20 {
				t.Errorf("the server allocated %d MiB for a %d-byte command", grew>>20, len(amfConnect(tc.marker, tc.declared)))
			}
			waitMetric(t, ts.srv.m.refused.WithLabelValues(reasonAMF), before+1)
		})
	}
}
