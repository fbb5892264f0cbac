package rtmp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

func nal(typ byte, size int) []byte {
	b := make([]byte, size)
	b[0] = 0x60 | typ
	for i := 1; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// depacketize reassembles NAL units from RTP payloads (the receiver's view).
func depacketize(t *testing.T, pkts []*rtp.Packet) [][]byte {
	t.Helper()
	var out [][]byte
	var fu []byte
	for _, p := range pkts {
		pl := p.Payload
		switch pl[0] & 0x1f {
		case naluSTAPA:
			for b := pl[1:]; len(b) > 0; {
				n := int(binary.BigEndian.Uint16(b))
				out = append(out, b[2:2+n])
				b = b[2+n:]
			}
		case naluFUA:
			if pl[1]&0x80 != 0 {
				fu = []byte{pl[0]&0xe0 | pl[1]&0x1f}
			}
			fu = append(fu, pl[2:]...)
			if pl[1]&0x40 != 0 {
				out = append(out, fu)
				fu = nil
			}
		default:
			out = append(out, pl)
		}
	}
	return out
}

func TestH264Packetize(t *testing.T) {
	const mtu = 100
	cases := []struct {
		name      string
		nalus     [][]byte
		wantKinds []string // per packet: "single", "stap", "fu-s", "fu", "fu-e"
	}{
		{"single small NAL", [][]byte{nal(1, 50)}, []string{"single"}},
		{"exactly MTU is single", [][]byte{nal(1, mtu)}, []string{"single"}},
		{"MTU+1 becomes two FU-A", [][]byte{nal(1, mtu+1)}, []string{"fu-s", "fu-e"}},
		// body 2*98 bytes = two full fragments exactly
		{"exact fragment multiple", [][]byte{nal(5, 1+2*(mtu-2))}, []string{"fu-s", "fu-e"}},
		{"three fragments", [][]byte{nal(5, 1+2*(mtu-2)+1)}, []string{"fu-s", "fu", "fu-e"}},
		{"SPS+PPS aggregated before IDR", [][]byte{nal(7, 20), nal(8, 5), nal(5, 60)}, []string{"stap", "single"}},
		{"SPS+PPS+SEI aggregated", [][]byte{nal(7, 20), nal(8, 5), nal(6, 10), nal(5, 300)}, []string{"stap", "fu-s", "fu", "fu", "fu-e"}},
		{"lone SPS is not aggregated", [][]byte{nal(7, 20), nal(5, 60)}, []string{"single", "single"}},
		{"parameter sets too big for one STAP-A", [][]byte{nal(7, 60), nal(8, 60)}, []string{"single", "single"}},
		{"STAP-A exactly MTU", [][]byte{nal(7, 48), nal(8, 47)}, []string{"stap"}},
		{"STAP-A one over MTU splits", [][]byte{nal(7, 48), nal(8, 48)}, []string{"single", "single"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &h264Packetizer{mtu: mtu, pt: 96, ssrc: 7, seq: 65534}
			pkts := p.packetize(c.nalus, 1234)
			if len(pkts) != len(c.wantKinds) {
				t.Fatalf("%d packets, want %d", len(pkts), len(c.wantKinds))
			}
			for i, pk := range pkts {
				if len(pk.Payload) > mtu {
					t.Errorf("packet %d payload %d > MTU", i, len(pk.Payload))
				}
				if pk.Timestamp != 1234 || pk.SSRC != 7 || pk.PayloadType != 96 {
					t.Errorf("packet %d header %+v", i, pk.Header)
				}
				if want := uint16(65534 + i); pk.SequenceNumber != want {
					t.Errorf("packet %d seq %d want %d (wrap)", i, pk.SequenceNumber, want)
				}
				if pk.Marker != (i == len(pkts)-1) {
					t.Errorf("packet %d marker %v", i, pk.Marker)
				}
				kind := "single"
				switch pk.Payload[0] & 0x1f {
				case naluSTAPA:
					kind = "stap"
				case naluFUA:
					kind = "fu"
					if pk.Payload[1]&0x80 != 0 {
						kind = "fu-s"
					}
					if pk.Payload[1]&0x40 != 0 {
						kind = "fu-e"
					}
				}
				if kind != c.wantKinds[i] {
					t.Errorf("packet %d is %s, want %s", i, kind, c.wantKinds[i])
				}
			}
			got := depacketize(t, pkts)
			if len(got) != len(c.nalus) {
				t.Fatalf("reassembled %d NALUs, want %d", len(got), len(c.nalus))
			}
			for i := range got {
				if !bytes.Equal(got[i], c.nalus[i]) {
					t.Errorf("NALU %d differs after round trip", i)
				}
			}
		})
	}
}

func TestPacketizeCopiesInput(t *testing.T) {
	in := nal(1, 10)
	p := &h264Packetizer{mtu: 1200}
	pkts := p.packetize([][]byte{in}, 0)
	in[1] = 0xee
	if pkts[0].Payload[1] == 0xee {
		t.Fatal("packet aliases the input buffer, which go-rtmp reuses")
	}
}

func TestRTMPClock(t *testing.T) {
	cases := []struct {
		name   string
		offset uint32
		ts     []uint32
		want   []uint32 // RTP timestamps
	}{
		{"30 fps", 1000, []uint32{0, 33, 67, 100}, []uint32{1000, 1000 + 2970, 1000 + 6030, 1000 + 9000}},
		{"starts late", 0, []uint32{5000, 5033}, []uint32{0, 2970}},
		{"RTP wraps", 0xffffff00, []uint32{0, 10}, []uint32{0xffffff00, 900 - 0x100}},
		{"RTMP 32-bit ms wraps", 0, []uint32{0xfffffff0, 0x00000010}, []uint32{0, 32 * 90}},
		{"past 2^24 ms (extended timestamps)", 5, []uint32{0xfffff0, 0x1000010}, []uint32{5, 5 + 32*90}},
		{"small step back is not a wrap", 0, []uint32{1000, 990}, []uint32{0, uint32(0xffffffff - 900 + 1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newRTMPClock(90000, c.offset)
			for i, ts := range c.ts {
				if got := clk.rtp(clk.unwrap(ts)); got != c.want[i] {
					t.Errorf("ts %d -> %d, want %d", ts, got, c.want[i])
				}
			}
		})
	}
	// Composition offsets map to PTS on the same clock.
	clk := newRTMPClock(90000, 0)
	ms := clk.unwrap(100)
	if got := clk.rtp(ms + 66); got != 66*90 {
		t.Errorf("cts 66 -> %d", got)
	}
	// A long stream: the mapping stays exact after 2^32 ms / 90.
	clk = newRTMPClock(90000, 0)
	var last uint32
	for ts := uint64(0); ts < 1<<33; ts += 1 << 28 {
		last = clk.rtp(clk.unwrap(uint32(ts)))
	}
	if want := uint32(((1<<33 - 1<<28) * 90) & 0xffffffff); last != want {
		t.Errorf("after 2^33 ms: %d, want %d", last, want)
	}
}
