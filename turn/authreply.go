package turn

import (
	"encoding/binary"
	"net"
	"sync/atomic"

	"github.com/pion/stun/v4"
)

// pion v5 answers a refused credential (unknown or expired user, wrong
// HMAC) with 400 Bad Request. RFC 8489 section 9.2.4 says 401 Unauthorized
// with REALM and NONCE, which is what clients such as coturn's and
// browsers expect. The server notes each refusal per client address; the
// client socket wrapper then turns the 400 that pion sends to that address
// into a 401, reusing the nonce of the client's last signed request.

// signedRequest remembers the transaction and nonce of the last signed
// request read on one client socket.
type signedRequest struct {
	tx       [stun.TransactionIDSize]byte
	nonce    []byte
	username string
	// mappedPeer: a CreatePermission or ChannelBind that names an
	// IPv4-mapped IPv6 peer (forbidden.go).
	mappedPeer bool
}

// requestNotes is what a client socket remembers of the requests it read,
// for the answers pion writes back through it.
type requestNotes struct {
	signed   atomic.Pointer[signedRequest]
	unsigned atomic.Pointer[unsignedRequest]
}

// noteRequest looks at a client's STUN request before pion handles it: it
// remembers the size of an unsigned request (for limitUnsigned), the nonce
// of a signed request (for rewriteRefusal) and notes a Refresh with
// LIFETIME 0 (a release, for the deletion reason metric).
func (r *replies) noteRequest(notes *requestNotes, p []byte, src net.Addr) {
	if len(p) < 20 || p[0]&0xc0 != 0 || p[0]&0x01 != 0 || p[1]&0x10 != 0 {
		return // not a STUN request (class bits C1 and C0 both zero)
	}
	m := &stun.Message{Raw: p}
	if m.Decode() != nil {
		return
	}
	if !m.Contains(stun.AttrMessageIntegrity) {
		notes.unsigned.Store(&unsignedRequest{
			tx: m.TransactionID, size: len(p), fingerprint: m.Contains(stun.AttrFingerprint),
		})

		return
	}
	nonce, err := m.Get(stun.AttrNonce)
	if err != nil {
		return
	}
	sr := &signedRequest{tx: m.TransactionID, nonce: append([]byte(nil), nonce...)}
	if u, err := m.Get(stun.AttrUsername); err == nil {
		sr.username = string(u)
	}
	if m.Type.Method == stun.MethodCreatePermission || m.Type.Method == stun.MethodChannelBind {
		sr.mappedPeer = namesMappedPeer(m)
	}
	notes.signed.Store(sr)
	if m.Type.Method == stun.MethodRefresh {
		if lt, err := m.Get(stun.AttrLifetime); err == nil && len(lt) == 4 && binary.BigEndian.Uint32(lt) == 0 {
			r.releases.note(src)
		}
	}
}

// rewriteError returns what to send instead of p, an error response pion
// writes to dst, or nil to send p unchanged: a 401 for pion's 400 to a
// refused credential (below), a 403 for pion's answers to forbidden peers
// (forbidden.go).
func (r *replies) rewriteError(p []byte, dst net.Addr, notes *requestNotes) []byte {
	if len(p) < 20 || p[0]&0xc0 != 0 || p[0]&0x01 == 0 || p[1]&0x10 == 0 {
		return nil // not a STUN error response: the common case, decided from two bytes
	}
	m := &stun.Message{Raw: p}
	if m.Decode() != nil {
		return nil
	}
	var code stun.ErrorCodeAttribute
	if code.GetFrom(m) != nil {
		return nil
	}
	if r := r.rewriteRefusal(m, code.Code, dst, notes); r != nil {
		return r
	}

	return r.rewriteForbidden(m, code.Code, notes)
}

// rewriteRefusal returns a 401 replacing m when m is pion's 400 answer to
// a request whose credential the server refused; otherwise nil.
func (r *replies) rewriteRefusal(m *stun.Message, code stun.ErrorCode, dst net.Addr, notes *requestNotes) []byte {
	if r.refusals.n.Load() == 0 || code != stun.CodeBadRequest || !r.refusals.take(dst) {
		return nil
	}
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		stun.CodeUnauthorized,
		stun.NewRealm(r.realm),
	}
	if sr := notes.signed.Load(); sr != nil && sr.tx == m.TransactionID {
		setters = append(setters, stun.Nonce(sr.nonce))
	}
	setters = append(setters, stun.Fingerprint)
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}

	return out.Raw
}
