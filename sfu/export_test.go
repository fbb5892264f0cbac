package sfu

// Internals that the network tests in package sfu_test reach.

// InterfaceRescan is how often the live interface list is read again.
const InterfaceRescan = interfaceRescan

// VP8Packet is a one-packet VP8 frame whose payload carries seq.
func VP8Packet(seq uint16, key bool) []byte { return vp8Packet(seq, key) }

// SetBeforeWrite installs a hook that runs in a subscriber's writer
// before each packet (tests stall a subscriber); call it before the
// first Join.
func SetBeforeWrite(s *SFU, hook func(participantID string)) { s.testBeforeWrite = hook }
