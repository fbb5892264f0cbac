package proto

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestWebReactionsMatch keeps the web client's picker (reactions.js) to
// the emoji the server accepts, in the same order.
func TestWebReactionsMatch(t *testing.T) {
	src, err := os.ReadFile("../../web/static/reactions.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`export const REACTIONS = \[([^\]]*)\]`).FindSubmatch(src)
	if m == nil {
		t.Fatal("REACTIONS not found in reactions.js")
	}
	var web []string
	for _, q := range strings.Split(string(m[1]), ",") {
		web = append(web, strings.Trim(strings.TrimSpace(q), "'"))
	}
	if !slices.Equal(web, Reactions()) {
		t.Fatalf("reactions.js offers %q, the server accepts %q", web, Reactions())
	}
}

func TestDecodeHandRequests(t *testing.T) {
	tests := []struct {
		in       string
		wantCode string // "" means valid
	}{
		{`{"type":"hand","data":{"raised":true}}`, ""},
		{`{"type":"hand","data":{"raised":false}}`, ""},
		{`{"type":"hand","data":{}}`, CodeBadRequest},
		{`{"type":"hand","data":{"raised":"yes"}}`, CodeBadRequest},
		{`{"type":"hand"}`, CodeBadRequest},
		{`{"type":"mod_lower_hand","data":{"identity":"bob"}}`, ""},
		{`{"type":"mod_lower_hand","data":{"identity":""}}`, CodeBadRequest},
		{`{"type":"ask_unmute"}`, ""},
		{`{"type":"reaction","data":{"emoji":"❤️"}}`, ""},
		{`{"type":"reaction","data":{"emoji":"❤"}}`, CodeBadRequest}, // without the variation selector
		{`{"type":"reaction","data":{"emoji":"hello"}}`, CodeBadRequest},
		{`{"type":"reaction","data":{"emoji":1}}`, CodeBadRequest},
	}
	for _, tc := range tests {
		req, perr := DecodeRequest([]byte(tc.in))
		switch {
		case tc.wantCode == "" && perr != nil:
			t.Errorf("%s: %v", tc.in, perr)
		case tc.wantCode != "" && (perr == nil || perr.Code != tc.wantCode || req.Body != nil):
			t.Errorf("%s: got %v, want %s", tc.in, perr, tc.wantCode)
		}
	}
}

// FuzzDecodeHandRequest checks what an accepted hand or reaction body
// guarantees the handlers.
func FuzzDecodeHandRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"hand","data":{"raised":true}}`,
		`{"type":"mod_lower_hand","data":{"identity":"bob"}}`,
		`{"type":"ask_unmute"}`,
		`{"type":"reaction","data":{"emoji":"👍"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, perr := DecodeRequest(in)
		if perr != nil {
			return
		}
		switch b := req.Body.(type) {
		case *HandBody:
			if b.Raised == nil {
				t.Fatal("accepted hand without raised")
			}
		case *ReactionBody:
			if !slices.Contains(Reactions(), b.Emoji) {
				t.Fatalf("accepted emoji %q", b.Emoji)
			}
		}
	})
}
