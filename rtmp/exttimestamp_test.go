package rtmp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	gortmp "github.com/livekit/go-rtmp"
	"github.com/livekit/go-rtmp/message"
)

// obsChunks encodes one video message on chunk stream csid the way OBS
// (librtmp) does. Once the timestamp no longer fits 24 bits the type-0
// header carries 0xFFFFFF plus a 4-byte extended timestamp, and every
// type-3 continuation chunk repeats that extended timestamp (RTMP spec
// 5.3.1.3; ffmpeg's writer does the same).
func obsChunks(csid byte, ts uint32, payload []byte, chunkSize int) []byte {
	ext := ts >= 0xffffff
	ts24 := ts
	if ext {
		ts24 = 0xffffff
	}
	b := []byte{csid & 0x3f, byte(ts24 >> 16), byte(ts24 >> 8), byte(ts24),
		byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)),
		byte(message.TypeIDVideoMessage), 1, 0, 0, 0}
	if ext {
		b = binary.BigEndian.AppendUint32(b, ts)
	}
	for off := 0; off < len(payload); off += chunkSize {
		if off > 0 {
			b = append(b, 0xc0|csid&0x3f) // type 3
			if ext {
				b = binary.BigEndian.AppendUint32(b, ts)
			}
		}
		b = append(b, payload[off:min(off+chunkSize, len(payload))]...)
	}
	return b
}

// TestChunkReaderExtendedTimestampOBS feeds go-rtmp's chunk reader what OBS
// sends after 2^24 ms (~4h40m) of streaming. A reader that does not consume
// the extended timestamp on type-3 chunks takes its 4 bytes as payload,
// desynchronises and the stream dies ("invalid state").
//
// This test fails with github.com/yutopp/go-rtmp v0.0.7 (upstream PR #72 is
// unmerged), which is why Parley uses the API-identical fork
// github.com/livekit/go-rtmp@v0.0.0-20251031234730-75a652881771; see
// rtmp/README.md. Keep it: it guards against a downgrade.
func TestChunkReaderExtendedTimestampOBS(t *testing.T) {
	testChunkReader(t, 1<<24+1000)
}

// TestChunkReaderBelow2p24 is the control: the same multi-chunk messages
// with 24-bit timestamps must decode, so a failure of the test above is the
// library's, not this harness's.
func TestChunkReaderBelow2p24(t *testing.T) {
	testChunkReader(t, 1000)
}

func testChunkReader(t *testing.T, base uint32) {
	const chunkSize = 128 // RTMP default before SetChunkSize
	var in bytes.Buffer
	type msg struct {
		ts      uint32
		payload []byte
	}
	var sent []msg
	for i := 0; i < 5; i++ {
		ts := base + uint32(i*33)
		p := make([]byte, 300+i) // three chunks each
		for j := range p {
			p[j] = byte(i*7 + j)
		}
		sent = append(sent, msg{ts, p})
		in.Write(obsChunks(6, ts, p, chunkSize))
	}
	const hint = "\nthe RTMP library drops OBS's extended timestamps on type-3 chunks (streams die after ~4h40m); " +
		"Parley needs github.com/livekit/go-rtmp@v0.0.0-20251031234730-75a652881771, see rtmp/README.md"
	cs := gortmp.NewChunkStreamer(&in, io.Discard, nil)
	defer cs.Close()
	for i, want := range sent {
		var cm gortmp.ChunkMessage
		ts, err := readChunkMessage(cs, &cm)
		if err != nil {
			t.Fatalf("message %d: %v%s", i, err, hint)
		}
		vm, ok := cm.Message.(*message.VideoMessage)
		if !ok {
			t.Fatalf("message %d is %T%s", i, cm.Message, hint)
		}
		got, _ := io.ReadAll(vm.Payload)
		if ts != want.ts || !bytes.Equal(got, want.payload) {
			t.Fatalf("message %d: ts %d (want %d), payload %d bytes (want %d), equal=%v%s",
				i, ts, want.ts, len(got), len(want.payload), bytes.Equal(got, want.payload), hint)
		}
	}
}

// readChunkMessage turns the library's panics on corrupt chunk streams into
// errors, as its connection loop does.
func readChunkMessage(cs *gortmp.ChunkStreamer, cm *gortmp.ChunkMessage) (ts uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	_, ts, err = cs.Read(cm)
	return ts, err
}
