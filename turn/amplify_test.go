package turn

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
	"golang.org/x/time/rate"
)

func TestUnsignedSlack(t *testing.T) {
	// 401 = 20 header + 8 ERROR-CODE + 32 NONCE + 4 + padded realm.
	for _, tc := range []struct {
		realm string
		want  int
	}{
		{"parley", 72 - 28},      // realm padded to 8
		{"parley.test", 76 - 28}, // padded to 12
		{"a", 68 - 28},
		{"turn.example.com", 80 - 28},
	} {
		if got := unsignedSlack(tc.realm); got != tc.want {
			t.Errorf("unsignedSlack(%q) = %d, want %d", tc.realm, got, tc.want)
		}
	}
}

func msg(t *testing.T, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}

	return m.Raw
}

func TestLimitUnsignedRule(t *testing.T) {
	const realm = "parley"
	slack := unsignedSlack(realm) // 44
	tx := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	other := [stun.TransactionIDSize]byte{9, 9, 9}
	nonce := stun.NewNonce("0123456789abcdefghijklmno") // pion's longest: 25 characters
	unauthorized := func(id [stun.TransactionIDSize]byte, extra ...stun.Setter) []byte {
		return msg(t, append([]stun.Setter{stun.NewTransactionIDSetter(id),
			stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
			&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized}, nonce, stun.NewRealm(realm)}, extra...)...)
	}
	binding := msg(t, stun.NewTransactionIDSetter(tx), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 4000}, stun.Fingerprint)
	channelData := append([]byte{0x40, 0x00, 0x00, 200}, make([]byte, 200)...)
	dataIndication := msg(t, stun.NewTransactionIDSetter(tx), stun.NewType(stun.MethodData, stun.ClassIndication),
		stun.RawAttribute{Type: stun.AttrData, Value: make([]byte, 500)})
	if n := len(unauthorized(tx)); n != 72 {
		t.Fatalf("401 with realm %q is %d bytes, want 72", realm, n)
	}

	for _, tc := range []struct {
		name     string
		req      *unsignedRequest // last unsigned request read, nil: none
		answer   []byte
		wantSend bool
		wantLen  int
	}{
		{"401 to Chromium's 28-byte Allocate", &unsignedRequest{tx: tx, size: 28}, unauthorized(tx), true, 72},
		{"401 to coturn's 52-byte Allocate", &unsignedRequest{tx: tx, size: 52}, unauthorized(tx), true, 72},
		{"401 to a forged 20-byte Allocate", &unsignedRequest{tx: tx, size: 20}, unauthorized(tx), false, 0},
		{"401 to a 27-byte request", &unsignedRequest{tx: tx, size: 27}, unauthorized(tx), false, 0},
		{"401 with SOFTWARE outgrows Chromium's Allocate", &unsignedRequest{tx: tx, size: 28},
			unauthorized(tx, stun.NewSoftware("parley turn server 1.0")), false, 0},
		{"Binding to a bare request loses FINGERPRINT", &unsignedRequest{tx: tx, size: 20}, binding, true, 44},
		{"Binding keeps FINGERPRINT the request had", &unsignedRequest{tx: tx, size: 28, fingerprint: true}, binding, true, 52},
		{"answer to a signed request (other transaction)", &unsignedRequest{tx: other, size: 20}, unauthorized(tx), true, 72},
		{"no unsigned request seen", nil, unauthorized(tx), true, 72},
		{"ChannelData is not an answer", &unsignedRequest{tx: tx, size: 20}, channelData, true, len(channelData)},
		{"Data indication is not an answer", &unsignedRequest{tx: tx, size: 20}, dataIndication, true, len(dataIndication)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMetrics(nil)
			if err != nil {
				t.Fatal(err)
			}
			s := &replies{metrics: m, slack: slack, log: &refusalLog{out: slog.New(slog.DiscardHandler), rate: rate.NewLimiter(1, 1), m: m}}
			var notes requestNotes
			if tc.req != nil {
				notes.unsigned.Store(tc.req)
			}
			dst := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
			out, send := s.limitUnsigned(tc.answer, &notes, dst)
			if send != tc.wantSend || len(out) != tc.wantLen {
				t.Fatalf("send=%v len=%d, want send=%v len=%d", send, len(out), tc.wantSend, tc.wantLen)
			}
			drops := counter(m.amplificationDrops)
			if (drops == 1) == tc.wantSend {
				t.Fatalf("amplification drops = %v with send=%v", drops, send)
			}
			if send && len(out) > 0 && out[0] < 0x40 {
				if err := (&stun.Message{Raw: out}).Decode(); err != nil {
					t.Fatalf("answer no longer decodes: %v", err)
				}
			}
		})
	}
}

// sendRaw sends raw bytes to the server over UDP and returns the answer,
// or nil when none came within wait.
func sendRaw(t *testing.T, server string, raw []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}

	return buf[:n]
}

// TestUnsignedAnswersAreBounded sends unsigned requests shaped like real
// clients' first requests, and forged smaller ones, to a running server
// and checks what comes back.
func TestUnsignedAnswersAreBounded(t *testing.T) {
	cfg := testConfig()
	ts := startServer(t, cfg)
	slack := unsignedSlack(cfg.Realm)
	build := func(method stun.Method, attrs ...stun.Setter) []byte {
		return msg(t, append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)...)
	}
	udp := requestedTransport(17)

	for _, tc := range []struct {
		name   string
		req    []byte
		answer bool
	}{
		{"Chromium Allocate", build(stun.MethodAllocate, udp), true},
		{"turnutils_uclient Allocate", build(stun.MethodAllocate, udp, lifetime(10*time.Minute),
			stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{1, 0, 0, 0}}, stun.Fingerprint), true},
		{"pion Allocate", build(stun.MethodAllocate, udp, stun.Fingerprint), true},
		{"Chromium Binding", build(stun.MethodBinding), true},
		// A forged MESSAGE-INTEGRITY is not a credential: pion answers 400
		// without a nonce, or 438 with a fresh one when the NONCE is bogus.
		// limitUnsigned does not look at these; the bound must hold anyway.
		{"bogus integrity, no nonce", build(stun.MethodAllocate,
			stun.RawAttribute{Type: stun.AttrMessageIntegrity, Value: make([]byte, 20)}), true},
		{"bogus integrity and nonce", build(stun.MethodAllocate, stun.NewNonce("x"),
			stun.RawAttribute{Type: stun.AttrMessageIntegrity, Value: make([]byte, 20)}), true},
		{"forged bare Allocate", build(stun.MethodAllocate), false},
		{"forged bare Refresh", build(stun.MethodRefresh), false},
		{"forged bare CreatePermission", build(stun.MethodCreatePermission), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(ts.metrics.amplificationDrops)
			wait := 2 * time.Second
			if !tc.answer {
				wait = 300 * time.Millisecond
			}
			res := sendRaw(t, ts.udp, tc.req, wait)
			t.Logf("request %d bytes, answer %d bytes", len(tc.req), len(res))
			if !tc.answer {
				if res != nil {
					t.Fatalf("forged %d-byte request got a %d-byte answer", len(tc.req), len(res))
				}
				if counter(ts.metrics.amplificationDrops) != before+1 {
					t.Fatal("drop not counted")
				}

				return
			}
			if res == nil {
				t.Fatal("no answer")
			}
			if len(res) > len(tc.req)+slack {
				t.Fatalf("answer %d bytes > request %d + slack %d", len(res), len(tc.req), slack)
			}
			m := &stun.Message{Raw: res}
			if err := m.Decode(); err != nil {
				t.Fatal(err)
			}
			if m.Contains(stun.AttrSoftware) {
				t.Fatal("answer carries SOFTWARE")
			}
			if m.Type.Method == stun.MethodBinding {
				var xa stun.XORMappedAddress
				if err := xa.GetFrom(m); err != nil {
					t.Fatalf("binding answer without XOR-MAPPED-ADDRESS: %v", err)
				}

				return
			}
			var code stun.ErrorCodeAttribute
			if err := code.GetFrom(m); err != nil || len(code.Reason) != 0 {
				t.Fatalf("want an error without reason phrase, got %v %q (%v)", code.Code, code.Reason, err)
			}
			if code.Code != stun.CodeUnauthorized {
				return // pion's 400/438 to a forged integrity
			}
			if !m.Contains(stun.AttrNonce) || !m.Contains(stun.AttrRealm) {
				t.Fatal("401 without NONCE or REALM")
			}
		})
	}
}

// TestPionClientFirstAllocateSize captures the first Allocate of pion's
// own TURN client on a loopback socket and checks that the server's 401
// for it is within the bound.
func TestPionClientFirstAllocateSize(t *testing.T) {
	fake, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: fake.LocalAddr().String(),
		TURNServerAddr: fake.LocalAddr().String(),
		Username:       "u", Password: "p", Realm: testRealm,
		Conn: conn, LoggerFactory: quietPion(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Allocate() // fails once the client closes
	}()
	buf := make([]byte, 1500)
	_ = fake.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := fake.ReadFrom(buf)
	c.Close()
	_ = conn.Close()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	first := append([]byte(nil), buf[:n]...)
	t.Logf("pion client's first Allocate: %d bytes", n)

	ts := startServer(t, testConfig())
	res := sendRaw(t, ts.udp, first, 2*time.Second)
	if res == nil {
		t.Fatalf("no answer to pion's %d-byte Allocate", n)
	}
	t.Logf("server's 401: %d bytes", len(res))
}

// FuzzStripFingerprint: whatever bytes it gets, stripFingerprint returns
// them unchanged or exactly eight bytes shorter with the length field
// matching, and never panics.
func FuzzStripFingerprint(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 1), Port: 1}, stun.Fingerprint).Raw)
	f.Add([]byte{0x01, 0x01, 0x00, 0x08})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := append([]byte(nil), in...)
		out := stripFingerprint(in)
		if string(in) != string(orig) {
			t.Fatal("input modified")
		}
		if len(out) == len(in) {
			return
		}
		if len(out) != len(in)-fingerprintSize || int(out[2])<<8|int(out[3]) != len(out)-stunHeaderSize {
			t.Fatalf("bad strip: %d -> %d bytes", len(in), len(out))
		}
	})
}
