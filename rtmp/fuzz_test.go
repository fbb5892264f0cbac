package rtmp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	gortmp "github.com/livekit/go-rtmp"
	"github.com/livekit/go-rtmp/handshake"
	"github.com/livekit/go-rtmp/message"
)

func FuzzParseVideoTag(f *testing.F) {
	for _, s := range []string{"1701000000aabb", "2701ffffde", "1700000000014d", "5700", "9068766331", ""} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseVideoTag(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVideoCodec) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !v.Command && len(v.Data) != len(b)-5 {
			t.Fatalf("data length %d of %d", len(v.Data), len(b))
		}
	})
}

func FuzzParseAVCConfig(f *testing.F) {
	f.Add(avcRecord(f, mustHex(f, spsBaseline), mustHex(f, "68cb83cb20"), 3))
	f.Add(avcRecord(f, mustHex(f, spsHigh), mustHex(f, "68ebecb22c"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseAVCConfig(b)
		if err != nil {
			return
		}
		if len(c.SPS) == 0 || len(c.PPS) == 0 || (c.LengthSize != 1 && c.LengthSize != 2 && c.LengthSize != 4) {
			t.Fatalf("accepted invalid record %+v", c)
		}
		// Copies: mutating the input must not change the result.
		sps := append([]byte(nil), c.SPS[0]...)
		for i := range b {
			b[i] ^= 0xff
		}
		if !bytes.Equal(sps, c.SPS[0]) {
			t.Fatal("SPS aliases the input")
		}
	})
}

func FuzzParseSPS(f *testing.F) {
	for _, s := range []string{spsBaseline, spsMain, spsHigh, "6764001f", "67f4001f"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSPS(b)
		if err != nil {
			return
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > 1024*16 || s.Height > 2*1024*16 {
			t.Fatalf("implausible size %dx%d", s.Width, s.Height)
		}
		if id, err := profileLevelID(s); err == nil && len(id) != 6 {
			t.Fatalf("profile-level-id %q", id)
		}
	})
}

func FuzzParseAudioSpecificConfig(f *testing.F) {
	for _, s := range []string{"1190", "1210", "1208", "2b1188", "f8", "1780"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseAudioSpecificConfig(b)
		if err != nil {
			return
		}
		frame, err := appendADTS(nil, c, []byte{1, 2, 3})
		if err != nil {
			t.Fatalf("accepted config cannot be framed: %v", err)
		}
		if frame[0] != 0xff || frame[1]&0xf0 != 0xf0 || len(frame) != 10 {
			t.Fatalf("bad ADTS %x", frame)
		}
	})
}

func FuzzSplitNALUs(f *testing.F) {
	f.Add(mustHex(f, "000000026566000000014100000000"), 4)
	f.Add(mustHex(f, "0002656600"), 2)
	f.Fuzz(func(t *testing.T, b []byte, ls int) {
		ls = []int{1, 2, 4}[uint(ls)%3]
		nalus, err := splitNALUs(b, ls)
		if err != nil {
			return
		}
		total := 0
		for _, n := range nalus {
			total += len(n) + ls
		}
		if total > len(b) {
			t.Fatalf("NALUs cover %d of %d bytes", total, len(b))
		}
	})
}

func FuzzOpusSamples(f *testing.F) {
	for _, s := range []string{"fc", "fb03", "1b02", ""} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := opusSamples(b)
		if err == nil && (n < 120 || n > 5760) {
			t.Fatalf("%d samples", n)
		}
	})
}

func FuzzOggReader(f *testing.F) {
	f.Add(oggPage(2, [][]byte{[]byte("OpusHead")}, false))
	f.Add(append(oggPage(0, [][]byte{bytes.Repeat([]byte{1}, 300)}, true), oggPage(1, [][]byte{{2}}, false)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newOggReader(bytes.NewReader(b))
		for i := 0; i < 1000; i++ { // every page consumes >= 27 bytes, so this is enough
			p, err := r.next()
			if err != nil {
				return
			}
			if len(p) > maxOggPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
		}
	})
}

// FuzzPublishVideo drives a publish with a sequence of FLV video tag bodies
// (separated by the 4-byte marker "TAG!") and checks the RTP it emits.
func FuzzPublishVideo(f *testing.F) {
	seq := append([]byte{0x17, 0, 0, 0, 0}, avcRecord(f, mustHex(f, spsBaseline), mustHex(f, "68cb83cb20"), 3)...)
	key := []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33}
	delta := []byte{0x27, 1, 0, 0, 0x21, 0, 0, 0, 3, 0x41, 0x9a, 0x02}
	sep := []byte("TAG!")
	f.Add(bytes.Join([][]byte{seq, key, delta}, sep))
	f.Add(bytes.Join([][]byte{seq, key, append(append([]byte{}, key[:9]...), bytes.Repeat([]byte{7}, 3000)...)}, sep))
	f.Fuzz(func(t *testing.T, b []byte) {
		sess := &fakeSession{closedCh: make(chan struct{})}
		m, _ := newMetrics(nil)
		p := newPublish(context.Background(), StreamInfo{}, sess, publishOptions{MTU: 200, Transcoder: &fakeTranscoder{}, RestartMin: time.Millisecond, RestartMax: time.Millisecond}, slog.New(slog.DiscardHandler), m)
		defer p.close()
		for i, tag := range bytes.Split(b, sep) {
			if err := p.video(uint32(i*33), tag); err != nil {
				return
			}
		}
		v, _ := sess.tracks()
		if v == nil {
			return
		}
		var lastTS uint32
		pkts := v.packets()
		for i, pk := range pkts {
			if len(pk.Payload) > 200 || len(pk.Payload) == 0 {
				t.Fatalf("packet %d payload %d", i, len(pk.Payload))
			}
			if i > 0 && !pkts[i-1].Marker && pk.Timestamp != lastTS {
				t.Fatalf("timestamp changed without a marker at %d", i)
			}
			lastTS = pk.Timestamp
		}
		if len(pkts) > 0 && !pkts[len(pkts)-1].Marker {
			t.Fatal("last packet lacks the marker")
		}
	})
}

// recordClientSession captures what go-rtmp's client sends after the
// handshake for connect, createStream, publish and a few media messages:
// a realistic seed for the connection fuzzer, through a recording relay.
func recordClientSession(t testing.TB, serverAddr string) []byte {
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	rec := &recordingConn{}
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		a, err := relay.Accept()
		if err != nil {
			return
		}
		defer a.Close()
		p, err := net.Dial("tcp", serverAddr)
		if err != nil {
			return
		}
		defer p.Close()
		go func() { _, _ = io.Copy(a, p) }()
		_, _ = io.Copy(io.MultiWriter(p, rec), a)
	}()
	cc, err := gortmp.Dial("rtmp", relay.Addr().String(), &gortmp.ConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cc.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live"}}); err != nil {
		t.Fatal(err)
	}
	st, err := cc.CreateStream(nil, 128)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Publish(&message.NetStreamPublish{PublishingName: "k", PublishingType: "live"}); err != nil {
		t.Fatal(err)
	}
	seqHdr := append([]byte{0x17, 0, 0, 0, 0}, avcRecord(t, mustHex(t, spsBaseline), mustHex(t, "68cb83cb20"), 3)...)
	for i, p := range [][]byte{seqHdr, {0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}, {0xaf, 0, 0x11, 0x90}, {0xaf, 1, 0x21}} {
		var msg message.Message = &message.VideoMessage{Payload: bytes.NewReader(p)}
		if p[0] == 0xaf {
			msg = &message.AudioMessage{Payload: bytes.NewReader(p)}
		}
		if err := st.Write(6, uint32(i), msg); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	_ = cc.Close()
	<-relayed
	return rec.afterHandshake()
}

type recordingConn struct {
	mu  sync.Mutex
	out []byte
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out = append(r.out, b...)
	r.mu.Unlock()
	return len(b), nil
}

func (r *recordingConn) afterHandshake() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	const hs = 1 + 1536 + 1536 // C0, C1, C2
	if len(r.out) <= hs {
		return nil
	}
	return append([]byte(nil), r.out[hs:]...)
}

// FuzzServerConnection sends arbitrary bytes after a valid handshake. The
// connection must end (by error, EOF or timeout), the server must survive,
// and every session started must be closed.
func FuzzServerConnection(f *testing.F) {
	cfg := DefaultConfig()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	cfg.ReadTimeout = 200 * time.Millisecond
	sink := newFakeSink()
	srv, err := New(cfg, Deps{Keys: fakeKeys{"k": nil}, Sink: sink, Transcoder: &fakeTranscoder{}})
	if err != nil {
		f.Fatal(err)
	}
	// Loopback TCP, not net.Pipe: go-rtmp's handshake writes S0 before
	// reading all of C1, which deadlocks on an unbuffered pipe.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Serve: %v", err)
		}
		for _, s := range sink.all() {
			select {
			case <-s.closedCh:
			default:
				f.Errorf("session %s never closed", s.info.StreamID)
			}
		}
	})
	seed := recordClientSession(f, addr)
	if ss := sink.all(); len(ss) != 1 {
		f.Fatalf("seed session did not publish (%d sessions)", len(ss))
	} else if v, a := ss[0].tracks(); v == nil || a == nil {
		f.Fatalf("seed session lacks tracks (video %v, audio %v)", v != nil, a != nil)
	}
	f.Add(seed)
	f.Add([]byte{0xc4, 1, 2, 3})
	f.Add([]byte{0x03, 0, 0, 0, 0, 0, 5, 20, 0, 0, 0, 0, 0x02, 0xff, 0xff, 0x11, 0x22})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		go func() { _, _ = c.Write(b) }()
		// The server must end the connection: by error, or by timeout.
		if _, err := io.Copy(io.Discard, c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("server did not close the connection within 5 s")
			}
		}
		// And still accept a new one.
		c2, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
		if err := handshake.HandshakeWithServer(c2, c2, &handshake.Config{}); err != nil {
			t.Fatalf("server no longer handshakes: %v", err)
		}
	})
}
