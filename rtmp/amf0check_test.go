package rtmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/livekit/go-rtmp/message"
	amf0 "github.com/yutopp/go-amf0"
)

func TestCheckAMF0(t *testing.T) {
	var connect bytes.Buffer
	if err := message.NewEncoder(&connect).Encode(commandMsgValue(t)); err != nil {
		t.Fatal(err)
	}
	nested := bytes.Repeat([]byte{amf0StrictArray, 0, 0, 0, 1}, amf0MaxDepth+2)
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"connect as go-rtmp encodes it", connect.Bytes(), true},
		{"empty", nil, true},
		{"strict array that fits", []byte{amf0StrictArray, 0, 0, 0, 2, amf0Null, amf0Null}, true},
		{"strict array of 2^31-1", []byte{amf0StrictArray, 0x7f, 0xff, 0xff, 0xff}, false},
		{"strict array one too many", []byte{amf0StrictArray, 0, 0, 0, 3, amf0Null, amf0Null}, false},
		{"long string that fits", []byte{amf0LongString, 0, 0, 0, 2, 'h', 'i'}, true},
		{"long string of 4 GiB", []byte{amf0LongString, 0xff, 0xff, 0xff, 0xff}, false},
		{"XML document of 1 GiB", []byte{amf0XMLDocument, 0x40, 0, 0, 0}, false},
		{"huge array inside an object", append([]byte{amf0Object, 0, 1, 'x', amf0StrictArray}, binary.BigEndian.AppendUint32(nil, 1<<30)...), false},
		{"huge array after an ECMA array", append([]byte{amf0ECMAArray, 0, 0, 0, 0, 0, 0, amf0ObjectEnd, amf0StrictArray}, binary.BigEndian.AppendUint32(nil, 1<<30)...), false},
		{"nesting too deep", nested, false},
		{"unknown marker stops the walk", []byte{0x11, amf0StrictArray, 0x7f, 0xff, 0xff, 0xff}, true},
		{"truncated number", []byte{amf0Number, 1, 2}, true},
	}
	for _, tc := range cases {
		err := checkAMF0(tc.b)
		var r *chunkRefusal
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &r) || r.Reason != reasonAMF):
			t.Errorf("%s: err %v, want a %s refusal", tc.name, err, reasonAMF)
		}
	}
}

func commandMsgValue(t *testing.T) message.Message {
	t.Helper()
	args := new(bytes.Buffer)
	if err := message.EncodeBodyAnyValues(message.NewAMFEncoder(args, message.EncodingTypeAMF0),
		&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live", TCURL: "rtmp://h/live", FlashVer: "FMLE/3.0"}}); err != nil {
		t.Fatal(err)
	}
	return &message.CommandMessage{CommandName: "connect", TransactionID: 1, Encoding: message.EncodingTypeAMF0, Body: args}
}

// FuzzCheckAMF0: the check never panics, and whatever it lets through
// go-amf0 decodes without allocating more than a bounded multiple of the
// input (each declared element or byte is backed by input).
func FuzzCheckAMF0(f *testing.F) {
	f.Add([]byte{amf0StrictArray, 0, 0, 0, 2, amf0Null, amf0Null})
	f.Add([]byte{amf0Object, 0, 1, 'x', amf0LongString, 0, 0, 0, 1, 'y', 0, 0, amf0ObjectEnd})
	f.Add(amfConnect(amf0StrictArray, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkAMF0(b) != nil {
			return
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		d := amf0.NewDecoder(bytes.NewReader(b))
		for range 64 { // bounded: each value consumes input or fails
			var v any
			if d.Decode(&v) != nil {
				break
			}
		}
		runtime.ReadMemStats(&ms)
		if grew := ms.TotalAlloc - before; grew > uint64(1<<20+1024*len(b)) {
			t.Fatalf("go-amf0 allocated %d bytes decoding %d accepted bytes", grew, len(b))
		}
	})
}
