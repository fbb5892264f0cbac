package signaling

import (
	"testing"

	"github.com/parleyhq/parley/signaling/proto"
)

// BenchmarkJoin measures what a user waits for on the signaling side:
// WebSocket dial, join with token verification, and the "joined" reply
// (fake media, loopback).
func BenchmarkJoin(b *testing.B) {
	env := startServer(b, nil)
	tok := env.token("ada", "bench", allGrants)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := env.mustDial()
		c.send("join", "j", proto.JoinBody{Token: tok, Protocol: 1})
		c.expect("joined")
		_ = c.ws.Close()
	}
}

// BenchmarkDecodeRequest measures parsing one typical client message.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := []byte(`{"type":"candidate","data":{"target":"publisher","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host generation 0","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, perr := proto.DecodeRequest(frame); perr != nil {
			b.Fatal(perr)
		}
	}
}
