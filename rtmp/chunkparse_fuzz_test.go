package rtmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
)

// fuzzLimits are small so that the limit paths are reached too.
var fuzzLimits = chunkLimits{MaxMessage: 4096, MaxCommand: 2048, MaxBuffered: 16384, MaxChunkStreams: 8, MaxChunkSize: 65536}

// chunkSeeds are the streams of the unit tests plus, when present, the
// start of a real ffmpeg publish (testdata/ffmpeg-publish.rtmp, the bytes
// after the handshake).
func chunkSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{
		rawMsg{csid: 6, typeID: 9, streamID: 1, ts: 1<<24 + 5, payload: make([]byte, 400)}.chunks(128),
		concat(type0Header(4, 8, 1, 0, 200), make([]byte, 128), type0Header(6, 9, 1, 0, 130), make([]byte, 128), []byte{0xc4}, make([]byte, 72), []byte{0xc6, 0, 0}),
		concat(rawMsg{csid: 2, typeID: 1, payload: []byte{0, 0, 4, 0}}.chunks(128), rawMsg{csid: 6, typeID: 9, streamID: 1, payload: make([]byte, 3000)}.chunks(1024)),
		concat(rawMsg{csid: 4, typeID: 8, streamID: 1, payload: make([]byte, 10)}.chunks(128), []byte{0x44, 0, 0, 21, 0, 0, 20, 9}, make([]byte, 20), []byte{0x84, 0, 0, 21}, make([]byte, 20), []byte{0xc4}, make([]byte, 20)),
		type0Header(3, 20, 0, 0, 0xffffff),
		{0x03, 0, 0, 0, 0, 0, 5, 20, 0, 0, 0, 0, 0x02, 0xff, 0xff, 0x11, 0x22},
	}
	if b, err := os.ReadFile("testdata/ffmpeg-publish.rtmp"); err == nil {
		seeds = append(seeds, b)
	} else {
		f.Fatalf("seed capture: %v", err)
	}
	return seeds
}

// FuzzChunkParser feeds arbitrary bytes (after the handshake). The parser
// must not panic, must read the same whole or byte by byte, and go-rtmp,
// given only the bytes the parser let through, must see the same
// messages, in the same order, as far as it gets.
func FuzzChunkParser(f *testing.F) {
	for _, s := range chunkSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ours, n, err := ourMessages(b, fuzzLimits, 0)
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		step := 1
		if len(b) > 0 {
			step = 1 + int(b[0]%13)
		}
		ours2, n2, err2 := ourMessages(b, fuzzLimits, step)
		if n2 != n || fmt.Sprint(err2) != fmt.Sprint(err) || sameMessages(ours, ours2) != nil {
			t.Fatalf("whole: %d bytes %v %v; in steps of %d: %d bytes %v %v", n, ours, err, step, n2, ours2, err2)
		}
		var r *chunkRefusal
		if err != nil && !errors.As(err, &r) {
			t.Fatalf("unclassified error %v", err)
		}
		// Byte by byte, passed is exactly what the guard hands go-rtmp:
		// never the byte that completes a refused AMF0 message.
		_, _, passed, _ := ourMessagesPassed(b, fuzzLimits, 1)
		theirs, _ := goRTMPMessages(b[:passed])
		if len(theirs) > len(ours) {
			t.Fatalf("go-rtmp saw %d messages, the parser %d: %v vs %v", len(theirs), len(ours), theirs, ours)
		}
		if err := sameMessages(theirs, ours[:len(theirs)]); err != nil {
			t.Fatalf("go-rtmp and the parser disagree: %v", err)
		}
	})
}

// FuzzChunkParserWellFormed builds a well-formed chunk stream from the
// fuzzer's bytes (interleaved chunk streams, type 0-3 headers, extended
// timestamps repeated on type-3 chunks as OBS sends them, chunk size
// changes) and checks that the parser and go-rtmp both read exactly the
// messages that were written.
func FuzzChunkParserWellFormed(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(bytes.Repeat([]byte{0xff, 0x10, 0x80, 0x03}, 40))
	f.Add([]byte("OBS streams for hours; timestamps pass 2^24 ms"))
	f.Fuzz(func(t *testing.T, seed []byte) {
		stream, want := generateChunks(seed)
		ours, n, err := ourMessages(stream, generous, 0)
		if err != nil || n != len(stream) {
			t.Fatalf("parser refused a well-formed stream after %d of %d bytes: %v", n, len(stream), err)
		}
		if err := sameMessages(ours, want); err != nil {
			t.Fatalf("parser: %v", err)
		}
		theirs, err := goRTMPMessages(stream)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("go-rtmp: %v", err)
		}
		if err := sameMessages(theirs, want); err != nil {
			t.Fatalf("go-rtmp: %v", err)
		}
	})
}

// genStream is the per-chunk-stream state of generateChunks: what the last
// header said (so later headers may omit it) and the message in progress.
type genStream struct {
	started          bool
	length, streamID uint32
	typeID           byte
	delta            uint32
	ext              bool
	extValue         uint32
	left             int // payload bytes of the message in progress
	msg              seenMsg
}

// generateChunks turns seed into a well-formed stream and the messages it
// carries, in the order they complete.
func generateChunks(seed []byte) ([]byte, []seenMsg) {
	next := func() uint32 {
		if len(seed) == 0 {
			return 0
		}
		v := uint32(seed[0])
		seed = seed[1:]
		return v
	}
	csids := []int{3, 4, 6, 63, 64, 319}
	st := map[int]*genStream{}
	for _, id := range csids {
		st[id] = &genStream{}
	}
	var out []byte
	var done []seenMsg
	chunkSize := uint32(defaultChunkSize)
	ts := uint32(1<<24 - 3000) // crosses 2^24 (extended timestamps) early
	emitChunk := func(id int, s *genStream) {
		n := min(int(chunkSize), s.left)
		out = append(out, make([]byte, n)...)
		s.left -= n
		if s.left == 0 {
			done = append(done, s.msg)
		}
	}
	for steps := 0; len(seed) > 0 && steps < 400; steps++ {
		op := next()
		id := csids[int(op)%len(csids)]
		s := st[id]
		switch {
		case op >= 240: // a chunk size change, when no message is in progress
			busy := false
			for _, g := range st {
				busy = busy || g.left > 0
			}
			if busy {
				continue
			}
			size := 1 + (next()<<8|next())%5000
			out = append(out, rawMsg{csid: 2, typeID: 1, payload: binary.BigEndian.AppendUint32(nil, size)}.chunks(int(chunkSize))...)
			done = append(done, seenMsg{2, 1, 0, 4})
			chunkSize = size
		case s.left > 0: // the next chunk of the message in progress
			out = append(out, basicHeader(3, id)...)
			if s.ext {
				out = binary.BigEndian.AppendUint32(out, s.extValue)
			}
			emitChunk(id, s)
		default: // a new message, with the smallest header that is valid
			length := 1 + (next()<<4|next())%3000
			typeID := byte(8 + next()%2)
			if op%7 == 0 && s.started { // repeat the last length and type
				length, typeID = s.length, s.typeID
			}
			delta := next() % 50
			if op%5 == 0 {
				delta = s.delta
			}
			ts += delta
			fmtType := byte(3)
			switch {
			case !s.started || op%11 == 0:
				fmtType = 0
			case length != s.length || typeID != s.typeID:
				fmtType = 1
			case delta != s.delta:
				fmtType = 2
			}
			out = append(out, basicHeader(fmtType, id)...)
			field := delta
			if fmtType == 0 {
				field = ts
			}
			if fmtType < 3 {
				s.ext, s.extValue = field >= extTimestamp, field
				out = append(out, byte(min(field, extTimestamp)>>16), byte(min(field, extTimestamp)>>8), byte(min(field, extTimestamp)))
			}
			if fmtType < 2 {
				out = append(out, byte(length>>16), byte(length>>8), byte(length), typeID)
			}
			if fmtType == 0 {
				out = binary.LittleEndian.AppendUint32(out, 1)
			}
			if s.ext {
				out = binary.BigEndian.AppendUint32(out, s.extValue)
			}
			s.started, s.length, s.typeID, s.streamID, s.delta = true, length, typeID, 1, delta
			s.left = int(length)
			s.msg = seenMsg{id, typeID, 1, int(length)}
			emitChunk(id, s)
		}
	}
	// Finish every message in progress.
	for _, id := range csids {
		s := st[id]
		for s.left > 0 {
			out = append(out, basicHeader(3, id)...)
			if s.ext {
				out = binary.BigEndian.AppendUint32(out, s.extValue)
			}
			emitChunk(id, s)
		}
	}
	return out, done
}
