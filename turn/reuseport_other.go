//go:build !linux

package turn

import "syscall"

// reusePort is nil off Linux: macOS and the BSDs accept SO_REUSEPORT but
// hand every datagram to one socket, and Windows has no equivalent, so
// each UDP address gets a single socket (socketsPerAddress).
func reusePort() func(network, address string, c syscall.RawConn) error { return nil }
