// Package rawudp sends UDP datagrams on a host socket straight to the
// kernel, without Go's poller or its syscall bookkeeping.
//
// Why: a media server sends one datagram per packet per receiver, tens of
// thousands a second. Through net.UDPConn each send enters the runtime's
// syscall state (entersyscall/exitsyscall), which keeps the runtime's
// sysmon thread polling every 20 µs to retake Ps from "blocked" syscalls.
// A non-blocking sendto made with RawSyscall costs the kernel's work only.
// SendTo reports a full socket buffer (EAGAIN) to its caller (TURN's data
// plane drops the datagram then); Conn waits for room on Go's poller, as
// net.UDPConn would. The TURN data plane measured the difference first
// (docs/benchmarks.md).
//
// Cork and Uncork batch the datagrams written in between into one
// sendmmsg, with runs to one destination segmented by the kernel (UDP
// GSO); see batch.go.
//
// SendTo is the primitive (Linux); Conn wraps a *net.UDPConn so that
// reads keep Go's poller and writes take the raw path. Elsewhere Conn
// writes through the net.UDPConn.
package rawudp
