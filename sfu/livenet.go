package sfu

import (
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// interfaceRescan bounds how often the host's interfaces are read again:
// often enough that an address which appeared (a link coming up, an IPv6
// address leaving duplicate address detection) is offered within a
// second, rarely enough that a burst of joins does not turn into a burst
// of netlink dumps.
const interfaceRescan = time.Second

// liveNet is the real network with an interface list that follows the
// host. pion's stdnet reads the interfaces once, when it is made, so an
// address that appeared later would never become a candidate. ICE
// gathering (host candidates for ICE-TCP) and the UDP mux both read
// interfaces through it, so they see the same list.
type liveNet struct {
	transport.Net // sockets and dialing: pion's stdnet

	mu   sync.Mutex
	ifs  []*transport.Interface
	read time.Time
}

func newLiveNet() (*liveNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	ifs, err := n.Interfaces()
	if err != nil {
		return nil, err
	}
	return &liveNet{Net: n, ifs: ifs, read: time.Now()}, nil
}

// Interfaces returns the host's interfaces, read again when the last
// read is older than interfaceRescan. A failed read keeps the last list:
// one that is a second old beats failing every gathering.
func (n *liveNet) Interfaces() ([]*transport.Interface, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if time.Since(n.read) < interfaceRescan {
		return n.ifs, nil
	}
	n.read = time.Now()
	// A fresh stdnet rather than UpdateInterfaces on the shared one:
	// UpdateInterfaces replaces a slice other goroutines may be reading.
	if fresh, err := stdnet.NewNet(); err == nil {
		n.ifs, _ = fresh.Interfaces() // stdnet's Interfaces never fails
	}
	return n.ifs, nil
}

func (n *liveNet) InterfaceByIndex(index int) (*transport.Interface, error) {
	ifs, _ := n.Interfaces()
	for _, ifc := range ifs {
		if ifc.Index == index {
			return ifc, nil
		}
	}
	return nil, transport.ErrInterfaceNotFound
}

func (n *liveNet) InterfaceByName(name string) (*transport.Interface, error) {
	ifs, _ := n.Interfaces()
	for _, ifc := range ifs {
		if ifc.Name == name {
			return ifc, nil
		}
	}
	return nil, transport.ErrInterfaceNotFound
}
