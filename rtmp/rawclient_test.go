package rtmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/livekit/go-rtmp/handshake"
	"github.com/livekit/go-rtmp/message"
)

// rawMsg is one RTMP message as a test writes it byte by byte, for input
// go-rtmp's client would never produce.
type rawMsg struct {
	csid     int
	typeID   byte
	streamID uint32
	ts       uint32
	payload  []byte
}

// basicHeader encodes a chunk basic header (spec 5.3.1.1).
func basicHeader(fmtType byte, csid int) []byte {
	switch {
	case csid < 64:
		return []byte{fmtType<<6 | byte(csid)}
	case csid < 320:
		return []byte{fmtType << 6, byte(csid - 64)}
	default:
		return []byte{fmtType<<6 | 1, byte((csid - 64) % 256), byte((csid - 64) / 256)}
	}
}

// type0Header is a full chunk header declaring length bytes; the payload
// need not follow.
func type0Header(csid int, typeID byte, streamID, ts, length uint32) []byte {
	b := basicHeader(0, csid)
	ts24 := min(ts, extTimestamp)
	b = append(b, byte(ts24>>16), byte(ts24>>8), byte(ts24), byte(length>>16), byte(length>>8), byte(length), typeID)
	b = binary.LittleEndian.AppendUint32(b, streamID)
	if ts24 == extTimestamp {
		b = binary.BigEndian.AppendUint32(b, ts)
	}
	return b
}

// chunks splits m into chunks of chunkSize: a type-0 header, then type-3
// continuations (repeating the extended timestamp, as OBS and ffmpeg do).
func (m rawMsg) chunks(chunkSize int) []byte {
	b := type0Header(m.csid, m.typeID, m.streamID, m.ts, uint32(len(m.payload)))
	for off := 0; off < len(m.payload); off += chunkSize {
		if off > 0 {
			b = append(b, basicHeader(3, m.csid)...)
			if m.ts >= extTimestamp {
				b = binary.BigEndian.AppendUint32(b, m.ts)
			}
		}
		b = append(b, m.payload[off:min(off+chunkSize, len(m.payload))]...)
	}
	return b
}

// commandMsg encodes an AMF0 command the way go-rtmp's client does.
func commandMsg(t testing.TB, streamID uint32, name string, tx int64, body message.AMFConvertible) rawMsg {
	t.Helper()
	args := new(bytes.Buffer)
	if body != nil {
		if err := message.EncodeBodyAnyValues(message.NewAMFEncoder(args, message.EncodingTypeAMF0), body); err != nil {
			t.Fatal(err)
		}
	}
	msg := &message.CommandMessage{CommandName: name, TransactionID: tx, Encoding: message.EncodingTypeAMF0, Body: args}
	var payload bytes.Buffer
	if err := message.NewEncoder(&payload).Encode(msg); err != nil {
		t.Fatal(err)
	}
	return rawMsg{csid: 3, typeID: byte(msg.TypeID()), streamID: streamID, payload: payload.Bytes()}
}

// publishCommands are connect, createStream and publish as ffmpeg sends
// them; go-rtmp gives the first created stream id 1.
func publishCommands(t testing.TB, app, key string) []rawMsg {
	return []rawMsg{
		commandMsg(t, 0, "connect", 1, &message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: app, Type: "nonprivate"}}),
		commandMsg(t, 0, "createStream", 2, &message.NetConnectionCreateStream{}),
		commandMsg(t, 1, "publish", 0, &message.NetStreamPublish{PublishingName: key, PublishingType: "live"}),
	}
}

// rawDial connects (from local, if set) and completes the handshake.
func rawDial(t testing.TB, addr string, local net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

func writeMsgs(c net.Conn, chunkSize int, msgs ...rawMsg) error {
	var b []byte
	for _, m := range msgs {
		b = append(b, m.chunks(chunkSize)...)
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(b)
	return err
}

// closedByServer reads (and discards) until the server closes c, and fails
// the test if that takes longer than within.
func closedByServer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server kept the connection open for %s", within)
	}
}

// localAddr is a loopback source address other than 127.0.0.1, so a test
// can be "another host" to per-address limits.
func localAddr(last byte) net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, last)}
}
