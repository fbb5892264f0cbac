package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

// CheckOptions say which TURN server Check exercises and how.
type CheckOptions struct {
	// Addr is the server's host:port (for example "127.0.0.1:3478").
	Addr string
	// Transport is "udp" (default), "tcp" or "tls".
	Transport string
	// TLSConfig is used for "tls"; nil verifies against the system roots.
	TLSConfig *tls.Config
	// Realm must match the server's turn.realm.
	Realm string
	// Secret and User make a REST credential (the normal case). Username
	// and Password are used instead when Secret is empty (a static user).
	Secret, User       string
	Username, Password string
	// PeerIP, when set, binds a local UDP echo socket on that address and
	// relays to it; the server's peer policy must allow it. When empty, a
	// second allocation on the same server echoes, which also proves that
	// the advertised relay address (turn.public_ipv4/6) is reachable.
	PeerIP string
	// Timeout bounds the whole check; 0 means 10 seconds.
	Timeout time.Duration
}

const checkProbes = 5

// Check allocates a relay on a running TURN server, relays probes to an
// echo peer and back, and returns one line saying whether TURN works and,
// if not, what is wrong. err is non-nil exactly when TURN does not work.
func Check(ctx context.Context, opts CheckOptions) (report string, err error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	if opts.Transport != "udp" && opts.Transport != "tcp" && opts.Transport != "tls" {
		return fail("TURN check: transport %q is not udp, tcp or tls", opts.Transport)
	}
	user, pass := opts.Username, opts.Password
	if opts.Secret != "" {
		name := opts.User
		if name == "" {
			name = "turn-check"
		}
		user, pass = RESTCredentials(opts.Secret, name, 10*time.Minute, time.Now())
	}
	if user == "" {
		return fail("TURN check: no credential (set a shared secret or a static user)")
	}

	a, err := dialTURN(ctx, opts, user, pass)
	if err != nil {
		return fail("TURN does not work: %s", explain(err, opts))
	}
	defer a.close()

	var peer net.Addr
	var echoDone chan struct{}
	if opts.PeerIP != "" {
		echo, err := net.ListenPacket("udp", net.JoinHostPort(opts.PeerIP, "0"))
		if err != nil {
			return fail("TURN check: cannot open echo socket on %s: %v", opts.PeerIP, err)
		}
		defer func() { _ = echo.Close(); <-echoDone }()
		echoDone = make(chan struct{})
		go func() { defer close(echoDone); echoLoop(echo) }()
		peer = echo.LocalAddr()
	} else {
		b, err := dialTURN(ctx, opts, user, pass)
		if err != nil {
			return fail("TURN does not work: second allocation: %s", explain(err, opts))
		}
		defer b.close()
		if err := b.client.CreatePermission(a.relay.LocalAddr()); err != nil {
			return fail("TURN does not work: permission for relay %s refused: %s", a.relay.LocalAddr(), explain(err, opts))
		}
		echoDone = make(chan struct{})
		defer func() { _ = b.relay.Close(); <-echoDone }()
		go func() { defer close(echoDone); echoLoop(b.relay) }()
		peer = b.relay.LocalAddr()
	}

	got, rtt, err := probe(ctx, a.relay, peer)
	if err != nil {
		return fail("TURN does not work: relay %s over %s to peer %s: %s",
			a.relay.LocalAddr(), opts.Transport, peer, explain(err, opts))
	}
	if got == 0 {
		return fail("TURN does not work: allocated relay %s over %s but no data came back from peer %s "+
			"(is the relay address reachable from here? check turn.public_ipv4/6, the relay port range firewall, "+
			"and turn.allowed_peer_cidrs if the peer is private)", a.relay.LocalAddr(), opts.Transport, peer)
	}

	return fmt.Sprintf("TURN works: %s over %s, relay %s, %d/%d probes echoed by %s, rtt %s",
		opts.Addr, opts.Transport, a.relay.LocalAddr(), got, checkProbes, peer, rtt.Round(10*time.Microsecond)), nil
}

func fail(format string, args ...any) (string, error) {
	msg := fmt.Sprintf(format, args...)

	return msg, errors.New(msg)
}

type turnAlloc struct {
	client *pionturn.Client
	relay  net.PacketConn
	conn   net.PacketConn
	once   sync.Once
}

func (t *turnAlloc) close() {
	t.once.Do(func() {
		_ = t.relay.Close()
		t.client.Close()
		_ = t.conn.Close()
	})
}

func dialTURN(ctx context.Context, opts CheckOptions, user, pass string) (*turnAlloc, error) {
	var conn net.PacketConn
	switch opts.Transport {
	case "tcp":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	case "tls":
		d := tls.Dialer{Config: opts.TLSConfig}
		c, err := d.DialContext(ctx, "tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	default:
		network := "udp4"
		if host, _, err := net.SplitHostPort(opts.Addr); err == nil && strings.Contains(host, ":") {
			network = "udp6"
		}
		c, err := net.ListenPacket(network, ":0")
		if err != nil {
			return nil, fmt.Errorf("open client socket: %w", err)
		}
		conn = c
	}
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: opts.Addr,
		TURNServerAddr: opts.Addr,
		Username:       user,
		Password:       pass,
		Realm:          opts.Realm,
		Conn:           conn,
		LoggerFactory:  quietPion(),
	})
	if err != nil {
		_ = conn.Close()

		return nil, fmt.Errorf("client: %w", err)
	}
	if err := client.Listen(); err != nil {
		client.Close()
		_ = conn.Close()

		return nil, fmt.Errorf("client listen: %w", err)
	}
	relay, err := client.AllocateWithContext(ctx)
	if err != nil {
		client.Close()
		_ = conn.Close()

		return nil, fmt.Errorf("allocate: %w", err)
	}

	return &turnAlloc{client: client, relay: relay, conn: conn}, nil
}

func quietPion() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	f.Writer = os.Stderr

	return f
}

// echoLoop sends every datagram back to where it came from until c closes.
func echoLoop(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// probe sends checkProbes datagrams through relay to peer, each waiting up
// to a fraction of the remaining time for its echo.
func probe(ctx context.Context, relay net.PacketConn, peer net.Addr) (got int, rtt time.Duration, err error) {
	buf := make([]byte, 1500)
	for i := range checkProbes {
		msg := fmt.Appendf(nil, "parley-turn-check-%d", i)
		start := time.Now()
		if _, err := relay.WriteTo(msg, peer); err != nil {
			return got, rtt, err
		}
		wait := time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/time.Duration(checkProbes-i))
		}
		_ = relay.SetReadDeadline(time.Now().Add(wait))
		for {
			n, _, rerr := relay.ReadFrom(buf)
			if rerr != nil {
				break // timed out: this probe is lost
			}
			if string(buf[:n]) == string(msg) {
				got++
				rtt = time.Since(start)

				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}

	return got, rtt, nil
}

// explain turns a client error into what an operator should look at.
func explain(err error, opts CheckOptions) string {
	code := 0
	var te *stun.TurnError
	var tv stun.TurnError
	switch {
	case errors.As(err, &te):
		code = int(te.ErrorCodeAttr.Code)
	case errors.As(err, &tv):
		code = int(tv.ErrorCodeAttr.Code)
	}
	switch {
	case code == 401:
		return fmt.Sprintf("credential refused (%v): check turn.shared_secrets and that realm %q matches turn.realm", err, opts.Realm)
	case code == 403:
		return fmt.Sprintf("peer refused by the server's peer policy (%v): allow it in turn.allowed_peer_cidrs", err)
	case code == 486:
		return fmt.Sprintf("allocation quota reached (%v): see turn.max_allocations_per_user / turn.max_allocations", err)
	case code == 508:
		return fmt.Sprintf("server out of relay ports or address family not configured (%v): check turn.relay_port_min/max and turn.public_ipv4/6", err)
	case code != 0:
		return err.Error()
	}
	msg := err.Error()
	if strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline") || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(msg, "all retransmissions failed") {
		return fmt.Sprintf("no answer from %s over %s (%v): is the server running and the port open?", opts.Addr, opts.Transport, err)
	}
	if strings.Contains(msg, "refused") {
		return fmt.Sprintf("connection refused by %s (%v): is the server listening on %s?", opts.Addr, err, opts.Transport)
	}

	return msg
}

// LocalCheckOptions builds CheckOptions that exercise this configuration's
// first listener of transport ("udp", "tcp" or "tls") from the same host:
// a wildcard listen address becomes loopback, the credential comes from
// the first shared secret (else the first static user), and the echo peer
// is a second allocation, so the advertised relay address is tested too.
func (c Config) LocalCheckOptions(transport string) (CheckOptions, error) {
	list := map[string][]string{"udp": c.ListenUDP, "tcp": c.ListenTCP, "tls": c.ListenTLS}[transport]
	if transport == "tls" && c.TLSCert == "" {
		list = nil
	}
	if len(list) == 0 {
		return CheckOptions{}, fmt.Errorf("turn.listen_%s: no %s listener configured", transport, transport)
	}
	host, port, err := net.SplitHostPort(list[0])
	if err != nil {
		return CheckOptions{}, fmt.Errorf("turn.listen_%s: %w", transport, err)
	}
	switch host {
	case "0.0.0.0", "":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	o := CheckOptions{Addr: net.JoinHostPort(host, port), Transport: transport, Realm: c.Realm, User: "turn-check"}
	if transport == "tls" && c.PublicHost != "" {
		o.TLSConfig = &tls.Config{ServerName: c.PublicHost, MinVersion: tls.VersionTLS12}
	}
	switch {
	case len(c.SharedSecrets) > 0:
		o.Secret = c.SharedSecrets[0]
	case len(c.Users) > 0:
		for name, pw := range c.Users {
			if o.Username == "" || name < o.Username {
				o.Username, o.Password = name, pw
			}
		}
	default:
		return CheckOptions{}, ErrNoSecret
	}

	return o, nil
}
