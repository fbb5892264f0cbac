package oggopus

// crcTable is Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, zero
// initial value and no final XOR), which hash/crc32 does not offer.
func crcTable() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}

func crcUpdate(t *[256]uint32, crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ t[byte(crc>>24)^c]
	}
	return crc
}
