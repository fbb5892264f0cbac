package ingest

import (
	"context"
	"testing"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/rtmp"
)

// BenchmarkSinkWriteRTP measures what the Sink adds per RTMP video
// packet: marshalling the rtmp side's rtp.Packet and handing it to the
// SFU's local track (statistics, packet cache, key-frame check), with no
// subscriber. Run: go test ./ingest -run XXX -bench SinkWriteRTP
func BenchmarkSinkWriteRTP(b *testing.B) {
	s := startSFU(b)
	cfg := sinkConfig()
	cfg.ReconnectGrace = 0
	svc, _ := startService(b, cfg, Deps{Media: s})
	sess, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Room: "bench", Name: "b"}})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	w, err := sess.AddVideoTrack(h264Spec())
	if err != nil {
		b.Fatal(err)
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 1200)}
	p.Payload[0] = 0x41
	b.SetBytes(int64(12 + len(p.Payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.SequenceNumber = uint16(i)
		p.Timestamp = uint32(i/4) * 3000
		if err := w.WriteRTP(p); err != nil {
			b.Fatal(err)
		}
	}
}
