package sfu

import (
	"fmt"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// NewIngressPeerConnection returns a receive-side PeerConnection built
// like a participant's publisher connection (same codecs, NACK generator,
// receiver reports, TWCC feedback) on the SFU's own ICE listeners, so an
// in-process ingest (WHIP) is reached on the same UDP/TCP ports as every
// call. The caller owns it: it applies the remote offer, forwards the
// tracks it receives with PublishLocal, and closes it.
func (s *SFU) NewIngressPeerConnection() (*webrtc.PeerConnection, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	api, err := s.newPublisherAPI(func([]rtcp.Packet) {}, nil)
	if err != nil {
		return nil, fmt.Errorf("sfu: ingress connection: %w", err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: ingress connection: %w", err)
	}
	return pc, nil
}
