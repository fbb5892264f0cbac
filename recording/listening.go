package recording

import (
	"os"
	"strconv"
	"strings"
)

// listening reports whether some process listens on every one of ports
// on 127.0.0.1 over UDP, from Linux's socket table (/proc/net/udp). Where
// that table cannot be read (another system) it reports true: the caller
// then goes ahead without knowing.
func listening(ports []int) bool {
	table, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return true
	}
	return udpTableHas(string(table), ports)
}

// udpTableHas reports whether the /proc/net/udp table lists a socket
// bound to 127.0.0.1 (or to every address) on each of ports.
func udpTableHas(table string, ports []int) bool {
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
	}
	lines := strings.Split(table, "\n")
	for _, line := range lines[min(1, len(lines)):] { // the first line names the columns
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// local_address is the address's hex (in the kernel's byte
		// order: 0100007F is 127.0.0.1), a colon, the port's hex.
		ip, port, ok := strings.Cut(f[1], ":")
		if !ok || (ip != "0100007F" && ip != "00000000") {
			continue
		}
		if n, err := strconv.ParseInt(port, 16, 32); err == nil {
			delete(want, int(n))
		}
	}
	return len(want) == 0
}
