package turn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v4"

	"github.com/parleyhq/parley/internal/testkit"
)

// channelFrame builds a ChannelData message, padded to 4 bytes when pad.
func channelFrame(ch uint16, payload []byte, pad bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, ch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload))) //nolint:gosec // test payloads are small
	b = append(b, payload...)
	for pad && len(b)%4 != 0 {
		b = append(b, 0)
	}

	return b
}

// bindChannel allocates and binds channel ch to peer with a hand-made
// client, the way browsers do before sending media.
func bindChannel(t *testing.T, rc *rawClient, ch uint16, peer *net.UDPAddr) {
	t.Helper()
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17)); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	if _, code := rc.do(stun.MethodChannelBind, channelNumber(ch), peerAddr{ip: peer.IP, port: peer.Port}); code != 0 {
		t.Fatalf("channel bind: %d", code)
	}
}

// readFrame reads one TURN frame from a client connection: a datagram, or
// over TCP a ChannelData header and its padded payload.
func readFrame(t *testing.T, c net.Conn, stream bool) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if !stream {
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}

		return buf[:n]
	}
	head := make([]byte, 4)
	if _, err := readFull(c, head); err != nil {
		t.Fatalf("read header: %v", err)
	}
	length := int(binary.BigEndian.Uint16(head[2:4]))
	if head[0] < 0x40 { // a STUN message
		length += 16
	} else {
		length = (length + 3) &^ 3
	}
	rest := make([]byte, length)
	if _, err := readFull(c, rest); err != nil {
		t.Fatalf("read body: %v", err)
	}

	return append(head, rest...)
}

func readFull(c net.Conn, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		n, err := c.Read(b[got:])
		got += n
		if err != nil {
			return got, err
		}
	}

	return got, nil
}

// TestChannelDataRelayed drives the fast path as a browser would: after a
// ChannelBind, ChannelData goes to the peer and the peer's answers come
// back as ChannelData on the same channel, over UDP and over TCP (where
// frames are padded to 4 bytes and may arrive glued together or split).
// Send indications still work beside it.
func TestChannelDataRelayed(t *testing.T) {
	for _, loops := range []int{1, 3} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) { testChannelDataRelayed(t, loops) })
	}
}

func testChannelDataRelayed(t *testing.T, loops int) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	cfg.EventLoops = loops
	cfg.UDPSocketsPerAddress = loops
	ts := startServer(t, cfg)
	echo := udpEcho(t).(*net.UDPAddr)
	for _, tc := range []struct {
		network, addr string
		stream        bool
	}{{"udp", ts.udp, false}, {"tcp", ts.tcp, true}, {"udp", ts.udp, false}, {"tcp", ts.tcp, true}} {
		t.Run(tc.network, func(t *testing.T) {
			u, p := RESTCredentials(testSecret, "browser-"+tc.network, time.Hour, time.Now())
			rc := newRawClient(t, tc.network, tc.addr, u, p)
			const ch = 0x4001
			bindChannel(t, rc, ch, echo)
			toPeer := counter(ts.metrics.packetsToPeer)
			for i, payload := range [][]byte{[]byte("a"), []byte("five!"), bytes.Repeat([]byte{7}, 1200)} {
				if _, err := rc.conn.Write(channelFrame(ch, payload, tc.stream)); err != nil {
					t.Fatal(err)
				}
				got := readFrame(t, rc.conn, tc.stream)
				if want := channelFrame(ch, payload, tc.stream); !bytes.Equal(got, want) {
					t.Fatalf("message %d: got % x, want % x", i, got[:min(len(got), 16)], want[:min(len(want), 16)])
				}
			}
			if tc.stream {
				// Two frames in one write, then one frame split in two.
				glued := append(channelFrame(ch, []byte("one"), true), channelFrame(ch, []byte("two"), true)...)
				if _, err := rc.conn.Write(glued); err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"one", "two"} {
					if got := readFrame(t, rc.conn, true); !bytes.Equal(got, channelFrame(ch, []byte(want), true)) {
						t.Fatalf("glued frames: got % x", got)
					}
				}
				split := channelFrame(ch, []byte("split frame"), true)
				_, _ = rc.conn.Write(split[:3])
				time.Sleep(20 * time.Millisecond)
				_, _ = rc.conn.Write(split[3:])
				if got := readFrame(t, rc.conn, true); !bytes.Equal(got, split) {
					t.Fatalf("split frame: got % x", got)
				}
			}
			// The relay counts a datagram after its send returns, which
			// can be after the peer's echo is back here.
			testkit.Eventually(t, 2*time.Second, "3 datagrams counted to the peer", func() bool {
				return counter(ts.metrics.packetsToPeer)-toPeer >= 3
			})
			// A Send indication is relayed too, and the answer comes back
			// on the channel (a channel is bound to that peer).
			ind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
				peerAddr{ip: echo.IP, port: echo.Port}, stun.RawAttribute{Type: stun.AttrData, Value: []byte("by indication")})
			if _, err := rc.conn.Write(ind.Raw); err != nil {
				t.Fatal(err)
			}
			if got := readFrame(t, rc.conn, tc.stream); !bytes.Equal(got, channelFrame(ch, []byte("by indication"), tc.stream)) {
				t.Fatalf("answer to a Send indication: % x", got)
			}
			// ChannelData on a channel never bound reaches nobody. (pion
			// counts the indication above after its send returns, which
			// can be after the echo is back: let that settle first.)
			time.Sleep(50 * time.Millisecond)
			before := counter(ts.metrics.packetsToPeer)
			if _, err := rc.conn.Write(channelFrame(0x4002, []byte("nowhere"), tc.stream)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if counter(ts.metrics.packetsToPeer) != before {
				t.Fatal("ChannelData on an unbound channel was relayed")
			}
		})
	}
}

// TestFastPathAllocatesNothing checks that relaying ChannelData over UDP
// allocates nothing in the server: pion's own path allocated about 14
// objects per round trip, and the garbage collector chasing them was most
// of the CPU gap to coturn (docs/benchmarks.md).
func TestFastPathAllocatesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)
	// An echo peer that allocates nothing either.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })

	u, p := RESTCredentials(testSecret, "quiet", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	bindChannel(t, rc, 0x4000, pc.LocalAddr().(*net.UDPAddr))
	frame := channelFrame(0x4000, bytes.Repeat([]byte{1}, 1000), false)
	buf := make([]byte, 2048)
	_ = rc.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	lost := 0
	roundTrip := func() {
		if _, err := rc.conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		if n, err := rc.conn.Read(buf); err != nil || n != len(frame) {
			lost++
		}
	}
	for range 20 {
		roundTrip()
	}
	allocs := testing.AllocsPerRun(500, roundTrip)
	if lost > 0 {
		t.Fatalf("%d round trips failed", lost)
	}
	if allocs >= 1 {
		t.Fatalf("%.1f allocations per relayed round trip, want none", allocs)
	}
}

// TestVNetChannelExpiryStopsRelay lets a channel binding lapse (pion
// expires it after 10 minutes without a refresh) while the allocation is
// kept alive: ChannelData on it must stop reaching the peer, on the fast
// path as on pion's.
func TestVNetChannelExpiryStopsRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newVNetWorld(t)
		ts := w.startServer(t, testConfig())
		echo := w.echo(t).(*net.UDPAddr)
		conn, err := w.client.Dial("udp", "1.2.3.4:3478")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		u, p := RESTCredentials(testSecret, "lapsing", time.Hour, time.Now())
		rc := &rawClient{t: t, conn: conn, datagram: true, user: u, password: p}
		bindChannel(t, rc, 0x4000, echo)
		send := func() bool {
			before := counter(ts.metrics.packetsToPeer)
			if _, err := conn.Write(channelFrame(0x4000, []byte("ping"), false)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			// Drain the echo so the next request reads its own answer.
			buf := make([]byte, 2048)
			for range 10 {
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
				if _, err := conn.Read(buf); err != nil {
					break
				}
			}

			return counter(ts.metrics.packetsToPeer) > before
		}
		known := func() (channels, perms int) {
			fa := ts.fast.lookup(fastKey{client: netip.MustParseAddrPort(conn.LocalAddr().String()),
				server: netip.MustParseAddrPort("1.2.3.4:3478")})
			if fa == nil {
				t.Fatal("the fast path does not know the allocation")
			}
			return fa.Known()
		}
		if !send() {
			t.Fatal("ChannelData not relayed on a fresh channel")
		}
		if ch, perms := known(); ch != 1 || perms != 1 {
			t.Fatalf("the fast path knows %d channels and %d permissions, want 1 and 1", ch, perms)
		}
		// Refresh the allocation (not the channel) past 10 minutes.
		for range 2 {
			time.Sleep(5*time.Minute + time.Second)
			if _, code := rc.do(stun.MethodRefresh, lifetime(10*time.Minute)); code != 0 {
				t.Fatalf("refresh: %d", code)
			}
		}
		synctest.Wait()
		if send() {
			t.Fatal("ChannelData relayed after the channel expired")
		}
		if ch, perms := known(); ch != 0 || perms != 0 {
			t.Fatalf("the fast path still knows %d channels and %d permissions after expiry", ch, perms)
		}
	})
}

// TestChannelDataRelayedIPv6 runs the fast path over IPv6 sockets on both
// sides: an IPv6 client, an IPv6 relay, an IPv6 peer.
func TestChannelDataRelayedIPv6(t *testing.T) {
	cfg := testConfig()
	cfg.ListenUDP = []string{"[::1]:0"}
	cfg.ListenTCP = nil
	cfg.PublicIPv6 = "::1"
	cfg.RelayBindIPv6 = "::1"
	cfg.AllowedPeerCIDRs = []string{"::1/128"}
	ts := startServer(t, cfg)
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatalf("no IPv6 on loopback: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); echoLoop(pc) }()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	echo := pc.LocalAddr().(*net.UDPAddr)

	u, p := RESTCredentials(testSecret, "v6", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.Addrs().UDP[0].String(), u, p)
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17),
		stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{0x02, 0, 0, 0}}); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
	if _, code := rc.do(stun.MethodChannelBind, channelNumber(0x4321), peerAddr{ip: echo.IP, port: echo.Port}); code != 0 {
		t.Fatalf("channel bind: %d", code)
	}
	frame := channelFrame(0x4321, []byte("over IPv6"), false)
	if _, err := rc.conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, rc.conn, false); !bytes.Equal(got, frame) {
		t.Fatalf("got % x, want % x", got, frame)
	}
}
