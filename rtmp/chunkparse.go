package rtmp

import (
	"encoding/binary"
	"fmt"
)

// RTMP framing constants the chunk parser needs (RTMP spec 5.2 and 5.3).
const (
	// handshakeClientBytes is what a client sends before its first chunk:
	// C0 (1 byte), C1 and C2 (1536 bytes each). go-rtmp reads exactly
	// these, straight from the connection.
	handshakeClientBytes = 1 + 1536 + 1536
	defaultChunkSize     = 128
	// maxChunkHeader is a 3-byte basic header, an 11-byte type-0 message
	// header and a 4-byte extended timestamp.
	maxChunkHeader   = 3 + 11 + 4
	extTimestamp     = 0xffffff
	typeSetChunkSize = 1
	typeAudio        = 8
	typeVideo        = 9
	typeDataAMF0     = 18
	typeCommandAMF0  = 20
)

// chunkLimits are what one connection may make go-rtmp hold in memory.
type chunkLimits struct {
	// MaxMessage is the largest message length a chunk header may declare.
	MaxMessage uint32
	// MaxCommand is the same for every message but audio and video
	// (commands, metadata, protocol control); never above MaxMessage.
	MaxCommand uint32
	// MaxBuffered bounds the sum, over the connection's chunk streams, of
	// the largest message declared on each. go-rtmp keeps one reassembly
	// buffer per chunk stream and never shrinks it, so this sum is what it
	// may hold for the connection's lifetime (up to twice as much while
	// bytes.Buffer grows).
	MaxBuffered int64
	// MaxChunkStreams is how many chunk stream ids a connection may use.
	MaxChunkStreams int
	// MaxChunkSize is the largest Set Chunk Size go-rtmp accepts
	// (rtmp.max_chunk_size); a bigger one ends the connection there too.
	MaxChunkSize uint32
}

// chunkRefusal is why the parser stopped a connection; Reason is the
// "reason" label of parley_rtmp_refused_publishes_total.
type chunkRefusal struct {
	Reason string
	Msg    string
}

func (e *chunkRefusal) Error() string { return "rtmp chunk stream: " + e.Msg }

func refuseChunks(reason, format string, args ...any) error {
	return &chunkRefusal{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// chunkStreamState is what the parser remembers of one chunk stream: the
// fields later chunk headers may omit, and how much of the current
// message has arrived.
type chunkStreamState struct {
	id        int
	msgLen    uint32 // 0 until a type-0 or type-1 header set it
	have      uint32 // bytes of the current message received
	typeID    byte
	streamID  uint32
	ext       bool   // the last type 0/1/2 header carried an extended timestamp
	highWater uint32 // largest message declared on this chunk stream
	ctl       [4]byte
	amf       []byte // the AMF0 message being received, for checkAMF0
}

// isAMF0 is true for the message types go-rtmp decodes with go-amf0.
func isAMF0(typeID byte) bool { return typeID == typeDataAMF0 || typeID == typeCommandAMF0 }

// chunkParser follows the client-to-server byte stream of one RTMP
// connection the way go-rtmp's chunk reader does (same header rules,
// same extended-timestamp rule on type-3 chunks, same point where a Set
// Chunk Size takes effect), without keeping any payload, so limits can be
// enforced before the bytes reach go-rtmp. Input go-rtmp would accept
// differently is refused here rather than guessed at, so the two never
// disagree about where a chunk starts.
type chunkParser struct {
	handshakeLeft int
	chunkSize     uint32

	hdr  [maxChunkHeader]byte
	nhdr int // bytes of hdr filled
	need int // bytes of hdr the current header needs, as far as known

	cur      *chunkStreamState // chunk stream whose payload is being read
	payLeft  uint32            // payload bytes left in the current chunk
	streams  []*chunkStreamState
	buffered int64 // sum of highWater over streams

	// onMessage, when set, is told of every message go-rtmp will see
	// complete (the fuzz test compares it with go-rtmp's own reading).
	onMessage func(csid int, typeID byte, streamID, length uint32)
}

func newChunkParser() *chunkParser {
	return &chunkParser{handshakeLeft: handshakeClientBytes, chunkSize: defaultChunkSize, need: 1}
}

// feed parses b under lim and returns how many bytes of it go-rtmp may
// read. With stopAtMessage it stops right after the first message that
// completes, so a caller can change the limits before the next one (the
// publish command that authenticates a connection raises them). An error
// means the connection must be closed; no byte after the offending header
// may reach go-rtmp.
func (p *chunkParser) feed(b []byte, lim chunkLimits, stopAtMessage bool) (int, error) {
	n := 0
	for n < len(b) {
		switch {
		case p.handshakeLeft > 0:
			k := min(p.handshakeLeft, len(b)-n)
			p.handshakeLeft -= k
			n += k
		case p.cur == nil:
			k := min(p.need-p.nhdr, len(b)-n)
			copy(p.hdr[p.nhdr:], b[n:n+k])
			p.nhdr += k
			n += k
			if p.nhdr < p.need {
				continue
			}
			if err := p.headerProgress(lim); err != nil {
				return n, err
			}
		default:
			k := min(int(p.payLeft), len(b)-n)
			cs := p.cur
			if cs.typeID == typeSetChunkSize && cs.have < 4 {
				copy(cs.ctl[cs.have:], b[n:n+min(k, int(4-cs.have))])
			}
			if isAMF0(cs.typeID) {
				cs.amf = append(cs.amf, b[n:n+k]...) // at most MaxCommand bytes
			}
			cs.have += uint32(k)
			p.payLeft -= uint32(k)
			n += k
			if p.payLeft > 0 {
				continue
			}
			p.cur = nil
			if cs.have < cs.msgLen {
				continue
			}
			if err := p.messageDone(cs, lim); err != nil {
				return n, err
			}
			if stopAtMessage {
				return n, nil
			}
		}
	}
	return n, nil
}

// headerProgress is called when hdr holds need bytes. It either raises
// need (the header turned out longer) or applies the complete header and
// starts the chunk's payload (at least one byte: declare refuses empty
// messages and a message in progress always has bytes left).
func (p *chunkParser) headerProgress(lim chunkLimits) error {
	fmtType := p.hdr[0] >> 6
	basic := 1
	switch p.hdr[0] & 0x3f {
	case 0:
		basic = 2
	case 1:
		basic = 3
	}
	if basic == 3 {
		// go-rtmp reads this form's two id bytes with io.ReadAtLeast into
		// its 64 KiB scratch buffer, which swallows whatever follows them
		// (as much as is buffered): from here on it and this parser would
		// see different chunks. No encoder needs chunk stream ids >= 320.
		return refuseChunks(reasonMalformed, "three-byte chunk basic header (chunk stream id >= 320) is not supported")
	}
	need := basic + [4]int{11, 7, 3, 0}[fmtType]
	if p.nhdr >= need {
		ext := false
		switch fmtType {
		case 0, 1, 2:
			ext = be24(p.hdr[basic:]) == extTimestamp
		case 3:
			// go-rtmp reads an extended timestamp on a type-3 chunk when
			// the chunk stream's last type 0/1/2 header had one.
			if cs := p.find(p.csid(basic)); cs != nil {
				ext = cs.ext
			}
		}
		if ext {
			need += 4
		}
	}
	if need > p.nhdr {
		p.need = need
		return nil
	}
	p.nhdr, p.need = 0, 1
	return p.applyHeader(fmtType, basic, lim)
}

func (p *chunkParser) csid(basic int) int {
	if basic == 2 {
		return int(p.hdr[1]) + 64
	}
	return int(p.hdr[0] & 0x3f)
}

func (p *chunkParser) applyHeader(fmtType byte, basic int, lim chunkLimits) error {
	id := p.csid(basic)
	cs := p.find(id)
	if cs == nil {
		if len(p.streams) >= lim.MaxChunkStreams {
			return refuseChunks(reasonChunkStreams, "chunk stream %d would be the connection's %dth; at most %d (rtmp.max_chunk_streams)",
				id, len(p.streams)+1, lim.MaxChunkStreams)
		}
		cs = &chunkStreamState{id: id}
		p.streams = append(p.streams, cs)
	}
	mh := p.hdr[basic:]
	if fmtType <= 1 && cs.have > 0 {
		// go-rtmp would keep the bytes received so far under the new
		// header; no encoder does this, and refusing it keeps the two
		// readers from ever disagreeing about a message's bytes.
		return refuseChunks(reasonMalformed, "new message header on chunk stream %d after %d bytes of its %d-byte message", id, cs.have, cs.msgLen)
	}
	if fmtType <= 2 {
		cs.ext = be24(mh) == extTimestamp
	}
	if fmtType <= 1 {
		length := be24(mh[3:])
		cs.typeID = mh[6]
		if fmtType == 0 {
			cs.streamID = binary.LittleEndian.Uint32(mh[7:11])
		}
		if err := p.declare(cs, length, lim); err != nil {
			return err
		}
	}
	if cs.msgLen == 0 {
		return refuseChunks(reasonMalformed, "type-%d chunk on chunk stream %d, which has no message header yet", fmtType, id)
	}
	p.cur = cs
	p.payLeft = min(p.chunkSize, cs.msgLen-cs.have)
	return nil
}

// declare records a message length from a type 0/1 header and checks it
// against the limits before any of its payload is read.
func (p *chunkParser) declare(cs *chunkStreamState, length uint32, lim chunkLimits) error {
	max := lim.MaxMessage
	if cs.typeID != typeAudio && cs.typeID != typeVideo {
		max = min(max, lim.MaxCommand)
	}
	switch {
	case length == 0:
		return refuseChunks(reasonMalformed, "empty message on chunk stream %d", cs.id)
	case length > max:
		return refuseChunks(reasonTooLarge, "chunk stream %d declares a %d-byte message of type %d; at most %d here", cs.id, length, cs.typeID, max)
	case cs.typeID == typeSetChunkSize && length != 4:
		return refuseChunks(reasonMalformed, "Set Chunk Size message of %d bytes, want 4", length)
	}
	if length > cs.highWater {
		p.buffered += int64(length - cs.highWater)
		cs.highWater = length
		if p.buffered > lim.MaxBuffered {
			return refuseChunks(reasonBufferBudget, "chunk streams would buffer %d bytes; at most %d here", p.buffered, lim.MaxBuffered)
		}
	}
	cs.msgLen = length
	return nil
}

// messageDone applies a complete message the way go-rtmp will before it
// reads the next chunk (only Set Chunk Size changes the framing), and
// checks an AMF0 message before go-rtmp, which has not received its last
// byte yet, can decode it.
func (p *chunkParser) messageDone(cs *chunkStreamState, lim chunkLimits) error {
	cs.have = 0
	if p.onMessage != nil {
		p.onMessage(cs.id, cs.typeID, cs.streamID, cs.msgLen)
	}
	if isAMF0(cs.typeID) {
		err := checkAMF0(cs.amf)
		cs.amf = cs.amf[:0]
		return err
	}
	if cs.typeID != typeSetChunkSize {
		return nil
	}
	// go-rtmp applies it only on a message stream that exists; 0, the
	// control stream, always does, and protocol control messages must use
	// it (spec 5.4). Elsewhere the two readers could disagree: refuse.
	if cs.streamID != 0 {
		return refuseChunks(reasonMalformed, "Set Chunk Size on message stream %d, want 0", cs.streamID)
	}
	size := binary.BigEndian.Uint32(cs.ctl[:])
	switch {
	case size&0x80000000 != 0 || size == 0:
		return refuseChunks(reasonMalformed, "invalid Set Chunk Size %#x", size)
	case min(size, 0xffffff) > lim.MaxChunkSize:
		return refuseChunks(reasonMalformed, "Set Chunk Size %d exceeds rtmp.max_chunk_size (%d)", size, lim.MaxChunkSize)
	}
	p.chunkSize = min(size, 0xffffff)
	return nil
}

func (p *chunkParser) find(id int) *chunkStreamState {
	for _, cs := range p.streams {
		if cs.id == id {
			return cs
		}
	}
	return nil
}

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
