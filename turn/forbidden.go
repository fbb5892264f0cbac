package turn

import (
	"encoding/binary"
	"net/netip"

	"github.com/pion/stun/v4"
)

// A peer the server will not relay to is answered 403 Forbidden (RFC 8656
// section 9): coturn does so for CreatePermission and ChannelBind alike,
// and so does pion for CreatePermission. pion v5 differs twice, and the
// client socket wrappers correct both answers on their way out:
//
//   - a ChannelBind refused by the permission handler gets 401
//     Unauthorized, which tells the client its credentials are wrong (a
//     client may then drop them or retry forever). pion's other 401s, the
//     authentication challenges, carry REALM and NONCE; this one carries
//     neither, which is how it is recognised.
//   - an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) on an IPv6 allocation gets
//     443 Peer Address Family Mismatch: pion judges the family by the
//     address inside. The relay could not reach it either way (IPv6 relay
//     sockets are IPv6-only), so it is forbidden, not mismatched. The
//     request's notes say whether it named such a peer.
//
// The 403 is signed with the requester's key when the server knows it,
// as pion signs its own 403.

// stunMagicCookie is RFC 8489's fixed header value, the XOR key of the
// address attributes' first 32 bits.
const stunMagicCookie = 0x2112A442

// rewriteForbidden returns a 403 replacing m when m is one of pion's two
// answers above; otherwise nil.
func (r *replies) rewriteForbidden(m *stun.Message, code stun.ErrorCode, notes *requestNotes) []byte {
	method := m.Type.Method
	sr := notes.signed.Load()
	if sr != nil && sr.tx != m.TransactionID {
		sr = nil
	}
	switch {
	case code == stun.CodeUnauthorized && method == stun.MethodChannelBind && !m.Contains(stun.AttrRealm):
		// permitPeer counted the denial already.
	case code == stun.CodePeerAddrFamilyMismatch && sr != nil && sr.mappedPeer &&
		(method == stun.MethodChannelBind || method == stun.MethodCreatePermission):
		// pion refused before asking permitPeer.
		r.metrics.peerDenials.WithLabelValues(DenyReasonMappedOnIPv6).Inc()
	default:
		return nil
	}
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(method, stun.ClassErrorResponse),
		stun.CodeForbidden,
	}
	if sr != nil && sr.username != "" {
		if key, ok := r.auth.keyOf(sr.username); ok {
			setters = append(setters, stun.MessageIntegrity(key))
		}
	}
	setters = append(setters, stun.Fingerprint)
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}

	return out.Raw
}

// namesMappedPeer reports whether a request carries an XOR-PEER-ADDRESS of
// the IPv6 family holding an IPv4-mapped address.
func namesMappedPeer(m *stun.Message) bool {
	for _, a := range m.Attributes {
		if a.Type != stun.AttrXORPeerAddress || len(a.Value) != 20 || a.Value[1] != 0x02 {
			continue
		}
		// The address is XORed with the magic cookie and transaction id.
		var ip [16]byte
		binary.BigEndian.PutUint32(ip[:4], stunMagicCookie)
		copy(ip[4:], m.TransactionID[:])
		for i := range ip {
			ip[i] ^= a.Value[4+i]
		}
		if netip.AddrFrom16(ip).Is4In6() {
			return true
		}
	}

	return false
}
