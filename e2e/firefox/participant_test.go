package firefox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// page is one browser tab in a call, whatever the engine.
type page interface {
	// evalJSON evaluates expr (awaiting a promise) and returns its value
	// as JSON.
	evalJSON(ctx context.Context, expr string) ([]byte, error)
	// click is a real mouse click (a user gesture) at viewport CSS
	// pixels.
	click(ctx context.Context, x, y int) error
	console() []string
	close()
}

// participant is one person in the call.
type participant struct {
	t      *testing.T // the (sub)test currently driving it
	Name   string
	Engine string // "firefox" or "chromium"
	page   page
}

// clientState is the part of window.parley.state() the tests read.
type clientState struct {
	Status string `json:"status"`
	Self   *struct {
		Sid string `json:"sid"`
	} `json:"self"`
	Participants []struct {
		Sid  string `json:"sid"`
		Name string `json:"name"`
	} `json:"participants"`
	RemoteTracks []string `json:"remoteTracks"`
	Publisher    string   `json:"publisher"`
	Subscriber   string   `json:"subscriber"`
}

// trackStat is one entry of window.parley.stats().
type trackStat struct {
	Participant     string `json:"participant"`
	Name            string `json:"name"`
	TrackSid        string `json:"trackSid"`
	Source          string `json:"source"`
	Kind            string `json:"kind"`
	FramesDecoded   int64  `json:"framesDecoded"`
	FrameWidth      int    `json:"frameWidth"`
	PacketsReceived int64  `json:"packetsReceived"`
}

func eval[T any](ctx context.Context, p *participant, expr string) (T, error) {
	var v T
	raw, err := p.page.evalJSON(ctx, expr)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%s: decode %.300s: %w", p.Name, raw, err)
	}
	return v, nil
}

func (p *participant) state(ctx context.Context) (clientState, error) {
	return eval[clientState](ctx, p, `window.parley.state()`)
}

func (p *participant) stats(ctx context.Context) ([]trackStat, error) {
	return eval[[]trackStat](ctx, p, `window.parley.stats()`)
}

func (p *participant) tiles(ctx context.Context) ([]string, error) {
	return eval[[]string](ctx, p,
		`[...document.querySelectorAll('[data-testid="tile-name"]')].map(e => e.textContent)`)
}

// clickTestID clicks a control through the DOM; the tests only click controls
// that need no user gesture (leave, rejoin).
func (p *participant) clickTestID(ctx context.Context, testid string) error {
	ok, err := eval[bool](ctx, p, fmt.Sprintf(
		`(() => { const e = document.querySelector('[data-testid=%q]'); if (!e) return false; e.click(); return true; })()`, testid))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: no element with data-testid %q", p.Name, testid)
	}
	return nil
}

// joinLink is the meeting link a guest opens: the page fetches a dev
// token and joins at once.
func joinLink(srvURL, room, name string) string {
	return fmt.Sprintf("%s/r/%s?name=%s", srvURL, url.PathEscape(room), url.QueryEscape(name))
}

// waitJoined waits until the client is in the room and publishing.
func (p *participant) waitJoined(ctx context.Context) clientState {
	p.t.Helper()
	return p.waitState(ctx, 45*time.Second, "joined and publishing", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
}

func (p *participant) waitState(ctx context.Context, limit time.Duration, what string, ok func(clientState) bool) clientState {
	p.t.Helper()
	var last clientState
	var lastErr error
	if !poll(ctx, limit, func() bool {
		last, lastErr = p.state(ctx)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s (%s): not %s within %v: state %+v (err %v)", p.Name, p.Engine, what, limit, last, lastErr)
	}
	return last
}

func (p *participant) waitTiles(ctx context.Context, limit time.Duration, what string, ok func([]string) bool) {
	p.t.Helper()
	var last []string
	var lastErr error
	if !poll(ctx, limit, func() bool {
		last, lastErr = p.tiles(ctx)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s (%s): grid never showed %s within %v: tiles %q (err %v)", p.Name, p.Engine, what, limit, last, lastErr)
	}
}

// mediaLimit bounds the wait for decoded media: fake devices decode
// within a few seconds here; the margin is for a loaded 2-core machine
// running two browser engines.
const mediaLimit = 45 * time.Second

// waitSeesAndHears waits until p decodes camera video from, and receives
// audio packets from, the participant called other, and returns those
// two tracks' stats.
func (p *participant) waitSeesAndHears(ctx context.Context, other string) []trackStat {
	p.t.Helper()
	var last []trackStat
	var lastErr error
	var found []trackStat
	if !poll(ctx, mediaLimit, func() bool {
		last, lastErr = p.stats(ctx)
		if lastErr != nil {
			return false
		}
		var video, audio *trackStat
		for i, s := range last {
			if s.Name != other {
				continue
			}
			if s.Kind == "video" && s.Source == "camera" && s.FramesDecoded > 0 && video == nil {
				video = &last[i]
			}
			if s.Kind == "audio" && s.PacketsReceived > 0 && audio == nil {
				audio = &last[i]
			}
		}
		if video == nil || audio == nil {
			return false
		}
		found = []trackStat{*video, *audio}
		return true
	}) {
		p.t.Fatalf("%s (%s): no decoded video and audio packets from %s within %v: stats %+v (err %v)",
			p.Name, p.Engine, other, mediaLimit, last, lastErr)
	}
	return found
}

// assertRising samples stats again after a pause and checks that each
// given track decoded more frames (video) or received more packets
// (audio): media flows now, it did not just arrive once.
func (p *participant) assertRising(ctx context.Context, before []trackStat) {
	p.t.Helper()
	time.Sleep(3 * time.Second)
	now, err := p.stats(ctx)
	if err != nil {
		p.t.Fatalf("%s: stats: %v", p.Name, err)
	}
	for _, b := range before {
		i := slices.IndexFunc(now, func(s trackStat) bool {
			return s.Participant == b.Participant && s.TrackSid == b.TrackSid
		})
		if i < 0 {
			p.t.Errorf("%s (%s): %s track %s from %s vanished", p.Name, p.Engine, b.Kind, b.TrackSid, b.Name)
			continue
		}
		a := now[i]
		switch {
		case b.Kind == "video" && a.FramesDecoded <= b.FramesDecoded:
			p.t.Errorf("%s (%s): video from %s stalled: framesDecoded %d -> %d", p.Name, p.Engine, b.Name, b.FramesDecoded, a.FramesDecoded)
		case b.Kind == "audio" && a.PacketsReceived <= b.PacketsReceived:
			p.t.Errorf("%s (%s): audio from %s stalled: packetsReceived %d -> %d", p.Name, p.Engine, b.Name, b.PacketsReceived, a.PacketsReceived)
		default:
			p.t.Logf("%s (%s) from %s: %s framesDecoded %d -> %d (width %d), packetsReceived %d -> %d",
				p.Name, p.Engine, b.Name, b.Kind, b.FramesDecoded, a.FramesDecoded, a.FrameWidth, b.PacketsReceived, a.PacketsReceived)
		}
	}
}

// checkConsole fails the test for uncaught page errors and CSP
// violations: client bugs even when the call itself worked.
func (p *participant) checkConsole(t *testing.T) {
	for _, line := range p.page.console() {
		if strings.Contains(line, "javascript error:") || strings.Contains(line, "exception:") ||
			strings.Contains(line, "Content-Security-Policy") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("%s (%s): page error: %s", p.Name, p.Engine, line)
		}
	}
	if t.Failed() {
		t.Logf("console of %s (%s):\n%s", p.Name, p.Engine, strings.Join(p.page.console(), "\n"))
	}
}

// poll calls f every 250 ms until it reports true, limit passes or ctx
// ends, and says whether f succeeded.
func poll(ctx context.Context, limit time.Duration, f func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// testContext ends at max or shortly before the test binary's deadline,
// so cleanup still has time to stop the browsers and the server.
func testContext(t *testing.T, max time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	t.Cleanup(cancel)
	if dl, ok := t.Deadline(); ok {
		ctx2, cancel2 := context.WithDeadline(ctx, dl.Add(-30*time.Second))
		t.Cleanup(cancel2)
		return ctx2
	}
	return ctx
}

// playback is what the page's media elements show for one remote
// participant: its camera tile's <video> and every remote <audio>.
type playback struct {
	Video *struct {
		Paused bool    `json:"paused"`
		Width  int     `json:"width"`
		Time   float64 `json:"time"`
	} `json:"video"`
	Audio []struct {
		Paused bool `json:"paused"`
		Live   bool `json:"live"`
	} `json:"audio"`
	Notice string `json:"notice"`
}

// waitPlaying waits until the other participant's camera tile plays
// video with a size and a moving clock, and every remote audio element
// plays a live track: what the person in front of the page sees and
// hears, beyond decoder counters. A browser that blocks autoplay
// without a user gesture fails here (the page would ask for a click).
func (p *participant) waitPlaying(ctx context.Context, other string) {
	p.t.Helper()
	st, err := p.state(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	sid := ""
	for _, o := range st.Participants {
		if o.Name == other {
			sid = o.Sid
		}
	}
	if sid == "" {
		p.t.Fatalf("%s (%s): %s not in the roster: %+v", p.Name, p.Engine, other, st.Participants)
	}
	expr := fmt.Sprintf(`(() => {
		const tile = document.querySelector('[data-testid="tile"][data-participant=%q][data-source="camera"]');
		const v = tile && tile.querySelector('video');
		const banner = document.querySelector('[data-testid="banner"]');
		return {
			video: v ? {paused: v.paused, width: v.videoWidth, time: v.currentTime} : null,
			audio: [...document.querySelectorAll('[data-testid="remote-audio"]')].map(a => ({
				paused: a.paused,
				live: !!a.srcObject && a.srcObject.getAudioTracks().some(t => t.readyState === 'live'),
			})),
			notice: banner && !banner.hidden ? banner.textContent : '',
		};
	})()`, sid)
	var last playback
	var lastErr error
	if !poll(ctx, 20*time.Second, func() bool {
		last, lastErr = eval[playback](ctx, p, expr)
		if lastErr != nil || last.Video == nil || last.Video.Paused || last.Video.Width == 0 || last.Video.Time == 0 || len(last.Audio) == 0 {
			return false
		}
		for _, a := range last.Audio {
			if a.Paused || !a.Live {
				return false
			}
		}
		return true
	}) {
		p.t.Fatalf("%s (%s): %s's video and audio not playing within 20 s: %+v video %+v (err %v)",
			p.Name, p.Engine, other, last, last.Video, lastErr)
	}
}

// candidate is one side of window.parley.transport()'s selected pair.
type candidate struct {
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
}

// checkTransport reads window.parley.transport(), the diagnostic that
// shows which candidate pair each PeerConnection uses. It is built on
// getStats, whose report differs between engines (Firefox has no
// "transport" entry pointing at the selected pair), so both engines must
// show a succeeded pair whose remote end is the SFU's UDP port on
// 127.0.0.1. The remote may be typed "prflx": a browser that hears the
// SFU's connectivity check before the trickled candidate arrives learns
// the address from the check.
func (p *participant) checkTransport(ctx context.Context, sfuUDPPort int) {
	p.t.Helper()
	type pair struct {
		State  string     `json:"state"`
		Local  *candidate `json:"local"`
		Remote *candidate `json:"remote"`
	}
	got, err := eval[map[string]*pair](ctx, p, `window.parley.transport()`)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, target := range []string{"publisher", "subscriber"} {
		pr := got[target]
		switch {
		case pr == nil || pr.Local == nil || pr.Remote == nil:
			p.t.Errorf("%s (%s): transport().%s = %+v, want the selected candidate pair", p.Name, p.Engine, target, pr)
		case pr.State != "succeeded" || pr.Local.Address == "" || pr.Local.Port == 0 ||
			pr.Remote.Address != "127.0.0.1" || pr.Remote.Port != sfuUDPPort || pr.Remote.Protocol != "udp":
			p.t.Errorf("%s (%s): transport().%s = state %q local %+v remote %+v, want a succeeded pair to udp 127.0.0.1:%d",
				p.Name, p.Engine, target, pr.State, *pr.Local, *pr.Remote, sfuUDPPort)
		}
	}
}
