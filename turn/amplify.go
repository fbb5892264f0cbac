package turn

import (
	"encoding/binary"
	"log/slog"
	"net"
)

// A TURN server answers unsigned requests from anyone, and over UDP
// "anyone" is whatever source address the sender wrote, so an answer
// larger than its request makes the server an amplifier for reflection
// attacks. The strict rule (never answer with more bytes than came in)
// would break real clients: their first Allocate carries no credential,
// and Chromium's is 28 bytes while the smallest useful 401 (ERROR-CODE,
// REALM, pion's 25-character NONCE) is 72 bytes with the realm "parley".
// pion mints that nonce inside its request handler, so it cannot be made
// shorter from outside. limitUnsigned therefore enforces the strongest rule
// that keeps real clients working: an answer to a request without
// MESSAGE-INTEGRITY may exceed the request by at most a fixed slack, the
// growth of a 401 over Chromium's 28-byte Allocate. See README.md for the
// measured sizes and the resulting amplification factor.

// Sizes of the pieces of an answer to an unsigned request.
const (
	stunHeaderSize = 20
	// chromiumAllocateSize is the smallest first Allocate of any client
	// measured (Chromium 156: header + REQUESTED-TRANSPORT).
	chromiumAllocateSize = 28
	// unauthorizedFixed is the 401 without REALM: header, ERROR-CODE with
	// no reason phrase (8) and NONCE (4 + pion's at most 25 base36
	// characters, padded to 28).
	unauthorizedFixed = stunHeaderSize + 8 + 4 + 28
	// bindingGrowth is how much a Binding success for an IPv6 client
	// (XOR-MAPPED-ADDRESS, 24 bytes) outgrows a bare 20-byte Binding
	// request, once FINGERPRINT is stripped.
	bindingGrowth = 24
	// fingerprintSize is a FINGERPRINT attribute with its header.
	fingerprintSize = 8
)

// unsignedSlack is how many bytes an answer to an unsigned request may
// exceed the request by: a 401 for the configured realm must fit after
// Chromium's Allocate, and a Binding answer after a bare Binding request.
func unsignedSlack(realm string) int {
	unauthorized := unauthorizedFixed + 4 + (len(realm)+3)&^3

	return max(unauthorized-chromiumAllocateSize, bindingGrowth)
}

// unsignedRequest is the last request without MESSAGE-INTEGRITY read on a
// client socket.
type unsignedRequest struct {
	tx          [12]byte
	size        int
	fingerprint bool
}

// limitUnsigned decides what to send for p, an answer pion writes to a
// client. Anything other than a STUN response to the last unsigned request
// read on this socket passes unchanged. Such a response loses a trailing
// FINGERPRINT the request did not carry (RFC 8489 makes it optional), and
// is dropped (send false) if it is still larger than the request plus the
// slack.
func (r *replies) limitUnsigned(p []byte, notes *requestNotes, dst net.Addr) (out []byte, send bool) {
	// Responses have class bit C1 set; ChannelData, indications and
	// requests are passed at once (this runs for every relayed packet).
	if len(p) < stunHeaderSize || p[0]&0xc0 != 0 || p[0]&0x01 == 0 {
		return p, true
	}
	u := notes.unsigned.Load()
	if u == nil || string(p[8:20]) != string(u.tx[:]) {
		return p, true // answers a signed request (or one not seen whole)
	}
	notes.unsigned.CompareAndSwap(u, nil)
	out = p
	if !u.fingerprint {
		out = stripFingerprint(p)
	}
	if len(out) <= u.size+r.slack {
		return out, true
	}
	r.metrics.amplificationDrops.Inc()
	r.logRefusal("turn: answer to an unsigned request dropped (amplification)",
		slog.Int("request_bytes", u.size), slog.Int("answer_bytes", len(out)),
		slog.String("client", dst.String()))

	return nil, false
}

// stripFingerprint returns a copy of msg without its FINGERPRINT, or msg
// itself when the last attribute is not one.
func stripFingerprint(msg []byte) []byte {
	n := len(msg)
	if n < stunHeaderSize+fingerprintSize || binary.BigEndian.Uint16(msg[n-8:]) != 0x8028 ||
		binary.BigEndian.Uint16(msg[n-6:]) != 4 || int(binary.BigEndian.Uint16(msg[2:4]))+stunHeaderSize != n {
		return msg
	}
	out := append([]byte(nil), msg[:n-fingerprintSize]...)
	binary.BigEndian.PutUint16(out[2:4], uint16(n-fingerprintSize-stunHeaderSize)) //nolint:gosec // n < 64 KiB: it came from a uint16 length.

	return out
}
