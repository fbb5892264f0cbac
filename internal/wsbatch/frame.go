package wsbatch

import "encoding/binary"

// maxFrameHeader is the longest server frame header (no mask).
const maxFrameHeader = 10

// appendTextFrame appends msg as one final, unmasked, uncompressed text
// frame (RFC 6455 section 5.2), which is what gorilla would send for it.
// It relies on Upgrader never negotiating permessage-deflate
// (TestUpgraderNeverCompresses); turning that on needs compressed direct
// frames or no direct writes.
func appendTextFrame(dst, msg []byte) []byte {
	const finText = 0x81
	switch n := len(msg); {
	case n < 126:
		dst = append(dst, finText, byte(n))
	case n <= 0xffff:
		dst = append(dst, finText, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, finText, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, msg...)
}
