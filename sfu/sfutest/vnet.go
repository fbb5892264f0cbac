package sfutest

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/logging"
)

// SFUIP is the SFU's address on a VNet; clients get the addresses after
// 10.9.0.10.
const SFUIP = "10.9.0.1"

// VNet is a pion virtual network (10.9.0.0/24) for one test: media
// without host sockets, so tests can run inside synctest. Its router is
// started, and stopped when the test ends; create it before the SFU so
// that the SFU stops first.
type VNet struct {
	Router *vnet.Router
	// SFU is the host at SFUIP, for sfu.Deps.Net.
	SFU *vnet.Net

	t    testing.TB
	next atomic.Int32
}

// NewVNet makes the network and the SFU's host. log receives the
// router's logs (nil: discarded).
func NewVNet(t testing.TB, log *slog.Logger) *VNet {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.9.0.0/24", LoggerFactory: logging.PionFactory(log)})
	if err != nil {
		t.Fatal(err)
	}
	v := &VNet{Router: router, t: t}
	v.next.Store(10)
	v.SFU, _ = v.host(SFUIP)
	// Clients are added after Start; vnet allows that.
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Stop() })
	return v
}

// newHostWith adds a client's host at the next free address, whose
// incoming packets are queued in downlink (nil: none).
func (v *VNet) newHostWith(downlink vnet.Discipline) (*vnet.Net, string) {
	return v.hostWith("10.9.0."+strconv.Itoa(int(v.next.Add(1))), downlink)
}

func (v *VNet) host(ip string) (*vnet.Net, string) { return v.hostWith(ip, nil) }

func (v *VNet) hostWith(ip string, downlink vnet.Discipline) (*vnet.Net, string) {
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		v.t.Fatal(err)
	}
	var nic vnet.NIC = n
	if downlink != nil {
		q, err := vnet.NewQueue(n, downlink)
		if err != nil {
			v.t.Fatal(err)
		}
		// Its goroutine ends before the test does (synctest waits for it).
		v.t.Cleanup(func() { _ = q.Close() })
		nic = q
	}
	if err := v.Router.AddNet(nic); err != nil {
		v.t.Fatal(err)
	}
	return n, ip
}
