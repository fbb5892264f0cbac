package sfu

import (
	"strings"
)

// Opus DTX (RFC 7587 "usedtx"): a browser's Opus encoder sends almost
// nothing while its microphone hears silence, when the description it
// received from the other side asks for it. For a publisher that is the
// SFU's answer, and pion answers with the offer's own Opus parameters
// (a browser's offer has no usedtx), so the answer sent to the client
// gets it added. Only the copy sent out changes: pion checks that its
// local description is the answer it made, and what the SFU receives
// does not depend on the parameter (a silent stretch is a gap in
// timestamps, which the receive paths treat as a pause).

// withOpusDTX returns sdp with usedtx=1 on every Opus payload type's
// fmtp line (adding the line where an Opus payload type has none); a
// usedtx the SDP already sets is left as it is.
func withOpusDTX(sdp string) string {
	eol := "\r\n"
	if !strings.Contains(sdp, eol) {
		eol = "\n"
	}
	lines := strings.Split(sdp, eol)
	opus := map[string]bool{}
	hasFmtp := map[string]bool{}
	for _, l := range lines {
		if pt, rest, ok := attribute(l, "a=rtpmap:"); ok && strings.HasPrefix(strings.ToLower(rest), "opus/") {
			opus[pt] = true
		}
	}
	if len(opus) == 0 {
		return sdp
	}
	out := make([]string, 0, len(lines)+len(opus))
	for _, l := range lines {
		if pt, params, ok := attribute(l, "a=fmtp:"); ok && opus[pt] {
			hasFmtp[pt] = true
			if !strings.Contains(params, "usedtx=") {
				if params == "" {
					l += "usedtx=1"
				} else {
					l += ";usedtx=1"
				}
			}
		}
		out = append(out, l)
	}
	// An Opus payload type without an fmtp line gets one after its rtpmap.
	if len(hasFmtp) < len(opus) {
		withNew := make([]string, 0, len(out)+len(opus))
		for _, l := range out {
			withNew = append(withNew, l)
			if pt, _, ok := attribute(l, "a=rtpmap:"); ok && opus[pt] && !hasFmtp[pt] {
				withNew = append(withNew, "a=fmtp:"+pt+" usedtx=1")
			}
		}
		out = withNew
	}
	return strings.Join(out, eol)
}

// attribute splits "a=rtpmap:111 opus/48000/2" into its payload type
// ("111") and the rest.
func attribute(line, prefix string) (pt, rest string, ok bool) {
	v, found := strings.CutPrefix(line, prefix)
	if !found {
		return "", "", false
	}
	pt, rest, _ = strings.Cut(v, " ")
	return pt, rest, pt != ""
}
