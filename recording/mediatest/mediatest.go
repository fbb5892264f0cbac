// Package mediatest makes real media with ffmpeg and checks recordings
// with ffmpeg's own demuxers and decoders, for the recording packages'
// tests and the browser tests (e2e). A missing ffmpeg fails the test with the install command.
package mediatest

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tool finds name on PATH or fails the test with how to install it.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is needed to check recordings with a real decoder: apt-get install ffmpeg (./scripts/test installs it)", name)
	}
	return p
}

// VP8 has ffmpeg encode a moving test pattern (320x240, 25 fps, a key
// frame every second) and returns its frames and size.
func VP8(tb testing.TB, seconds int) (frames [][]byte, width, height int) {
	tb.Helper()
	return ivf(tb, seconds, "libvpx")
}

// VP8Camera is a browser camera's top simulcast layer: VP8 640x360 at
// 25 fps and about 1 Mbit/s, a key frame every second.
func VP8Camera(tb testing.TB, seconds int) [][]byte {
	tb.Helper()
	frames, _, _ := ivf(tb, seconds, "libvpx", "-s", "640x360", "-b:v", "1000k", "-deadline", "realtime")
	return frames
}

// VP9 is VP8's pattern in VP9 (profile 0, realtime, no hidden alt-ref
// frames: one frame per picture, as a browser sends it).
func VP9(tb testing.TB, seconds int) (frames [][]byte, width, height int) {
	tb.Helper()
	return ivf(tb, seconds, "libvpx-vp9", "-deadline", "realtime", "-lag-in-frames", "0", "-pix_fmt", "yuv420p")
}

func ivf(tb testing.TB, seconds int, codec string, args ...string) (frames [][]byte, width, height int) {
	tb.Helper()
	return ivfFrom(tb, "testsrc=size=320x240:rate=25", seconds, codec, args...)
}

// Flash and beep are a clip for lip-sync checks: a black picture with a
// white flash, and silence with a 1 kHz beep, both from the clip's
// second 2 to 2.2 (and so every period seconds when the clip loops).
// FlashVP8 returns the picture as VP8 frames (320x240, 25 fps, a key
// frame every second); BeepOpus the sound as 20 ms Opus packets.
func FlashVP8(tb testing.TB, seconds int) [][]byte {
	tb.Helper()
	frames, _, _ := ivfFrom(tb, "color=c=black:s=320x240:r=25,drawbox=c=white:t=fill:enable='between(t,2,2.2)'",
		seconds, "libvpx", "-deadline", "realtime")
	return frames
}

// BeepOpus: see FlashVP8.
func BeepOpus(tb testing.TB, seconds int) [][]byte {
	tb.Helper()
	return opusFrom(tb, "aevalsrc=0.5*sin(2*PI*1000*t)*between(t\\,2\\,2.2):s=48000", seconds)
}

func ivfFrom(tb testing.TB, src string, seconds int, codec string, args ...string) (frames [][]byte, width, height int) {
	tb.Helper()
	ivf := filepath.Join(tb.TempDir(), "in.ivf")
	cmd := append([]string{"-v", "error", "-f", "lavfi", "-i", src,
		"-t", strconv.Itoa(seconds), "-c:v", codec, "-g", "25", "-b:v", "300k"}, args...)
	out, err := exec.Command(Tool(tb, "ffmpeg"), append(cmd, "-f", "ivf", ivf)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(ivf)
	if err != nil {
		tb.Fatal(err)
	}
	// IVF: a 32-byte file header (width and height at 12 and 14), then
	// per frame a 12-byte header (4-byte size, 8-byte timestamp).
	width, height = int(binary.LittleEndian.Uint16(b[12:])), int(binary.LittleEndian.Uint16(b[14:]))
	for p := 32; p+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[p:]))
		frames = append(frames, b[p+12:p+12+n])
		p += 12 + n
	}
	return frames, width, height
}

// Opus has ffmpeg encode a 440 Hz tone to 20 ms Opus packets (mono, 48
// kHz) and returns them.
func Opus(tb testing.TB, seconds int) [][]byte {
	tb.Helper()
	return opusFrom(tb, "sine=frequency=440:sample_rate=48000", seconds)
}

func opusFrom(tb testing.TB, src string, seconds int) [][]byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "in.ogg")
	out, err := exec.Command(Tool(tb, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", src,
		"-t", strconv.Itoa(seconds), "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-f", "ogg", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	packets, _ := OggPackets(tb, b, nil)
	return packets[2:] // OpusHead, OpusTags
}

// OggPackets splits an Ogg file into its packets and each page's granule
// position. When crc is not nil each page's checksum is verified with it.
func OggPackets(tb testing.TB, b []byte, crc func(page []byte) uint32) (packets [][]byte, granules []int64) {
	tb.Helper()
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			tb.Fatalf("no Ogg page %d bytes before the end", len(b))
		}
		nseg := int(b[26])
		lacing := b[27 : 27+nseg]
		size := 27 + nseg
		for _, l := range lacing {
			size += int(l)
		}
		if crc != nil {
			page := append([]byte(nil), b[:size]...)
			want := binary.LittleEndian.Uint32(page[22:])
			binary.LittleEndian.PutUint32(page[22:], 0)
			if got := crc(page); got != want {
				tb.Fatalf("page CRC %#x, header says %#x", got, want)
			}
		}
		granules = append(granules, int64(binary.LittleEndian.Uint64(b[6:])))
		body := b[27+nseg : size]
		for _, l := range lacing {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		b = b[size:]
	}
	return packets, granules
}

// Probe is what ffprobe says of a file's first stream.
type Probe struct {
	Duration  time.Duration // the container's
	StartTime time.Duration
	Frames    int // decoded video frames (-count_frames); -1 for audio
}

// ProbeFile runs ffprobe on path.
func ProbeFile(tb testing.TB, path string) Probe {
	tb.Helper()
	out, err := exec.Command(Tool(tb, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "0",
		"-show_entries", "stream=nb_read_frames,start_time:format=duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	p := Probe{Frames: -1}
	for _, line := range strings.Fields(string(out)) {
		k, v, _ := strings.Cut(line, "=")
		f, ferr := strconv.ParseFloat(v, 64)
		switch {
		case k == "duration" && ferr == nil:
			p.Duration = time.Duration(f * float64(time.Second))
		case k == "start_time" && ferr == nil:
			p.StartTime = time.Duration(f * float64(time.Second))
		case k == "nb_read_frames":
			if n, err := strconv.Atoi(v); err == nil {
				p.Frames = n
			}
		}
	}
	return p
}

// DecodeErrors is what ffmpeg prints at level error while decoding the
// whole file ("" when it decodes cleanly).
func DecodeErrors(tb testing.TB, path string) string {
	tb.Helper()
	// -enc_time_base -1 keeps the file's own (millisecond) timestamps
	// for the null output: with the default, ffmpeg rounds a
	// variable-frame-rate recording's frames onto the frame rate it
	// guessed, and two frames of a jittery camera that land on one tick
	// make the null muxer print "non monotonically increasing dts", which
	// says nothing about the file's decodability.
	out, err := exec.Command(Tool(tb, "ffmpeg"), "-v", "error", "-i", path, "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return string(out)
}

// AudioDuration is how much audio ffmpeg decodes from path.
func AudioDuration(tb testing.TB, path string) time.Duration {
	tb.Helper()
	out, err := exec.Command(Tool(tb, "ffmpeg"), "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	if err != nil {
		tb.Fatalf("ffmpeg decode %s: %v", path, err)
	}
	return time.Duration(len(out)/2) * time.Second / 48000
}

// MaxVolume is ffmpeg's volumedetect max_volume (dB) over [from, to)
// seconds of path's audio.
func MaxVolume(tb testing.TB, path string, from, to float64) float64 {
	tb.Helper()
	out, err := exec.Command(Tool(tb, "ffmpeg"), "-v", "info", "-i", path, "-af",
		"atrim="+strconv.FormatFloat(from, 'f', 2, 64)+":"+strconv.FormatFloat(to, 'f', 2, 64)+",volumedetect",
		"-f", "null", "-").CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg volumedetect: %v\n%s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "max_volume: ")
	if !ok {
		tb.Fatalf("no max_volume in:\n%s", out)
	}
	v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// VideoSpan decodes path's first video stream and returns the timestamps
// of its first and last decoded frames and how many decoded.
func VideoSpan(tb testing.TB, path string) (first, last time.Duration, frames int) {
	tb.Helper()
	out, err := exec.Command(Tool(tb, "ffprobe"), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffprobe frames of %s: %v\n%s", path, err, out)
	}
	for _, line := range strings.Fields(string(out)) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64)
		if err != nil {
			continue // a frame without a timestamp
		}
		t := time.Duration(f * float64(time.Second))
		if frames == 0 || t < first {
			first = t
		}
		last = max(last, t)
		frames++
	}
	return first, last, frames
}

// H264 has ffmpeg encode a moving test pattern with libx264 (no B-frames,
// one slice per frame, an IDR every second at 25 fps) and returns its
// access units in Annex B form (each NAL unit after a 4-byte start
// code), as pion's H264Payloader takes them. args go to the encoder
// (e.g. "-profile:v", "baseline", "-s", "320x240").
func H264(tb testing.TB, seconds int, args ...string) [][]byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "in.h264")
	cmd := append([]string{"-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "25", "-x264-params", "slices=1:scenecut=0", "-b:v", "300k"}, args...)
	out, err := exec.Command(Tool(tb, "ffmpeg"), append(cmd, "-f", "h264", path)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	// Split at start codes (00 00 01, maybe after a zero); an access unit
	// ends with its one coded slice (types 1 and 5).
	var units [][]byte
	var cur []byte
	var starts []int
	for i := 0; i+3 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			starts = append(starts, i+3)
			i += 2
		}
	}
	for k, s := range starts {
		end := len(b)
		if k+1 < len(starts) {
			end = starts[k+1] - 3
			for end > s && b[end-1] == 0 {
				end-- // the next start code's leading zero
			}
		}
		nal := b[s:end]
		cur = append(append(cur, 0, 0, 0, 1), nal...)
		if t := nal[0] & 0x1f; t == 1 || t == 5 {
			units = append(units, cur)
			cur = nil
		}
	}
	return units
}

// StreamInfo is ffprobe's "codec WxH container" for path's first stream
// (e.g. "h264 320x240 matroska,webm").
func StreamInfo(tb testing.TB, path string) string {
	tb.Helper()
	out, err := exec.Command(Tool(tb, "ffprobe"), "-v", "error", "-select_streams", "0",
		"-show_entries", "stream=codec_name,width,height:format=format_name", "-of", "default=nw=1:nk=0", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	v := map[string]string{}
	for _, line := range strings.Fields(string(out)) {
		k, val, _ := strings.Cut(line, "=")
		v[k] = val
	}
	return v["codec_name"] + " " + v["width"] + "x" + v["height"] + " " + v["format_name"]
}
