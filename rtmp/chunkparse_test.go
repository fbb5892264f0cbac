package rtmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	gortmp "github.com/livekit/go-rtmp"
	"github.com/livekit/go-rtmp/message"
)

// generous limits: only malformed input is refused.
var generous = chunkLimits{MaxMessage: 0xffffff, MaxCommand: 0xffffff, MaxBuffered: 1 << 40, MaxChunkStreams: 1 << 17, MaxChunkSize: 0xffffff}

// seenMsg is a message as the chunk layer delimits it; length is -1 when
// go-rtmp decoded it into something whose raw length it does not keep.
type seenMsg struct {
	csid     int
	typeID   byte
	streamID uint32
	length   int
}

func (m seenMsg) String() string {
	return fmt.Sprintf("{cs %d type %d stream %d len %d}", m.csid, m.typeID, m.streamID, m.length)
}

// streamerConfig is what go-rtmp's Conn would pass to its ChunkStreamer
// (a bare ChunkStreamer does not fill in defaults), with generous caps.
func streamerConfig() *gortmp.StreamControlStateConfig {
	return &gortmp.StreamControlStateConfig{
		DefaultChunkSize: defaultChunkSize, MaxChunkSize: 0xffffff, MaxChunkStreams: 1 << 17,
		DefaultAckWindowSize: math.MaxInt32, MaxAckWindowSize: math.MaxInt32,
		DefaultBandwidthWindowSize: math.MaxInt32, MaxBandwidthWindowSize: math.MaxInt32,
		MaxMessageSize: 0xffffff, MaxMessageStreams: 16,
	}
}

// ourMessages runs the parser over b (no handshake), fed in pieces of at
// most step bytes (0: all at once). consumed is how far the parser read;
// passed is what the guard would have handed go-rtmp (nothing of the
// piece in which the parser refused).
func ourMessages(b []byte, lim chunkLimits, step int) (msgs []seenMsg, consumed int, err error) {
	msgs, consumed, _, err = ourMessagesPassed(b, lim, step)
	return msgs, consumed, err
}

func ourMessagesPassed(b []byte, lim chunkLimits, step int) (msgs []seenMsg, consumed, passed int, err error) {
	p := newChunkParser()
	p.handshakeLeft = 0
	p.onMessage = func(csid int, typeID byte, streamID, length uint32) {
		msgs = append(msgs, seenMsg{csid, typeID, streamID, int(length)})
	}
	for consumed < len(b) {
		end := len(b)
		if step > 0 {
			end = min(len(b), consumed+step)
		}
		n, err := p.feed(b[consumed:end], lim, false)
		passed = consumed
		consumed += n
		if err != nil {
			return msgs, consumed, passed, err
		}
	}
	return msgs, consumed, consumed, nil
}

// goRTMPMessages reads b with go-rtmp's chunk reader, applying Set Chunk
// Size on the control stream as go-rtmp's connection does. It stops at the
// first error (or panic: go-rtmp panics on some corrupt streams).
func goRTMPMessages(b []byte) (msgs []seenMsg, err error) {
	cs := gortmp.NewChunkStreamer(bytes.NewReader(b), io.Discard, streamerConfig())
	defer cs.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	for {
		var cm gortmp.ChunkMessage
		csid, _, err := cs.Read(&cm)
		if err != nil {
			return msgs, err
		}
		m := seenMsg{csid: csid, typeID: byte(cm.Message.TypeID()), streamID: cm.StreamID, length: -1}
		switch v := cm.Message.(type) {
		case *message.VideoMessage:
			n, _ := io.Copy(io.Discard, v.Payload)
			m.length = int(n)
		case *message.AudioMessage:
			n, _ := io.Copy(io.Discard, v.Payload)
			m.length = int(n)
		case *message.SetChunkSize:
			m.length = 4
			if cm.StreamID != 0 {
				return msgs, errors.New("Set Chunk Size off the control stream")
			}
			if err := cs.PeerState().SetChunkSize(v.ChunkSize); err != nil {
				return msgs, err
			}
		}
		msgs = append(msgs, m)
	}
}

// sameMessages compares two readings of one stream message by message,
// ignoring lengths one side does not know.
func sameMessages(a, b []seenMsg) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d messages vs %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.length < 0 || y.length < 0 {
			x.length, y.length = 0, 0
		}
		if x != y {
			return fmt.Errorf("message %d: %v vs %v", i, a[i], b[i])
		}
	}
	return nil
}

func TestChunkParserHeaders(t *testing.T) {
	video := func(n int) []byte { return bytes.Repeat([]byte{0x27}, n) }
	var setChunk [4]byte
	binary.BigEndian.PutUint32(setChunk[:], 1000)
	cases := []struct {
		name   string
		stream []byte
		want   []seenMsg
	}{{
		name:   "one-byte csid, three chunks",
		stream: rawMsg{csid: 6, typeID: 9, streamID: 1, payload: video(300)}.chunks(128),
		want:   []seenMsg{{6, 9, 1, 300}},
	}, {
		name:   "two-byte csid",
		stream: rawMsg{csid: 200, typeID: 8, streamID: 1, payload: video(129)}.chunks(128),
		want:   []seenMsg{{200, 8, 1, 129}},
	}, {
		name:   "extended timestamp repeated on type-3 chunks",
		stream: rawMsg{csid: 6, typeID: 9, streamID: 1, ts: 1<<24 + 5, payload: video(400)}.chunks(128),
		want:   []seenMsg{{6, 9, 1, 400}},
	}, {
		name: "set chunk size applies from the next chunk",
		stream: append(rawMsg{csid: 2, typeID: 1, payload: setChunk[:]}.chunks(128),
			rawMsg{csid: 6, typeID: 9, streamID: 1, payload: video(1000)}.chunks(1000)...),
		want: []seenMsg{{2, 1, 0, 4}, {6, 9, 1, 1000}},
	}, {
		name: "type 1, 2 and 3 headers start new messages",
		stream: concat(
			rawMsg{csid: 4, typeID: 8, streamID: 1, payload: video(10)}.chunks(128),
			[]byte{0x44, 0, 0, 21, 0, 0, 20, 9}, video(20), // type 1: delta 21, 20 bytes, video
			[]byte{0x84, 0, 0, 21}, video(20), // type 2: same length and type
			[]byte{0xc4}, video(20), // type 3: everything repeated
		),
		want: []seenMsg{{4, 8, 1, 10}, {4, 9, 1, 20}, {4, 9, 1, 20}, {4, 9, 1, 20}},
	}, {
		name: "interleaved chunk streams",
		stream: concat(
			type0Header(4, 8, 1, 0, 200), video(128),
			type0Header(6, 9, 1, 0, 130), video(128),
			[]byte{0xc4}, video(72),
			[]byte{0xc6}, video(2),
		),
		want: []seenMsg{{4, 8, 1, 200}, {6, 9, 1, 130}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			theirs, err := goRTMPMessages(tc.stream)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("go-rtmp: %v", err)
			}
			if err := sameMessages(theirs, tc.want); err != nil {
				t.Fatalf("go-rtmp disagrees with the test: %v", err)
			}
			for _, step := range []int{0, 1, 7} {
				ours, n, err := ourMessages(tc.stream, generous, step)
				if err != nil || n != len(tc.stream) {
					t.Fatalf("step %d: consumed %d of %d: %v", step, n, len(tc.stream), err)
				}
				if err := sameMessages(ours, tc.want); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
		})
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestChunkParserRefusals(t *testing.T) {
	small := chunkLimits{MaxMessage: 1000, MaxCommand: 1000, MaxBuffered: 2000, MaxChunkStreams: 3, MaxChunkSize: 4096}
	setChunk := func(v uint32, streamID uint32) []byte {
		return rawMsg{csid: 2, typeID: 1, streamID: streamID, payload: binary.BigEndian.AppendUint32(nil, v)}.chunks(128)
	}
	cases := []struct {
		name   string
		stream []byte
		reason string
		// at is how many bytes the parser may let through: never any
		// byte of the offending chunk's payload.
		at int
	}{
		{"declared too large", type0Header(3, 20, 0, 0, 1001), reasonTooLarge, 12},
		{"too many chunk streams", concat(type0Header(3, 20, 0, 0, 10), make([]byte, 10), type0Header(4, 20, 0, 0, 10), make([]byte, 10),
			type0Header(5, 20, 0, 0, 10), make([]byte, 10), type0Header(6, 20, 0, 0, 10)), reasonChunkStreams, 3*22 + 12},
		{"buffer budget", concat(type0Header(3, 9, 1, 0, 1000), make([]byte, 128), type0Header(4, 9, 1, 0, 1000), make([]byte, 128),
			type0Header(5, 9, 1, 0, 1)), reasonBufferBudget, 2*140 + 12},
		{"empty message", type0Header(3, 20, 0, 0, 0), reasonMalformed, 12},
		{"type 3 on a new chunk stream", []byte{0xc3, 1, 2}, reasonMalformed, 1},
		{"type 2 on a new chunk stream", []byte{0x83, 0, 0, 0, 1}, reasonMalformed, 4},
		{"new header inside a message", concat(type0Header(3, 9, 1, 0, 200), make([]byte, 128), type0Header(3, 9, 1, 0, 200)), reasonMalformed, 140 + 12},
		{"set chunk size off the control stream", setChunk(256, 1), reasonMalformed, 16},
		{"set chunk size zero", setChunk(0, 0), reasonMalformed, 16},
		{"set chunk size top bit", setChunk(0x80000100, 0), reasonMalformed, 16},
		{"set chunk size over the limit", setChunk(8192, 0), reasonMalformed, 16},
		{"set chunk size of 5 bytes", type0Header(2, 1, 0, 0, 5), reasonMalformed, 12},
		// go-rtmp mis-reads these (see headerProgress)
		{"three-byte chunk stream id", type0Header(40000, 8, 1, 0, 10), reasonMalformed, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1} {
				_, n, err := ourMessages(tc.stream, small, step)
				var r *chunkRefusal
				if !errors.As(err, &r) || r.Reason != tc.reason {
					t.Fatalf("step %d: err %v, want reason %s", step, err, tc.reason)
				}
				if n != tc.at {
					t.Fatalf("step %d: let %d bytes through, want %d", step, n, tc.at)
				}
			}
		})
	}
}

// TestChunkParserStopsAtMessages: before authentication the guard needs
// the parser to stop right after each complete message.
func TestChunkParserStopsAtMessages(t *testing.T) {
	b := concat(make([]byte, handshakeClientBytes),
		rawMsg{csid: 3, typeID: 20, payload: make([]byte, 300)}.chunks(128),
		rawMsg{csid: 3, typeID: 20, payload: make([]byte, 10)}.chunks(128))
	p := newChunkParser()
	var ends []int
	off := 0
	for i := 0; off < len(b) && i < 10; i++ {
		n, err := p.feed(b[off:], generous, true)
		if err != nil {
			t.Fatal(err)
		}
		off += n
		ends = append(ends, off)
	}
	want := []int{handshakeClientBytes + 12 + 300 + 2, len(b)}
	if fmt.Sprint(ends) != fmt.Sprint(want) {
		t.Fatalf("stopped at %v, want %v", ends, want)
	}
}

// writeWithGoRTMP encodes msgs with go-rtmp's own chunk writer (its
// header compression and its interleaving of chunk streams).
func writeWithGoRTMP(t testing.TB, chunkSize uint32, msgs []rawMsg) []byte {
	t.Helper()
	var out bytes.Buffer
	cs := gortmp.NewChunkStreamer(bytes.NewReader(nil), &out, streamerConfig())
	defer cs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// NewChunkWriter waits until the chunk stream's last message is
	// written (and reserves the stream: call it once per stream, last).
	wait := func(id int) {
		if _, err := cs.NewChunkWriter(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	used := map[int]bool{}
	if chunkSize != defaultChunkSize {
		if err := cs.Write(ctx, 2, 0, &gortmp.ChunkMessage{Message: &message.SetChunkSize{ChunkSize: chunkSize}}); err != nil {
			t.Fatal(err)
		}
		wait(2) // the new size must apply from the next chunk on
		if err := cs.SelfState().SetChunkSize(chunkSize); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		var msg message.Message = &message.VideoMessage{Payload: bytes.NewReader(m.payload)}
		if m.typeID == 8 {
			msg = &message.AudioMessage{Payload: bytes.NewReader(m.payload)}
		}
		if err := cs.Write(ctx, m.csid, m.ts, &gortmp.ChunkMessage{StreamID: m.streamID, Message: msg}); err != nil {
			t.Fatal(err)
		}
		used[m.csid] = true
	}
	for id := range used {
		wait(id)
	}
	return out.Bytes()
}

// TestChunkParserAgreesWithGoRTMPWriter: streams go-rtmp's writer makes
// (type 0-3 headers, interleaved chunk streams, a chunk size change) are
// read the same by both readers. Timestamps stay below 2^24: go-rtmp's
// writer does not repeat the extended timestamp on type-3 chunks, which
// its (forked) reader expects; OBS-style extended timestamps are covered
// by TestChunkParserHeaders and FuzzChunkParserWellFormed.
func TestChunkParserAgreesWithGoRTMPWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var msgs []rawMsg
		ts := uint32(0)
		for range 30 {
			ts += uint32(rng.IntN(40))
			msgs = append(msgs, rawMsg{csid: []int{4, 6, 70, 319}[rng.IntN(4)], typeID: byte(8 + rng.IntN(2)), streamID: 1, ts: ts,
				payload: make([]byte, 1+rng.IntN(5000))})
		}
		chunkSize := []uint32{128, 1, 4096, 60000}[round%4]
		b := writeWithGoRTMP(t, chunkSize, msgs)
		theirs, err := goRTMPMessages(b)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: go-rtmp: %v", round, err)
		}
		ours, n, err := ourMessages(b, generous, 0)
		if err != nil || n != len(b) {
			t.Fatalf("round %d: consumed %d of %d: %v", round, n, len(b), err)
		}
		if err := sameMessages(ours, theirs); err != nil {
			t.Fatalf("round %d (chunk size %d): %v", round, chunkSize, err)
		}
		want := len(msgs)
		if chunkSize != defaultChunkSize {
			want++ // the Set Chunk Size message
		}
		if len(ours) != want {
			t.Fatalf("round %d: %d messages, want %d", round, len(ours), want)
		}
	}
}

var updateCapture = flag.Bool("update-capture", false, "rewrite testdata/ffmpeg-publish.rtmp (the fuzz seed) from a live ffmpeg publish")

// teeListener records what the first accepted connection's client sends.
type teeListener struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
	one bool
}

type teeConn struct {
	net.Conn
	l *teeListener
}

func (l *teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.one {
		return c, nil
	}
	l.one = true
	return &teeConn{Conn: c, l: l}, nil
}

func (c *teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.mu.Lock()
	c.l.got.Write(b[:n])
	c.l.mu.Unlock()
	return n, err
}

func (l *teeListener) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.got.Bytes())
}

// TestChunkParserAgreesOnFFmpeg captures a real ffmpeg publish (what the
// server read from the socket) and checks that the parser and go-rtmp
// delimit the same messages in it, and that the guard let all of it
// through.
func TestChunkParserAgreesOnFFmpeg(t *testing.T) {
	tl := &teeListener{}
	ts := startServerOn(t, fakeKeys{"k": nil}, nil, func(l net.Listener) net.Listener { tl.Listener = l; return tl })
	runPublish(t, ts, publishOpts{key: "k", seconds: 2})
	capture := tl.bytes()[handshakeClientBytes:]
	ours, n, err := ourMessages(capture, generous, 0)
	if err != nil || n != len(capture) {
		t.Fatalf("parser: %d of %d bytes: %v", n, len(capture), err)
	}
	theirs, err := goRTMPMessages(capture)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("go-rtmp: %v", err)
	}
	if err := sameMessages(ours, theirs); err != nil {
		t.Fatal(err)
	}
	if len(ours) < 100 {
		t.Fatalf("only %d messages in a 2 s publish", len(ours))
	}
	if *updateCapture {
		if err := os.WriteFile("testdata/ffmpeg-publish.rtmp", capture[:min(len(capture), 24<<10)], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkChunkParser is the guard's cost per byte on what ffmpeg sends
// (128-byte chunks, the worst case for per-chunk work), once publishing.
//
//	go test ./rtmp -run XXX -bench ChunkParser
func BenchmarkChunkParser(b *testing.B) {
	capture, err := os.ReadFile("testdata/ffmpeg-publish.rtmp")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(capture)))
	for b.Loop() {
		p := newChunkParser()
		p.handshakeLeft = 0
		for off := 0; off < len(capture); {
			n, err := p.feed(capture[off:min(len(capture), off+64<<10)], generous, false)
			if err != nil {
				b.Fatal(err)
			}
			off += n
		}
	}
}
