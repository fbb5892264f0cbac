package sfu_test

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
)

// These tests use real sockets on 127.0.0.1, so they run outside
// synctest (goroutines blocked in the kernel are not durably blocked and
// the fake clock would stall). They check what vnet cannot: the real UDP
// mux with interface/CIDR filters and loopback candidates, and ICE-TCP.

func TestLoopbackUDP(t *testing.T) {
	cfg := sfu.DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = 0
	loopbackCall(t, cfg, nil)
}

func TestLoopbackICETCP(t *testing.T) {
	cfg := sfu.DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = testkit.FreeTCPPort(t)
	// Clients that cannot use UDP at all must still connect.
	loopbackCall(t, cfg, []webrtc.NetworkType{webrtc.NetworkTypeTCP4})
}

func loopbackCall(t *testing.T, cfg sfu.Config, clientNetworks []webrtc.NetworkType) {
	env := newLoopbackEnv(t, cfg)
	env.clientNetworks = clientNetworks
	ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
	ada.Publish()
	bob := env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
	testkit.Eventually(t, 10*time.Second, "bob receives media over loopback", func() bool {
		for _, rt := range bob.RemoteTracks() {
			if rt.Count >= 20 {
				return true
			}
		}
		return false
	})
	pair, err := selectedPair(bob.Sub)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Local.Address != "127.0.0.1" || pair.Remote.Address != "127.0.0.1" {
		t.Fatalf("selected pair %s", pair)
	}
	if clientNetworks != nil && pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("want ICE-TCP, selected %s", pair)
	}
	if clientNetworks == nil && pair.Remote.Port != uint16(cfg.UDPPort) {
		t.Fatalf("SFU side of the pair is not the shared UDP port %d: %s", cfg.UDPPort, pair)
	}
}

func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	return pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
}
