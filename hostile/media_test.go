package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// The SFU's media ports: the ICE UDP mux (sfu.udp_port) and the ICE-TCP
// listener (sfu.tcp_port). Each attack runs while a real call (one
// publisher, one subscriber, internal/client through the binary) keeps
// forwarding audio packets; the call must keep receiving and the
// server's RSS must stay within rssBudget.

// callPPS is the legitimate publisher's packet rate (one Opus frame
// every 20 ms).
const callPPS = 50

// legitCall is a publisher and a subscriber in one room. The subscriber
// counts the RTP packets that arrive.
type legitCall struct {
	pub, sub *client.Client
	got      atomic.Int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// tcpOnlyAPI is client.LoopbackAPI restricted to ICE-TCP.
func tcpOnlyAPI() *webrtc.API { return client.LoopbackAPIOver(webrtc.NetworkTypeTCP4) }

// issueToken mints a token with the throwaway admin key of the test's
// server (the dev token endpoint has its own per-address budget, which
// the call must not compete with).
func issueToken(t *testing.T, identity, room string) string {
	t.Helper()
	keys, err := auth.NewKeySet(map[string]string{testkit.ParleyAPIKey: testkit.ParleyAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Issue(testkit.ParleyAPIKey, auth.Claims{Identity: identity, Room: room,
		Grants: auth.Grants{Publish: true, Subscribe: true}}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startCall joins a subscriber, then a publisher that sends audio until
// the test ends; newAPI builds each participant's pion API (UDP or
// TCP-only).
func startCall(t *testing.T, p *testkit.Parley, room string, newAPI func() *webrtc.API) *legitCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(p.URL, "http") + "/ws"
	c := &legitCall{}
	var err error
	c.sub, err = client.Dial(ctx, client.Options{URL: wsURL, Origin: p.URL, Token: issueToken(t, "sub", room), API: newAPI(),
		OnTrack: func(_, _ string, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			// pion ends the track's reads when the connection closes, so
			// this goroutine ends with the subscriber (closed in Cleanup).
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					c.got.Add(1)
				}
			}()
		}})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	t.Cleanup(func() { _ = c.sub.Close() })
	c.pub, err = client.Dial(ctx, client.Options{URL: wsURL, Origin: p.URL, Token: issueToken(t, "pub", room), API: newAPI()})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(func() { _ = c.pub.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pub.Publish(ctx, []webrtc.TrackLocal{track}, []string{"microphone"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	sendCtx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	c.cancel = stop
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(time.Second / callPPS)
		defer tick.Stop()
		payload := make([]byte, 80)
		for seq := uint16(0); ; seq++ {
			select {
			case <-sendCtx.Done():
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
				Timestamp: uint32(seq) * 960, SSRC: 0x5eed}, Payload: payload})
		}
	}()
	t.Cleanup(c.stop)
	c.mustFlow(t, 15*time.Second)
	return c
}

func (c *legitCall) stop() {
	c.cancel()
	c.wg.Wait()
}

// mustFlow fails the test unless at least a second's worth of packets
// (half the publisher's rate, for slack) arrives within limit.
func (c *legitCall) mustFlow(t *testing.T, limit time.Duration) {
	t.Helper()
	start := c.got.Load()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c.got.Load()-start >= callPPS/2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the legitimate call received %d packets in %v (want %d)", c.got.Load()-start, limit, callPPS/2)
}

// udpJunk returns the i-th junk datagram: random bytes, truncated STUN,
// STUN binding requests with random ufrags, fake RTP, RTCP and DTLS.
func udpJunk(rng *rand.Rand, i int) []byte {
	switch i % 6 {
	case 0:
		b := make([]byte, 1+rng.IntN(1200))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		return b
	case 1, 2:
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(fmt.Sprintf("%08x:%08x", rng.Uint32(), rng.Uint32())),
			stun.NewShortTermIntegrity("not-the-password"), stun.Fingerprint)
		if err != nil {
			panic(err) // fixed attributes; cannot fail
		}
		if i%6 == 2 {
			// Header intact (magic cookie, so it passes stun.IsMessage),
			// attributes cut off.
			return m.Raw[:20+rng.IntN(len(m.Raw)-20)]
		}
		return m.Raw
	case 3:
		b := make([]byte, 12+rng.IntN(1000))
		b[0], b[1] = 0x80, 96 // RTP v2, dynamic payload type
		binary.BigEndian.PutUint32(b[8:], rng.Uint32())
		return b
	case 4:
		b := make([]byte, 8+4*rng.IntN(20))
		b[0], b[1] = 0x81, 201 // RTCP receiver report
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
		return b
	default:
		b := make([]byte, 13+rng.IntN(300))
		b[0], b[1], b[2] = 22, 0xfe, 0xfd // DTLS 1.2 handshake record
		return b
	}
}

// logLines counts the lines of the server's log.
func logLines(t *testing.T, p *testkit.Parley) int {
	t.Helper()
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestMediaUDPJunk sends 24,000 junk datagrams from four other loopback
// addresses to the SFU's UDP port. The mux keeps no state for a source
// it does not know; the call must keep flowing, memory stay flat, and
// the log must not grow with the attack (a warning per datagram fills
// an operator's disk at line rate).
func TestMediaUDPJunk(t *testing.T) {
	p := start(t, nil)
	call := startCall(t, p, "udp-junk", client.LoopbackAPI)
	mem := watchMem(t, p)
	linesBefore := logLines(t, p)
	target := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.UDPPort}

	const perSource, sources = 6000, 4
	var wg sync.WaitGroup
	errs := make(chan error, sources)
	for s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+s))})
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			rng := rand.New(rand.NewPCG(uint64(s), 17))
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; i < perSource && time.Now().Before(deadline); i++ {
				_, _ = conn.WriteToUDP(udpJunk(rng, i), target)
				if i%200 == 199 {
					time.Sleep(10 * time.Millisecond) // ~20,000 datagrams/s per source: loopback must not drop the call's own packets
				}
			}
		}()
	}
	// The call is checked while the junk is in flight.
	call.mustFlow(t, 5*time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("attacker socket: %v", err)
	}
	call.mustFlow(t, 5*time.Second)
	mem.check(t)
	grew := logLines(t, p) - linesBefore
	t.Logf("server log grew by %d lines for %d junk datagrams", grew, perSource*sources)
	if grew > 200 {
		t.Fatalf("the server logged %d lines for %d junk datagrams: the log grows with the attack", grew, perSource*sources)
	}
}

// heldByServer reports whether the server still holds c open: a read
// that times out means open, EOF or a reset means the server closed it.
func heldByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 64))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countHeld dials n connections from src, lets send write to each, waits
// settle and counts those the server still holds; all are closed when
// the test ends.
func countHeld(t *testing.T, p *testkit.Parley, src string, n int, send func(net.Conn), settle time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", p.TCPPort)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := dialFrom(ctx, src, addr)
		if err != nil {
			// The kernel's accept queue may refuse a flood; what matters is
			// what the server holds, not how many the attacker got in.
			continue
		}
		conns = append(conns, c)
		if send != nil {
			send(c)
		}
	}
	time.Sleep(settle)
	held := 0
	for _, c := range conns {
		if heldByServer(c) {
			held++
		}
	}
	return held
}

// sendFrame writes one RFC 4571 frame (a 16-bit length, then the
// payload; payloads here are under 64 KiB).
func sendFrame(c net.Conn, payload []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(payload))), payload...))
}

// fakeBinding is a STUN binding request for a ufrag the server never
// issued.
func fakeBinding(rng *rand.Rand) []byte {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(fmt.Sprintf("%08x:%08x", rng.Uint32(), rng.Uint32())),
		stun.NewShortTermIntegrity("not-the-password"), stun.Fingerprint)
	if err != nil {
		panic(err) // fixed attributes; cannot fail
	}
	return m.Raw
}

// iceTCPCap is the per-address cap the TCP tests configure (smaller than
// the default so a bounded attack exceeds it many times over).
const iceTCPCap = 8

// TestMediaICETCPFlood opens, from one address then from several, many
// ICE-TCP connections that never authenticate: idle ones, junk bytes,
// oversized RFC 4571 frames, and STUN bindings for unknown ufrags
// followed by a stream of frames. The server must close junk at once,
// hold no more than the per-address cap of the rest, keep the call
// flowing and its memory flat; afterwards a new call connects over
// ICE-TCP only.
func TestMediaICETCPFlood(t *testing.T) {
	p := start(t, map[string]any{"sfu": map[string]any{"tcp_unauthenticated_per_addr": iceTCPCap, "tcp_first_stun_timeout": "3s"}})
	call := startCall(t, p, "tcp-flood", client.LoopbackAPI)
	mem := watchMem(t, p)
	rng := rand.New(rand.NewPCG(4571, 1))

	t.Run("junk is closed", func(t *testing.T) {
		junk := func(c net.Conn) { _, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }
		if held := countHeld(t, p, "127.0.0.2", 50, junk, 500*time.Millisecond); held != 0 {
			t.Errorf("server holds %d of 50 connections that sent junk", held)
		}
		oversized := func(c net.Conn) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(append([]byte{0xff, 0xff}, make([]byte, 4096)...))
		}
		if held := countHeld(t, p, "127.0.0.2", 50, oversized, 500*time.Millisecond); held != 0 {
			t.Errorf("server holds %d of 50 connections that sent a 65535-byte frame", held)
		}
		call.mustFlow(t, 5*time.Second)
	})

	t.Run("idle from one address", func(t *testing.T) {
		held := countHeld(t, p, "127.0.0.3", 300, nil, 500*time.Millisecond)
		t.Logf("one address: server holds %d of 300 idle connections", held)
		if held > iceTCPCap {
			t.Errorf("server holds %d idle ICE-TCP connections from one address, cap %d", held, iceTCPCap)
		}
		call.mustFlow(t, 5*time.Second)
	})

	t.Run("fake ufrags with a stream from one address", func(t *testing.T) {
		// Each connection binds an unknown ufrag, then pushes 64 KiB of
		// 8 KiB frames that nobody will ever read; pion buffers up to
		// 512 such frames per connection.
		stream := func(c net.Conn) {
			sendFrame(c, fakeBinding(rng))
			for range 8 {
				sendFrame(c, make([]byte, 8000))
			}
		}
		held := countHeld(t, p, "127.0.0.4", 200, stream, 500*time.Millisecond)
		t.Logf("one address: server holds %d of 200 connections with unknown ufrags", held)
		if held > iceTCPCap {
			t.Errorf("server holds %d unauthenticated ICE-TCP connections from one address, cap %d", held, iceTCPCap)
		}
		call.mustFlow(t, 5*time.Second)
	})

	t.Run("idle from several addresses", func(t *testing.T) {
		total := 0
		for i := range 6 {
			total += countHeld(t, p, fmt.Sprintf("127.0.1.%d", 1+i), 60, nil, 0)
		}
		t.Logf("six addresses: server holds %d of 360 idle connections", total)
		if total > 6*iceTCPCap {
			t.Errorf("server holds %d idle connections from six addresses, cap %d each", total, iceTCPCap)
		}
		call.mustFlow(t, 5*time.Second)
	})

	t.Run("first STUN deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := dialFrom(ctx, "127.0.0.5", fmt.Sprintf("127.0.0.1:%d", p.TCPPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		began := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("an idle connection was not closed by the server within 8 s (tcp_first_stun_timeout 3s): %v", err)
		}
		t.Logf("server closed an idle connection after %v", time.Since(began).Round(10*time.Millisecond))
	})

	mem.check(t)
	call.mustFlow(t, 5*time.Second)

	t.Run("new call over ICE-TCP after the attack", func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				logICETCPMetrics(t, p)
			}
		})
		tcpCall := startCall(t, p, "tcp-after", tcpOnlyAPI)
		tcpCall.mustFlow(t, 5*time.Second)
		recv := tcpCall.sub.Subscriber().GetReceivers()
		if len(recv) == 0 {
			t.Fatal("the TCP-only subscriber has no receiver")
		}
		pair, err := recv[0].Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("no selected candidate pair on the TCP-only subscriber: %v", err)
		}
		if pair.Local.Protocol != webrtc.ICEProtocolTCP {
			t.Fatalf("the TCP-only call uses %v", pair)
		}
	})
}

// logICETCPMetrics logs the server's ICE-TCP counters: which of its
// guards closed connections, and how many it holds unauthenticated (a
// new call that cannot connect over ICE-TCP is read against them).
func logICETCPMetrics(t *testing.T, p *testkit.Parley) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := promtext.Scrape(ctx, p.URL+"/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	for _, series := range []string{`parley_sfu_ice_tcp_refused_total{reason="per_addr_cap"}`, `parley_sfu_ice_tcp_refused_total{reason="read_budget"}`,
		`parley_sfu_ice_tcp_refused_total{reason="accept_error"}`, `parley_sfu_ice_tcp_unauthenticated`} {
		v, _ := s.Value(series)
		t.Logf("%s %v", series, v)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
