package ingest

import (
	"errors"
	"strings"
)

// Parsers for what a WHIP client sends. Each is fuzzed (fuzz_test.go).

// parseBearer extracts the token from an Authorization header value
// ("Bearer <token>", scheme case-insensitive). Tokens are printable
// ASCII without spaces and at most 256 bytes.
func parseBearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > 256 {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return "", false
		}
	}
	return tok, true
}

// parseResourceID accepts what ids.Secret makes: 26 base-32 characters.
func parseResourceID(s string) (string, bool) {
	if len(s) != 26 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return s, true
}

const maxOfferMedia = 4

// checkOffer does the cheap checks before an offer reaches pion: text,
// starts like an SDP, and has one to four audio/video media sections (OBS
// sends one of each). pion parses the rest and rejects what it cannot.
func checkOffer(b []byte) (string, error) {
	s := string(b)
	if !strings.HasPrefix(s, "v=0") {
		return "", errors.New("body is not an SDP offer (must start with v=0)")
	}
	media := 0
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return "", errors.New("SDP contains control characters")
			}
		}
		if rest, ok := strings.CutPrefix(line, "m="); ok {
			media++
			if media > maxOfferMedia {
				return "", errors.New("SDP has more than 4 media sections")
			}
			kind, _, _ := strings.Cut(rest, " ")
			if kind != "audio" && kind != "video" {
				return "", errors.New("SDP media must be audio or video, got " + truncate(kind, 16))
			}
		}
	}
	if media == 0 {
		return "", errors.New("SDP has no media sections")
	}
	return s, nil
}

// answerCarriesMedia reports whether the answer accepted a codec Parley
// forwards (H.264 or Opus) in any media section.
func answerCarriesMedia(sdp string) bool {
	for line := range strings.Lines(sdp) {
		if rest, ok := strings.CutPrefix(line, "a=rtpmap:"); ok {
			l := strings.ToLower(rest)
			if strings.Contains(l, " h264/90000") || strings.Contains(l, " opus/48000") {
				return true
			}
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
