package turn

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"
)

// tlsHandshakeTimeout bounds a TLS client that connects and stays silent.
const tlsHandshakeTimeout = 10 * time.Second

// clientPacketConn wraps a UDP listener socket handed to pion: it is
// tracked for shutdown; it shows signed requests to the authenticator
// (secret rotation) and to noteRequest before pion parses them; it turns
// pion's 400 for a refused credential into a 401; and it bounds answers to
// unsigned requests (amplify.go). pion serves each socket from one
// goroutine (read, handle, answer), so the last request read is the one
// being answered.
type clientPacketConn struct {
	net.PacketConn
	udp   *net.UDPConn // nil on a vnet
	addrs addrCache
	srv   *Server
	tr    *tracked
	learn func([]byte)
	notes requestNotes
	once  sync.Once
}

func (c *clientPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.tr.enter()
	n, addr, err := c.readFrom(p)
	c.tr.leave()
	// STUN messages start with two zero bits; ChannelData (0x40..0x4f) is
	// data and is not worth a look.
	if err == nil && n >= 20 && p[0] < 0x40 {
		c.srv.noteRequest(&c.notes, p[:n], addr)
		if c.learn != nil {
			c.learn(p[:n])
		}
	}

	return n, addr, err
}

func (c *clientPacketConn) readFrom(p []byte) (int, net.Addr, error) {
	if c.udp == nil {
		return c.PacketConn.ReadFrom(p)
	}
	n, ap, err := c.udp.ReadFromUDPAddrPort(p)
	if err != nil {
		return n, nil, err
	}

	return n, c.addrs.get(ap), nil
}

// addrCache hands out one *net.UDPAddr per client address so that pion's
// read loop does not allocate one per datagram. Only that loop uses it. It
// is bounded: when full (many clients, or a flood of spoofed sources) it
// starts over. A handed-out address is never modified.
type addrCache struct {
	m map[netip.AddrPort]*net.UDPAddr
}

const addrCacheSize = 4096

func (a *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if u, ok := a.m[ap]; ok {
		return u
	}
	if a.m == nil || len(a.m) >= addrCacheSize {
		a.m = make(map[netip.AddrPort]*net.UDPAddr)
	}
	u := net.UDPAddrFromAddrPort(ap)
	a.m[ap] = u

	return u
}

func (c *clientPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if r := c.srv.rewriteRefusal(p, addr, &c.notes); r != nil {
		_, err := c.PacketConn.WriteTo(r, addr)

		return len(p), err
	}
	out, send := c.srv.limitUnsigned(p, &c.notes, addr)
	if !send {
		return len(p), nil // dropped like a lost datagram; the client retries or gives up
	}
	if len(out) != len(p) {
		_, err := c.PacketConn.WriteTo(out, addr)

		return len(p), err
	}

	return c.PacketConn.WriteTo(p, addr)
}

func (c *clientPacketConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.PacketConn.Close()
		c.tr.markClosed()
	})

	return err
}

// clientListener wraps a TCP or TLS listener handed to pion: it bounds the
// number of open client connections and wraps each accepted one.
type clientListener struct {
	net.Listener
	srv  *Server
	tr   *tracked
	sem  chan struct{} // nil: unbounded
	once sync.Once
}

func (l *clientListener) Accept() (net.Conn, error) {
	for {
		l.tr.enter()
		c, err := l.Listener.Accept()
		l.tr.leave()
		if err != nil {
			return nil, err
		}
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			default:
				l.srv.metrics.tcpConnsRefused.Inc()
				_ = c.Close()

				continue
			}
		}
		w := &clientConn{Conn: c, srv: l.srv, sem: l.sem}
		learn := l.srv.auth.wantsRaw()
		w.framer = &stunFramer{learn: func(m []byte) {
			l.srv.noteRequest(&w.notes, m, c.RemoteAddr())
			if learn {
				l.srv.auth.learn(m)
			}
		}}
		l.srv.metrics.tcpConnsActive.Inc()
		if !l.srv.tracker.add(w, func(tr *tracked) { w.tr = tr }) {
			return nil, net.ErrClosed
		}

		return w, nil
	}
}

func (l *clientListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		l.tr.markClosed()
	})

	return err
}

// clientConn is one client TCP/TLS connection. After a ConnectionBind it
// carries raw relayed data; the framer notices and stops looking.
type clientConn struct {
	net.Conn
	srv    *Server
	tr     *tracked
	sem    chan struct{}
	framer *stunFramer
	notes  requestNotes
	hs     sync.Once
	hsErr  error
	ended  sync.Once
	once   sync.Once
}

func (c *clientConn) Read(p []byte) (int, error) {
	c.tr.enter()
	defer c.tr.leave()
	if tc, ok := c.Conn.(*tls.Conn); ok {
		// pion only bounds the handshake of a *tls.Conn it sees; this
		// wrapper hides it, so bound it here.
		c.hs.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
			defer cancel()
			c.hsErr = tc.HandshakeContext(ctx)
		})
		if c.hsErr != nil {
			return 0, c.hsErr
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.framer != nil {
		c.framer.feed(p[:n])
	}
	if err != nil {
		// pion deletes this client's allocation next; say why.
		c.ended.Do(func() { c.srv.closes.note(c.Conn.RemoteAddr()) })
	}

	return n, err
}

func (c *clientConn) Write(p []byte) (int, error) {
	c.tr.enter()
	defer c.tr.leave()
	// pion writes one whole STUN message per Write on a client connection.
	if r := c.srv.rewriteRefusal(p, c.Conn.RemoteAddr(), &c.notes); r != nil {
		_, err := c.Conn.Write(r)

		return len(p), err
	}
	out, send := c.srv.limitUnsigned(p, &c.notes, c.Conn.RemoteAddr())
	if !send {
		return len(p), nil
	}
	if len(out) != len(p) {
		_, err := c.Conn.Write(out)

		return len(p), err
	}

	return c.Conn.Write(p)
}

func (c *clientConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		if c.sem != nil {
			<-c.sem
		}
		c.srv.metrics.tcpConnsActive.Dec()
		c.tr.markClosed()
	})

	return err
}

// maxLearnFrame is the largest STUN message shown to the authenticator;
// control requests are far smaller, larger frames are skipped.
const maxLearnFrame = 2048

// stunFramer follows the TURN-over-TCP framing (RFC 8656 section 12: STUN
// messages and ChannelData padded to 4 bytes) of a client stream and hands
// complete STUN messages to learn. Anything that is neither turns it off.
type stunFramer struct {
	learn func([]byte)
	buf   []byte
	skip  int
	off   bool
}

func (f *stunFramer) feed(b []byte) {
	for len(b) > 0 && !f.off {
		if f.skip > 0 {
			n := min(f.skip, len(b))
			f.skip -= n
			b = b[n:]

			continue
		}
		if len(f.buf) < 4 {
			take := min(4-len(f.buf), len(b))
			f.buf = append(f.buf, b[:take]...)
			b = b[take:]
			if len(f.buf) < 4 {
				return
			}
		}
		length := int(binary.BigEndian.Uint16(f.buf[2:4]))
		switch first := f.buf[0]; {
		case first < 0x40: // STUN
			total := 20 + length
			if total > maxLearnFrame {
				f.skip = total - len(f.buf)
				f.buf = f.buf[:0]

				continue
			}
			take := min(total-len(f.buf), len(b))
			f.buf = append(f.buf, b[:take]...)
			b = b[take:]
			if len(f.buf) < total {
				return
			}
			if binary.BigEndian.Uint32(f.buf[4:8]) != 0x2112A442 {
				f.off = true

				return
			}
			f.learn(f.buf)
			f.buf = f.buf[:0]
		case first < 0x50: // ChannelData (channels 0x4000-0x4fff), padded to 4 bytes over TCP
			f.skip = (length + 3) &^ 3
			f.buf = f.buf[:0]
		default:
			f.off = true
		}
	}
}
