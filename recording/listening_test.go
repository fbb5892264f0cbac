package recording

import (
	"net"
	"testing"
)

func TestUDPTableHas(t *testing.T) {
	table := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		"  1: 0100007F:5DC0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n" +
		"  2: 00000000:5DC2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n" +
		"  3: 0200000A:5DC4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n"
	for _, tc := range []struct {
		ports []int
		want  bool
	}{
		{[]int{24000}, true},
		{[]int{24000, 24002}, true},  // 0.0.0.0 listens on 127.0.0.1 too
		{[]int{24000, 24004}, false}, // 10.0.0.2 only
		{[]int{24006}, false},        // nobody
		{nil, true},
	} {
		if got := udpTableHas(table, tc.ports); got != tc.want {
			t.Errorf("ports %v: %v, want %v", tc.ports, got, tc.want)
		}
	}
}

// TestListening: a socket this process binds is seen in the system's
// table, and one it closed is not.
func TestListening(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if !listening([]int{port}) {
		t.Errorf("port %d is bound but not seen", port)
	}
	_ = c.Close()
	if listening([]int{port}) {
		t.Errorf("port %d is closed but still seen", port)
	}
}
