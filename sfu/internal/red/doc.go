// Package red reads and writes RFC 2198 redundant audio (RED) payloads as
// browsers send them for Opus ("audio/red"), and turns a RED stream back
// into plain Opus for subscribers that did not negotiate RED.
//
// Why it exists: on a lossy downlink, RED lets the receiver fill a lost
// Opus frame from the redundant copy carried by the next packet, which is
// far better than concealment. Chromium publishes RED with one or two
// redundant frames (distance 1-2). The SFU forwards RED untouched to
// subscribers that negotiated it; Firefox, pion clients and the RTMP/WHIP
// viewers only understand Opus, so for them the SFU unwraps: it forwards
// the primary block, and when it sees that packets before this one were
// lost on the publisher's uplink it also emits the redundant copies as
// Opus packets of their own. Pack builds a RED payload from given blocks
// (the tests use it); Encoder keeps the last frames of a plain Opus stream
// and wraps each new one with up to Distance of them, for a possible path
// that adds redundancy for publishers that send plain Opus (the RTMP/WHIP
// transcoder). Once its buffers have grown, it does not allocate.
//
// Wire format: each block but the last has a 4-byte header
//
//	F=1 (1 bit) | block PT (7) | timestamp offset (14) | block length (10)
//
// and the last (primary) block a 1-byte header F=0 | PT. The blocks'
// data follow the headers in the same order, the primary's last, its
// length being whatever remains. Parse validates the whole payload once
// (every header present, the lengths fit) so that iterating afterwards
// cannot go out of bounds; neither parsing nor iterating allocates, and
// block payloads alias the input.
//
// Sequence numbers when unwrapping: the Unwrapper keeps the publisher's
// sequence numbers and timestamps. A RED packet carries one new Opus frame
// (the primary) per RTP packet, so the redundant block at distance d
// (d = 1 for the block just before the primary) is the primary of packet
// seq-d. When packets between the highest one forwarded and this one are
// missing, the last min(gap, redundant) blocks are emitted first, oldest
// first, each with sequence number seq-d and timestamp ts - offset; the
// subscriber's stream therefore has no holes for losses RED could repair,
// and a hole where it could not (the subscriber's NACK/jitter buffer sees
// an ordinary loss). A late packet whose sequence number was already
// filled from redundancy is dropped; a late packet that was not is
// forwarded as is (reordering, which jitter buffers expect). A block whose
// timestamp is not strictly between the last one forwarded and the
// primary's is not emitted, which guards against a sender that skipped a
// redundant frame (libwebrtc leaves out a frame whose offset or size does
// not fit the header): the worst case is a hole, never a wrong frame at a
// wrong time. This is the mapping other SFUs use as well; it relies on
// the sender putting exactly one new frame per packet, which Chromium
// does.
package red
