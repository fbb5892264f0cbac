package recording

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/recording/mediatest"
)

// BenchmarkRestreamCPU is the CPU the restream's ffmpeg takes per second
// of a live meeting: 1, 2 and 4 people, each a camera (VP8 640x360 at 25
// fps, ~1 Mbit/s: a browser's top simulcast layer) and a microphone
// (Opus), composed to 1280x720 H.264 + AAC and pushed to an RTMP server
// (an ffmpeg copying it to a file). Each iteration streams for 20 s;
// ffmpeg's CPU (user + system, from /proc) over its last 15 s is
// reported as cpu-s/s, and what reached the server as out-s/s (1.0: the
// composition keeps up with real time). Run with -benchtime=1x.
// docs/benchmarks.md ("Restream") has figures.
func BenchmarkRestreamCPU(b *testing.B) {
	cam := mediatest.VP8Camera(b, 4)
	vp := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var video []*rtp.Packet
	for _, f := range cam {
		video = append(video, vp.Packetize(f, 3600)...)
	}
	audio := makeMedia(b, 4).audio
	for _, people := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("people=%d", people), func(b *testing.B) {
			var cpu, out float64
			for range b.N {
				c, o := restreamCPU(b, people, video, audio)
				cpu, out = cpu+c, out+o
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s/s")
			b.ReportMetric(out/float64(b.N), "out-s/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var pidInLog = regexp.MustCompile(`ffmpeg started.* pid=(\d+)`)

// restreamCPU streams people's tracks for 20 s and returns ffmpeg's CPU
// seconds per second over the last 15 s, and the seconds of stream the
// server got per second streamed.
func restreamCPU(b *testing.B, people int, video, audio []*rtp.Packet) (cpuPerSec, outPerSec float64) {
	const warmup, measured = 5 * time.Second, 15 * time.Second
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/bench", testkit.FreeTCPPort(b))
	server := listenRTMP(b, url, filepath.Join(b.TempDir(), "out.flv"))
	time.Sleep(300 * time.Millisecond) // the listener binds
	r := startFedRestream(b, RestreamOptions{URL: url}, people, video, audio)
	pid := func() int {
		m := pidInLog.FindAllStringSubmatch(r.log(), -1)
		if len(m) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n
	}
	time.Sleep(startSettle + warmup)
	p0, c0 := pid(), procCPU(b, pid())
	time.Sleep(measured)
	p1, c1 := pid(), procCPU(b, pid())
	r.Stop()
	r.stopFeeding()
	<-server.done
	if p0 != p1 || p0 == 0 {
		b.Fatalf("ffmpeg restarted while measured (pids %d, %d):\n%s", p0, p1, r.log())
	}
	got := mediatest.ProbeFile(b, server.out).Duration
	return (c1 - c0) / measured.Seconds(), got.Seconds() / (warmup + measured).Seconds()
}

// procCPU is process pid's user + system CPU seconds so far.
func procCPU(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (in parentheses, which may hold spaces):
	// state is the 3rd field, utime the 14th, stime the 15th.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
