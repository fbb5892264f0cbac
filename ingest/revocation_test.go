package ingest

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestRevokeEndsLiveRTMPStream: ffmpeg publishes with a key; the key is
// revoked in the store (as `parley ingress revoke` does from another
// process); the publish ends within the check interval, ffmpeg is told
// and disconnected, the participant leaves, and a second stream on
// another key is untouched.
func TestRevokeEndsLiveRTMPStream(t *testing.T) {
	requireFFmpeg(t)
	ctx := context.Background()
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	doomed, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Doomed"})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Kept"})
	if err != nil {
		t.Fatal(err)
	}
	s := startSFU(t)
	dir := &fakeDir{}
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 0
	cfg.KeyCheckInterval = 200 * time.Millisecond
	svc, reg := startService(t, cfg, Deps{Media: s, Keys: ks, Directory: dir})
	addr := startRTMP(t, ks, svc)
	v := newViewer(t, s, "stage", "PA_viewer")

	p := startFFmpegPublish(t, "rtmp://"+addr+"/live/"+doomed.Secret, "30")
	other := startFFmpegPublish(t, "rtmp://"+addr+"/live/"+kept.Secret, "30")
	testkit.Eventually(t, 20*time.Second, "both streams live and video flowing", func() bool {
		return len(svc.Streams()) == 2 && v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 60
	})
	if _, err := ks.Revoke(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stderr, err := p.Wait()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("ffmpeg kept publishing with a revoked key:\n%s", stderr)
	}
	if took > 10*time.Second {
		t.Fatalf("the revoked stream ended after %v", took)
	}
	testkit.Eventually(t, 5*time.Second, "the doomed participant leaves", func() bool {
		st := svc.Streams()
		return len(st) == 1 && st[0].Name == "Kept" && dir.count("remove ") == 1
	})
	if n := counterValue(t, reg, "parley_ingest_revoked_live_total", "rtmp"); n != 1 {
		t.Fatalf("revoked_live counted %v, want 1", n)
	}
	select {
	case <-other.Done():
		out, err := other.Wait()
		t.Fatalf("the stream on the other key ended too: %v\n%s", err, out)
	default:
	}
	// Reconnecting with the revoked key is refused.
	stderr, err = startFFmpegPublish(t, "rtmp://"+addr+"/live/"+doomed.Secret, "2").Wait()
	if err == nil || strings.Count(strings.Join(dir.all(), "\n"), "add ") != 2 {
		t.Fatalf("reconnect with the revoked key: err %v, directory %v\n%s", err, dir.all(), stderr)
	}
}

// TestRevokeEndsLiveWHIPStream: a WHIP session whose key is revoked is
// closed: its participant leaves and the resource is gone.
func TestRevokeEndsLiveWHIPStream(t *testing.T) {
	ctx := context.Background()
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	key, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Browser"})
	if err != nil {
		t.Fatal(err)
	}
	svc, dir, base, v := startWHIP(t, ks, func(c *Config) {
		c.ReconnectGrace = 0
		c.KeyCheckInterval = 200 * time.Millisecond
	})
	c := newWHIPClient(t)
	c.publish(base, key.Secret)
	testkit.Eventually(t, 15*time.Second, "viewer receives video over WHIP", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 20
	})
	pid := svc.Streams()[0].ParticipantID
	if _, err := ks.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the participant leaves", func() bool {
		return len(svc.Streams()) == 0 && dir.count("remove stage "+pid) == 1
	})
	if resp, _ := whipRequest(t, http.MethodDelete, base+c.location, key.Secret, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE after revocation: %d, want 404 (session already ended)", resp.StatusCode)
	}
	testkit.Eventually(t, 10*time.Second, "publisher connection closed", func() bool {
		s := c.pc.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	})
}

// TestRevokeEndsAudioOnlyRTMPStream: a publish without video learns of the
// revocation from its audio path (the transcoder's writes fail) and ends
// too.
func TestRevokeEndsAudioOnlyRTMPStream(t *testing.T) {
	requireFFmpeg(t)
	ctx := context.Background()
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	key, err := ks.Create(ctx, KeyRequest{Room: "radio", Name: "Radio"})
	if err != nil {
		t.Fatal(err)
	}
	s := startSFU(t)
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 0
	cfg.KeyCheckInterval = 200 * time.Millisecond
	svc, _ := startService(t, cfg, Deps{Media: s, Keys: ks, Directory: &fakeDir{}})
	addr := startRTMP(t, ks, svc)
	v := newViewer(t, s, "radio", "PA_listener")
	pctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	p := testkit.StartProcess(t, pctx, ffmpegBin, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "30",
		"-c:a", "aac", "-ac", "2", "-f", "flv", "rtmp://"+addr+"/live/"+key.Secret)
	testkit.Eventually(t, 20*time.Second, "the listener hears Opus", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 50
	})
	if _, err := ks.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the audio-only publish outlived its key's revocation by 10 s")
	}
	if out, err := p.Wait(); err == nil {
		t.Fatalf("ffmpeg ended without an error:\n%s", out)
	}
	testkit.Eventually(t, 5*time.Second, "the stream is gone", func() bool { return len(svc.Streams()) == 0 })
}
