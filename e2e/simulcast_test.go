package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// outboundStat mirrors one entry of window.parley.outbound().
type outboundStat struct {
	TrackID       string `json:"trackId"`
	Kind          string `json:"kind"`
	Rid           string `json:"rid"`
	Active        bool   `json:"active"`
	FrameWidth    int    `json:"frameWidth"`
	FrameHeight   int    `json:"frameHeight"`
	FramesEncoded int64  `json:"framesEncoded"`
	BytesSent     int64  `json:"bytesSent"`
}

func (p *participant) outbound(ctx context.Context) ([]outboundStat, error) {
	return Eval[[]outboundStat](ctx, p.B, `window.parley.outbound()`)
}

// camSize is the size of the local camera track (the fake device's).
func (p *participant) camSize(ctx context.Context) (int, int) {
	p.t.Helper()
	wh, err := Eval[[]int](ctx, p.B, `(() => {
		const t = [...document.querySelectorAll('video')].map(v => v.srcObject).filter(Boolean)
			.flatMap(s => s.getVideoTracks()).find(t => t.label && t.readyState === 'live');
		const s = t ? t.getSettings() : {};
		return [s.width || 0, s.height || 0];
	})()`)
	if err != nil || len(wh) != 2 || wh[0] == 0 {
		p.t.Fatalf("%s: camera size: %v %v", p.Name, wh, err)
	}
	return wh[0], wh[1]
}

// TestSimulcastCamera: a Chromium publisher sends its camera in three
// simulcast layers (rids q, h, f), and a subscriber whose tile is larger
// than the h layer decodes the full size. Bob's window is 1920x1080, so
// each of the two tiles (side by side, 16:9) is about 940 px wide: only
// the f layer covers it. (In a 1280x720 window the tiles are narrower
// than 640 px and h is the right layer.)
func TestSimulcastCamera(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-simulcast"
	ada := joinHD(t, ctx, srv, room, "Ada")
	bob := openMeeting(t, ctx, srv, room, "Bob", "", BrowserOptions{Width: 1920, Height: 1080})
	w, h := ada.camSize(ctx)
	t.Logf("Ada's camera: %dx%d", w, h)

	var last []outboundStat
	ok := poll(ctx, mediaLimit, func() bool {
		var err error
		last, err = ada.outbound(ctx)
		if err != nil {
			return false
		}
		sending := map[string]outboundStat{}
		for _, s := range last {
			if s.Kind == "video" && s.Active && s.FramesEncoded > 0 {
				sending[s.Rid] = s
			}
		}
		return len(sending) == 3 && sending["q"].FrameWidth == w/4 &&
			sending["h"].FrameWidth == w/2 && sending["f"].FrameWidth == w
	})
	if !ok {
		t.Fatalf("Ada: not sending rids q, h, f at %d, %d, %d wide within %v: %s", w/4, w/2, w, mediaLimit, describeOutbound(last))
	}
	t.Logf("Ada sends %s", describeOutbound(last))

	stats := bob.waitStats(ctx, mediaLimit, fmt.Sprintf("Ada's camera decoded at %dx%d", w, h), func(stats []trackStat) bool {
		cam := videosFrom(stats, "camera")
		return len(cam) == 1 && cam[0].FrameWidth == w && cam[0].FrameHeight == h
	})
	bob.assertFlowing(ctx, videosFrom(stats, "camera"))
	bob.shot(ctx, "full layer")
}

func describeOutbound(list []outboundStat) string {
	sort.Slice(list, func(i, j int) bool { return list[i].Rid < list[j].Rid })
	out := ""
	for _, s := range list {
		out += fmt.Sprintf("[%s rid=%q active=%v %dx%d frames=%d bytes=%d] ", s.Kind, s.Rid, s.Active, s.FrameWidth, s.FrameHeight, s.FramesEncoded, s.BytesSent)
	}
	return out
}

// TestSimulcastFollowsTheTile: the subscriber's video_view reports pick
// the layer. A small tile gets the q layer, a hidden one no video at all,
// and shown again at full size the video resumes. Dynacast: while Bob,
// Ada's only viewer, needs only q, Ada's browser pauses h and f, and
// resumes them when his tile grows.
func TestSimulcastFollowsTheTile(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-simulcast-view"
	ada := joinHD(t, ctx, srv, room, "Ada")
	bob := join(t, ctx, srv, room, "Bob")
	w, h := ada.camSize(ctx)
	camOf := func(stats []trackStat) (trackStat, bool) {
		for _, s := range stats {
			if s.Kind == "video" && s.Source == "camera" && s.Name == "Ada" {
				return s, true
			}
		}
		return trackStat{}, false
	}
	bob.waitStats(ctx, mediaLimit, "Ada's camera decoding", func(stats []trackStat) bool {
		s, ok := camOf(stats)
		return ok && s.FramesDecoded > 0
	})
	// style sets CSS properties on Bob's video tiles of other
	// participants (through the CSSOM: the page's CSP refuses inline
	// styles); an empty map clears them.
	style := func(props map[string]string) {
		t.Helper()
		js, _ := json.Marshal(props)
		if _, err := Eval[bool](ctx, bob.B, fmt.Sprintf(`(() => {
			const props = %s;
			for (const v of document.querySelectorAll('[data-self="false"] video')) {
				for (const p of ['width', 'height', 'display']) v.style.removeProperty(p);
				for (const [k, val] of Object.entries(props)) v.style.setProperty(k, val, 'important');
			}
			return true;
		})()`, js)); err != nil {
			t.Fatal(err)
		}
	}

	// sends waits until the rids of Ada's active camera encodings,
	// sorted, are what want says.
	sends := func(what string, want func(active string) bool) {
		t.Helper()
		var last []outboundStat
		if !poll(ctx, 15*time.Second, func() bool {
			var err error
			if last, err = ada.outbound(ctx); err != nil {
				return false
			}
			var active []string
			for _, o := range last {
				if o.Kind == "video" && o.Rid != "" && o.Active {
					active = append(active, o.Rid)
				}
			}
			sort.Strings(active)
			return want(strings.Join(active, ","))
		}) {
			t.Fatalf("%s: Ada's active encodings: %s", what, describeOutbound(last))
		}
	}

	style(map[string]string{"width": "160px", "height": "90px"})
	bob.waitStats(ctx, mediaLimit, fmt.Sprintf("Ada's camera at the q layer (%d wide)", w/4), func(stats []trackStat) bool {
		s, ok := camOf(stats)
		return ok && s.FrameWidth == w/4 && s.FrameHeight == h/4
	})
	sends("Bob's tile small: only q", func(a string) bool { return a == "q" })

	style(map[string]string{"display": "none"})
	time.Sleep(time.Second) // the report, then the last frames in flight
	before, _ := bob.stats(ctx)
	time.Sleep(2 * time.Second)
	after, _ := bob.stats(ctx)
	b, _ := camOf(before)
	a, _ := camOf(after)
	if a.FramesDecoded != b.FramesDecoded {
		t.Errorf("hidden tile: framesDecoded %d -> %d, want no new frames", b.FramesDecoded, a.FramesDecoded)
	}

	style(map[string]string{})
	// A tile of this window needs h (or f): resumed at once.
	sends("Bob's tile large again: h or f resumed", func(a string) bool { return a == "h,q" || a == "f,h,q" })
	bob.waitStats(ctx, mediaLimit, fmt.Sprintf("Ada's camera back at %dx%d", w, h), func(stats []trackStat) bool {
		s, ok := camOf(stats)
		return ok && s.FramesDecoded > a.FramesDecoded && s.FrameWidth > w/4
	})
	bob.assertFlowing(ctx, videosFrom(after, "camera"))
}

// TestSimulcastScreenShare: Chromium publishes a screen share in two
// layers at the capture's full size (rids q and f), q at about 5 frames
// a second, and a subscriber that shows the share large (Bob, in a
// 1920x1080 window) decodes it at full size.
func TestSimulcastScreenShare(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-simulcast-screen"
	ada := join(t, ctx, srv, room, "Ada")
	bob := openMeeting(t, ctx, srv, room, "Bob", "", BrowserOptions{Width: 1920, Height: 1080})
	if err := ada.B.Click(ctx, `[data-testid="screen-toggle"]`); err != nil {
		t.Fatal(err)
	}
	// screenLayers is Ada's screen track's encodings by rid: the video
	// track with two encodings (her camera has three).
	screenLayers := func(list []outboundStat) map[string]outboundStat {
		byTrack := map[string]map[string]outboundStat{}
		for _, s := range list {
			if s.Kind != "video" {
				continue
			}
			if byTrack[s.TrackID] == nil {
				byTrack[s.TrackID] = map[string]outboundStat{}
			}
			byTrack[s.TrackID][s.Rid] = s
		}
		for _, m := range byTrack {
			if _, ok := m["h"]; !ok && len(m) == 2 {
				return m
			}
		}
		return nil
	}
	var last []outboundStat
	var first map[string]outboundStat
	ok := poll(ctx, mediaLimit, func() bool {
		var err error
		if last, err = ada.outbound(ctx); err != nil {
			return false
		}
		m := screenLayers(last)
		q, f := m["q"], m["f"]
		if q.FramesEncoded == 0 || f.FramesEncoded == 0 || q.FrameWidth == 0 || q.FrameWidth != f.FrameWidth {
			return false
		}
		first = m
		return true
	})
	if !ok {
		t.Fatalf("Ada: her screen share is not sent as rids q and f at one size within %v: %s", mediaLimit, describeOutbound(last))
	}
	const window = 10 * time.Second
	time.Sleep(window)
	last, err := ada.outbound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := screenLayers(last)
	qFPS := float64(now["q"].FramesEncoded-first["q"].FramesEncoded) / window.Seconds()
	fFPS := float64(now["f"].FramesEncoded-first["f"].FramesEncoded) / window.Seconds()
	t.Logf("Ada's screen share: q %dx%d at %.1f fps, f %dx%d at %.1f fps", now["q"].FrameWidth, now["q"].FrameHeight, qFPS,
		now["f"].FrameWidth, now["f"].FrameHeight, fFPS)
	// maxFramerate 5; a second of slack for the sampling.
	if qFPS > 6.5 {
		t.Errorf("Ada's screen layer q runs at %.1f fps, want at most 5", qFPS)
	}
	w := now["f"].FrameWidth
	stats := bob.waitStats(ctx, mediaLimit, fmt.Sprintf("Ada's screen decoded %d wide", w), func(stats []trackStat) bool {
		s := videosFrom(stats, "screen")
		return len(s) == 1 && s[0].FrameWidth == w
	})
	bob.assertFlowing(ctx, videosFrom(stats, "screen"))
}
