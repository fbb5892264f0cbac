package turn

import (
	"net/netip"

	"github.com/parleyhq/parley/internal/netpolicy"
)

// Peer denial reasons, used as the "reason" label of
// parley_turn_peer_denials_total.
const (
	DenyReasonSpecialPurpose = netpolicy.DenyReasonSpecialPurpose
	DenyReasonOperator       = netpolicy.DenyReasonOperator
	DenyReasonInvalid        = netpolicy.DenyReasonInvalid
	// DenyReasonMappedOnIPv6 is an IPv4-mapped IPv6 peer named on an
	// IPv6 allocation (forbidden.go); the policy never sees it.
	DenyReasonMappedOnIPv6 = "ipv4_mapped_on_ipv6"
)

// PeerPolicy decides which peer addresses a relay may exchange data with
// (internal/netpolicy: the operator's deny list, then the allow list,
// then the built-in special-purpose ranges).
type PeerPolicy = netpolicy.Policy

// NewPeerPolicy builds the policy of turn.allowed_peer_cidrs and
// turn.denied_peer_cidrs.
func NewPeerPolicy(allowed, denied []string) (*PeerPolicy, error) {
	return netpolicy.New(allowed, denied)
}

func parseCIDRs(list []string) ([]netip.Prefix, error) { return netpolicy.ParseCIDRs(list) }
