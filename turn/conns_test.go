package turn

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// stream builds a TURN-over-TCP byte stream: a signed request, a padded
// ChannelData frame, another request.
func stream(t testing.TB) (data []byte, msgs [][]byte) {
	m1 := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("a"))
	m2 := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint)
	cd := []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0} // 5 bytes + 3 padding
	data = append(append(append(data, m1.Raw...), cd...), m2.Raw...)

	return data, [][]byte{m1.Raw, m2.Raw}
}

func TestStunFramerSplitsStream(t *testing.T) {
	data, want := stream(t)
	for chunk := 1; chunk <= len(data); chunk++ {
		var got [][]byte
		f := &stunFramer{learn: func(b []byte) { got = append(got, append([]byte(nil), b...)) }}
		for i := 0; i < len(data); i += chunk {
			f.feed(data[i:min(i+chunk, len(data))])
		}
		if len(got) != len(want) || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
			t.Fatalf("chunk %d: got %d messages", chunk, len(got))
		}
	}
	// Raw relayed data after a ConnectionBind turns the framer off.
	f := &stunFramer{learn: func([]byte) { t.Fatal("learned from raw data") }}
	f.feed([]byte("xyz: not TURN framing"))
	if !f.off {
		t.Fatal("framer still on after non-TURN bytes")
	}
}

// FuzzStunFramer feeds arbitrary client bytes in arbitrary chunks: no
// panic, bounded buffer, and only well-formed STUN frames reach learn.
func FuzzStunFramer(f *testing.F) {
	data, _ := stream(f)
	f.Add(data, uint8(7))
	f.Add([]byte{0x00, 0x01, 0xff, 0xff}, uint8(1))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1}, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		c := int(chunk%64) + 1
		fr := &stunFramer{learn: func(m []byte) {
			if len(m) < 20 || len(m) > maxLearnFrame || binary.BigEndian.Uint32(m[4:8]) != 0x2112A442 ||
				int(binary.BigEndian.Uint16(m[2:4]))+20 != len(m) {
				t.Fatalf("bad frame passed on: % x", m)
			}
		}}
		for i := 0; i < len(b); i += c {
			fr.feed(b[i:min(i+c, len(b))])
			if len(fr.buf) > maxLearnFrame {
				t.Fatalf("buffer grew to %d", len(fr.buf))
			}
		}
	})
}

// TestUnauthenticatedFloodKeepsNoState sends many Allocate requests that
// carry no or forged credentials: every one is answered, and neither pion
// (stateless nonces) nor our caches keep anything per request.
func TestUnauthenticatedFloodKeepsNoState(t *testing.T) {
	cfg := testConfig()
	cfg.SharedSecrets = []string{testSecret, testSecret2} // exercise the rotation cache
	ts := startServer(t, cfg)
	c, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 2000
	buf := make([]byte, 1500)
	answered := 0
	for i := range n {
		var req *stun.Message
		if i%2 == 0 {
			req = stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
				requestedTransport(17), stun.Fingerprint)
		} else {
			u, _ := RESTCredentials(testSecret, "flood", time.Hour, time.Now())
			req = stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
				requestedTransport(17), stun.NewUsername(u), stun.NewRealm(testRealm), stun.NewNonce("bogus"),
				stun.NewLongTermIntegrity(u, testRealm, "forged"), stun.Fingerprint)
		}
		if _, err := c.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err == nil {
			answered++
		}
	}
	if answered < n*9/10 {
		t.Fatalf("answered %d of %d", answered, n)
	}
	ts.auth.mu.Lock()
	learned := len(ts.auth.learned)
	ts.auth.mu.Unlock()
	ts.quotas.mu.Lock()
	pending := len(ts.quotas.pending)
	ts.quotas.mu.Unlock()
	if learned != 0 || pending != 0 || ts.AllocationCount() != 0 {
		t.Fatalf("state after flood: learned %d pending %d allocations %d", learned, pending, ts.AllocationCount())
	}
}
