package loadtest

import (
	"testing"
	"time"
)

func TestProbeRoundTrip(t *testing.T) {
	buf := make([]byte, 100)
	now := time.Unix(1732233600, 123456789)
	writeProbe(buf, vp8ProbeOffset, now, 42)
	got, seq, ok := readProbe(buf, vp8ProbeOffset)
	if !ok || !got.Equal(now) || seq != 42 {
		t.Fatalf("got %v %d %v", got, seq, ok)
	}
	if _, _, ok := readProbe(buf, 0); ok {
		t.Fatal("probe found at the wrong offset")
	}
	if _, _, ok := readProbe(buf[:vp8ProbeOffset+10], vp8ProbeOffset); ok {
		t.Fatal("probe found in a truncated payload")
	}
}

func TestVP8PayloadMarksKeyframes(t *testing.T) {
	buf := make([]byte, 64)
	vp8Payload(buf, true, true)
	if buf[0]&0x10 == 0 || buf[1]&0x01 != 0 || buf[4] != 0x9d || buf[5] != 0x01 || buf[6] != 0x2a {
		t.Fatalf("keyframe start packet malformed: % x", buf[:11])
	}
	vp8Payload(buf, true, false)
	if buf[1]&0x01 != 1 {
		t.Fatal("delta frame must set the inter-frame bit")
	}
	vp8Payload(buf, false, true)
	if buf[0]&0x10 != 0 {
		t.Fatal("continuation packet must not set the start bit")
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, max := percentiles(d)
	if p50 != 51*time.Millisecond || p99 != 100*time.Millisecond || max != 100*time.Millisecond {
		t.Fatalf("p50 %v p99 %v max %v", p50, p99, max)
	}
	if a, b, c := percentiles(nil); a != 0 || b != 0 || c != 0 {
		t.Fatal("empty input must give zeros")
	}
}
