package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/go-rtmp/handshake"

	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/internal/testkit"
)

const ffmpegBin = "/usr/bin/ffmpeg"

// rtmpTarget is a parley binary with RTMP on a loopback port and one
// stream key.
type rtmpTarget struct {
	p    *testkit.Parley
	addr string
	key  string
}

var streamKeyLine = regexp.MustCompile(`stream key:\s+(\S+)`)

func startRTMP(t *testing.T) rtmpTarget {
	t.Helper()
	if _, err := os.Stat(ffmpegBin); err != nil {
		t.Fatalf("ffmpeg is required for the RTMP hostile tests (%v): apt-get install -y ffmpeg", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreeTCPPort(t))
	p := start(t, map[string]any{"rtmp": map[string]any{"enabled": true, "listen": addr, "ffmpeg_path": ffmpegBin}})
	// The key is made the way an operator makes it, by a second process
	// on the same data directory.
	cmd := exec.Command(parley.Bin(t), "ingress", "create", "--config", p.ConfigPath, "--room", "stage", "--name", "Cam")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	m := streamKeyLine.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("parley ingress create: %v\n%s", err, out)
	}
	return rtmpTarget{p: p, addr: addr, key: string(m[1])}
}

// publish runs ffmpeg publishing a test pattern and a tone for seconds,
// as OBS would (H.264 baseline without B-frames, AAC).
func (r rtmpTarget) publish(t *testing.T, seconds int) *testkit.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	t.Cleanup(cancel)
	return testkit.StartProcess(t, ctx, ffmpegBin, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-f", "flv", "rtmp://"+r.addr+"/live/"+r.key)
}

func (r rtmpTarget) metric(t *testing.T, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := promtext.Scrape(ctx, r.p.URL+"/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return s[series]
}

const (
	videoBytes = `parley_rtmp_received_bytes_total{kind="video"}`
	liveGauge  = `parley_rtmp_active_streams`
)

// waitLive waits until the publish is live and video flows.
func (r rtmpTarget) waitLive(t *testing.T, ff *testkit.Process) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, "ffmpeg's publish to go live", func() bool {
		select {
		case <-ff.Done():
			out, err := ff.Wait()
			t.Fatalf("ffmpeg ended before its publish went live: %v\n%s", err, out)
		default:
		}
		return r.metric(t, liveGauge) == 1 && r.metric(t, videoBytes) > 0
	})
}

// finished checks ffmpeg published to the end without an error.
func finished(t *testing.T, ff *testkit.Process) {
	t.Helper()
	if out, err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg's publish failed under attack: %v\n%s", err, out)
	}
}

// attackerAddr is a loopback source address: attacks come from 127.0.0.2
// and up unless a test says otherwise, the publisher from 127.0.0.1.
func attackerAddr(i int) string {
	return fmt.Sprintf("127.0.0.%d", 2+i%200)
}

// chunkHeader is a type-0 RTMP chunk header on a one-byte chunk stream id.
func chunkHeader(csid int, typeID byte, streamID, length uint32) []byte {
	b := []byte{byte(csid), 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typeID}
	return binary.LittleEndian.AppendUint32(b, streamID)
}

// TestRTMPMemoryAttack is issue #17 finding 1: connections that never
// send connect declare 16 MiB messages on many chunk streams and send as
// much of them as they can. The server's RSS must stay within 30 MiB of
// where it was, and a real ffmpeg publish must run through it.
func TestRTMPMemoryAttack(t *testing.T) {
	r := startRTMP(t)
	ff := r.publish(t, 10)
	r.waitLive(t, ff)
	// A quiet second: the publish's own buffers settle, and its video
	// rate is the yardstick for the rate under attack.
	quietStart := r.metric(t, videoBytes)
	time.Sleep(time.Second)
	rss := watchMem(t, r.p)
	bytesBefore := r.metric(t, videoBytes)
	quietRate := bytesBefore - quietStart
	attackStart := time.Now()

	const (
		attackers     = 24
		connsEach     = 20              // per attacker, at most
		sendEach      = 8 << 20         // bytes per connection, at most
		attackFor     = 3 * time.Second // in all
		chunkStreams  = 32
		attackerChunk = 65536 // rtmp.max_chunk_size's default
	)
	deadline := time.Now().Add(attackFor)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent int64
	for a := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range connsEach {
				if time.Now().After(deadline) {
					return
				}
				n := memoryAttackConn(r.addr, attackerAddr(a), deadline, chunkStreams, attackerChunk, sendEach)
				mu.Lock()
				sent += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	time.Sleep(time.Second) // let the server react to the last of it
	t.Logf("attackers wrote %d MiB to their sockets", sent>>20)
	rss.checkWithin(t, 30<<20)
	// Video kept flowing at no less than half its quiet rate.
	got, secs := r.metric(t, videoBytes)-bytesBefore, time.Since(attackStart).Seconds()
	t.Logf("video: %.0f B/s quiet, %.0f B/s under attack", quietRate, got/secs)
	if got < quietRate*secs/2 {
		t.Errorf("the publish received %.0f video bytes in %.1f s of attack, against %.0f B/s before it", got, secs, quietRate)
	}
	finished(t, ff)
}

// memoryAttackConn completes the handshake, raises the chunk size, then
// declares a 16 MiB video message on each of chunkStreams chunk streams
// and fills them round-robin, a chunk at a time, until the server closes
// the connection, sendEach bytes are out or the deadline passes. It
// returns the bytes it got out.
func memoryAttackConn(addr string, local string, deadline time.Time, chunkStreams, chunkSize, sendEach int) int64 {
	c, err := dialFrom(context.Background(), local, addr)
	if err != nil {
		return 0
	}
	_ = c.SetDeadline(deadline)
	if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
		c.Close()
		return 0
	}
	// Drain what the server says so its writes never block on us; the
	// reader ends when the connection is closed on the way out.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, c)
	}()
	defer func() {
		c.Close()
		<-drained
	}()
	setChunk := append(chunkHeader(2, 1, 0, 4), binary.BigEndian.AppendUint32(nil, uint32(chunkSize))...)
	if _, err := c.Write(setChunk); err != nil {
		return 0
	}
	payload := make([]byte, chunkSize)
	var out int64
	for round := 0; out < int64(sendEach); round++ {
		for cs := 3; cs < 3+chunkStreams && out < int64(sendEach); cs++ {
			var hdr []byte
			if round == 0 {
				hdr = chunkHeader(cs, 9, 0, 0xffffff)
			} else {
				hdr = []byte{0xc0 | byte(cs)} // type 3: the next chunk
			}
			n, err := c.Write(append(hdr, payload...))
			out += int64(n)
			if err != nil {
				return out
			}
		}
	}
	return out
}

// TestRTMPSlotAttack is issue #17 finding 4: silent connections take
// every slot. 64 come from the publisher's own address and 64 from
// another; ffmpeg must still publish.
func TestRTMPSlotAttack(t *testing.T) {
	r := startRTMP(t)
	for _, local := range []string{"127.0.0.1", attackerAddr(0)} {
		for range 64 {
			c, err := dialFrom(context.Background(), local, r.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	testkit.Eventually(t, 5*time.Second, "the server to take or evict all 128", func() bool {
		return r.metric(t, "parley_rtmp_connections")+
			r.metric(t, `parley_rtmp_refused_publishes_total{reason="evicted_unauthenticated_per_ip"}`)+
			r.metric(t, `parley_rtmp_refused_publishes_total{reason="too_many_connections"}`) >= 128
	})
	ff := r.publish(t, 4)
	r.waitLive(t, ff)
	finished(t, ff)
	if n := r.metric(t, "parley_rtmp_unauthenticated_connections"); n > 8 {
		t.Errorf("%v unauthenticated connections held, want at most 2 addresses x 4", n)
	}
}

// TestRTMPJunkClosesOnlyThatConnection: junk and malformed chunks close
// the connection that sent them, within seconds, and nothing else: a live
// publish goes on and the server stays up.
func TestRTMPJunkClosesOnlyThatConnection(t *testing.T) {
	r := startRTMP(t)
	ff := r.publish(t, 8)
	r.waitLive(t, ff)
	rng := rand.New(rand.NewPCG(17, 4))
	junk := make([]byte, 8<<10)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	connectWithArray := []byte{0x02, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
		0x03, 0, 1, 'x', 0x0a, 0x7f, 0xff, 0xff, 0xff} // a strict array of 2^31-1 elements
	cases := []struct {
		name      string
		handshake bool
		send      []byte
	}{
		{"random bytes instead of a handshake", false, junk},
		{"random bytes after the handshake", true, junk},
		{"type-3 chunk on a new chunk stream", true, []byte{0xc4, 1, 2, 3, 4}},
		{"three-byte chunk stream id", true, append([]byte{0x01, 0xff, 0xff}, make([]byte, 64)...)},
		{"connect declaring a 2^31-1 element array", true, append(chunkHeader(3, 20, 0, uint32(len(connectWithArray))), connectWithArray...)},
		{"set chunk size 0", true, append(chunkHeader(2, 1, 0, 4), 0, 0, 0, 0)},
	}
	for i, tc := range cases {
		c, err := dialFrom(context.Background(), attackerAddr(i), r.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.handshake {
			if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
				t.Fatalf("%s: handshake: %v", tc.name, err)
			}
		}
		_, _ = c.Write(tc.send) // the server may close before reading it all
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the server kept the connection open for 5 s", tc.name)
		}
		c.Close()
		select {
		case <-r.p.Exited():
			t.Fatalf("%s: parley exited", tc.name)
		default:
		}
	}
	before := r.metric(t, videoBytes)
	testkit.Eventually(t, 5*time.Second, "video to keep flowing", func() bool { return r.metric(t, videoBytes) > before })
	finished(t, ff)
}
