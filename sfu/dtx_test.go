package sfu

import (
	"strings"
	"testing"
)

func TestWithOpusDTX(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"adds to the Opus fmtp, nothing else",
			"m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
			"m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n"},
		{"keeps a usedtx already there",
			"a=rtpmap:111 opus/48000/2\na=fmtp:111 usedtx=0\n",
			"a=rtpmap:111 opus/48000/2\na=fmtp:111 usedtx=0\n"},
		{"adds a missing fmtp line",
			"a=rtpmap:109 OPUS/48000/2\r\na=rtcp-fb:109 nack\r\n",
			"a=rtpmap:109 OPUS/48000/2\r\na=fmtp:109 usedtx=1\r\na=rtcp-fb:109 nack\r\n"},
		{"leaves video alone",
			"a=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fs=12288\r\n",
			"a=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fs=12288\r\n"},
	} {
		if got := withOpusDTX(tc.in); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func FuzzWithOpusDTX(f *testing.F) {
	f.Add("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n")
	f.Add("a=rtpmap:111 opus/48000/2\na=rtpmap:112 opus/48000/2\na=fmtp:112\n")
	f.Fuzz(func(t *testing.T, sdp string) {
		out := withOpusDTX(sdp)
		// Only adds: every line of the input is still there, in order.
		if !strings.Contains(strings.ToLower(sdp), "opus") && out != sdp {
			t.Fatalf("changed an SDP without Opus: %q -> %q", sdp, out)
		}
		if len(out) < len(sdp) {
			t.Fatalf("shorter: %q -> %q", sdp, out)
		}
	})
}
