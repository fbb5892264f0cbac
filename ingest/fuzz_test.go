package ingest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/ids"
)

// Fuzz targets for everything a publisher or an admin client sends that
// ingest parses itself (pion parses the SDP after checkOffer).

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer sk_abc", "bearer  x ", "Basic abc", "Bearer", "Bearer a b", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := parseBearer(h)
		if !ok {
			return
		}
		if tok == "" || len(tok) > 256 || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("accepted token %q from %q", tok, h)
		}
		if !strings.Contains(h, tok) {
			t.Fatalf("token %q not in header %q", tok, h)
		}
	})
}

func FuzzParseResourceID(f *testing.F) {
	f.Add(ids.Secret())
	f.Add("../../etc/passwd")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseResourceID(s)
		if ok && (id != s || len(id) != 26 || strings.ContainsAny(id, "/.%")) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"))
	f.Add([]byte("v=0\nm=application 9 x\n"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := checkOffer(b)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "v=0") || s != string(b) {
			t.Fatal("accepted offer changed or not an SDP")
		}
		n := strings.Count("\n"+s, "\nm=")
		if n < 1 || n > maxOfferMedia {
			t.Fatalf("accepted %d media sections", n)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			t.Fatal("accepted a NUL byte")
		}
	})
}

func FuzzDecodeKeyRequest(f *testing.F) {
	f.Add([]byte(`{"room":"r","name":"n"}`))
	f.Add([]byte(`{"room":"r","name":"n","identity":"i"}`))
	f.Add([]byte(`{"room":1}`))
	f.Add([]byte(`{} []`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeKeyRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		n, err := normalizeKeyRequest(r)
		if err != nil {
			return
		}
		if n.Room == "" || n.Name == "" || n.Identity == "" || len(n.Room) > maxRoomLen || len(n.Identity) > maxIdentityLen {
			t.Fatalf("normalized request %+v", n)
		}
		if strings.ContainsFunc(n.Room+n.Name+n.Identity, isControl) {
			t.Fatalf("control characters accepted: %+v", n)
		}
	})
}
