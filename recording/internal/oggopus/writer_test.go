package oggopus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/recording/mediatest"
)

func TestPacketSamples(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want int
	}{
		{[]byte{0xF8, 0xFF, 0xFE}, 960}, // CELT 20 ms
		{[]byte{0x08 << 3}, 480},        // SILK 10 ms... config 8 is NB? no: WB 10 ms
		{[]byte{11 << 3}, 2880},         // SILK 60 ms
		{[]byte{15<<3 | 1}, 1920},       // Hybrid 20 ms, two frames
		{[]byte{16<<3 | 3, 0x03}, 360},  // CELT 2.5 ms, three frames
		{[]byte{31<<3 | 3, 0x06}, 5760}, // CELT 20 ms x 6 = 120 ms
	} {
		if got, err := PacketSamples(tc.p); err != nil || got != tc.want {
			t.Errorf("PacketSamples(% x) = %d, %v; want %d", tc.p, got, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, {31<<3 | 3}, {31<<3 | 3, 0}, {31<<3 | 3, 7}} {
		if _, err := PacketSamples(bad); err == nil {
			t.Errorf("PacketSamples(% x) accepted", bad)
		}
	}
}

func TestCRCKnownValue(t *testing.T) {
	// CRC-32/MPEG-2 without its initial value and final XOR (Ogg's) of
	// "123456789" is 0x89A1897F.
	if got := crcUpdate(crcTable(), 0, []byte("123456789")); got != 0x89A1897F {
		t.Fatalf("crc %#x", got)
	}
}

// readPackets splits an Ogg file into packets, checking each page's CRC
// with the writer's own table.
func readPackets(t *testing.T, b []byte) ([][]byte, []int64) {
	t.Helper()
	table := crcTable()
	return mediatest.OggPackets(t, b, func(page []byte) uint32 { return crcUpdate(table, 0, page) })
}

// A recording with a lost packet and a 2 s mute: the duration is the
// recorded time, the tone is where it was, the gap is silent, and ffmpeg
// decodes it all without an error.
func TestGapsKeepTime(t *testing.T) {
	packets := mediatest.Opus(t, 4) // 200 packets of 20 ms
	if len(packets) < 195 {
		t.Fatalf("encoder gave %d packets", len(packets))
	}
	path := filepath.Join(t.TempDir(), "track.ogg")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	const mute = 2 * 48000
	at := func(i int) int64 {
		pos := int64(i) * 960
		if i >= 100 {
			pos += mute // the microphone was muted for 2 s before packet 100
		}
		return pos
	}
	for i, p := range packets {
		if i == 50 {
			continue // lost on the way
		}
		if ok, err := w.WritePacket(at(i), p); err != nil || !ok {
			t.Fatalf("packet %d: %v %v", i, ok, err)
		}
	}
	// A duplicate of the last packet is dropped.
	last := len(packets) - 1
	if ok, err := w.WritePacket(at(last), packets[last]); err != nil || ok {
		t.Fatalf("duplicate: written %v, %v", ok, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	want := time.Duration(len(packets))*20*time.Millisecond + 2*time.Second
	if d := mediatest.AudioDuration(t, path); d != want {
		t.Fatalf("decodes to %v, want %v (recorded time, gaps included)", d, want)
	}
	// ffprobe's figure counts the pre-skip too.
	if d := mediatest.ProbeFile(t, path).Duration; d < want || d > want+100*time.Millisecond {
		t.Fatalf("ffprobe duration %v, want %v", d, want)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
	if v := mediatest.MaxVolume(t, path, 0.2, 1.8); v < -20 {
		t.Fatalf("the tone before the mute peaks at %.1f dB", v)
	}
	if v := mediatest.MaxVolume(t, path, 2.2, 3.8); v > -60 {
		t.Fatalf("the muted 2 s peak at %.1f dB, want silence", v)
	}
	if v := mediatest.MaxVolume(t, path, 4.2, 5.8); v < -20 {
		t.Fatalf("the tone after the mute peaks at %.1f dB", v)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, granules := readPackets(t, b)
	got = got[2+PreSkip/960:]         // headers, the pre-skip's silence
	if len(got) != len(packets)+100 { // packets with #50 replaced by silence, 100 silence frames for the mute
		t.Fatalf("%d packets in the file", len(got))
	}
	if !bytes.Equal(got[50], silence20ms()) || !bytes.Equal(got[0], packets[0]) {
		t.Fatal("the lost packet's place is not silence")
	}
	if g := granules[len(granules)-1]; g != PreSkip+at(last)+960 { // granules count the pre-skip
		t.Fatalf("last granule %d, want %d", g, PreSkip+at(last)+960)
	}
	for i := 3; i < len(granules); i++ {
		if granules[i]-granules[i-1] > int64(MaxPageDuration.Seconds()*48000)+960 {
			t.Fatalf("page %d holds %d samples: a crash would lose more than a second", i, granules[i]-granules[i-1])
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	if _, err := NewWriter(&bytes.Buffer{}, 3, 1); err == nil {
		t.Fatal("3 channels accepted")
	}
	w, err := NewWriter(&bytes.Buffer{}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WritePacket(0, nil); err == nil {
		t.Fatal("empty packet accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WritePacket(0, silence20ms()); err == nil {
		t.Fatal("write after close accepted")
	}
}
