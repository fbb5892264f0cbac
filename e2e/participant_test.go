package e2e

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// outDir collects screenshots for people to look at; it is gitignored.
const outDir = "testdata/out"

// participant is one browser in a call.
type participant struct {
	t     *testing.T // the test (or subtest) currently driving it
	owner *testing.T // the test that started it and closes it
	Name  string
	B     *Browser
}

// clientState mirrors window.parley.state() (web/static/call.js).
type clientState struct {
	Status string `json:"status"`
	Room   string `json:"room"`
	Self   *struct {
		Sid  string `json:"sid"`
		Name string `json:"name"`
	} `json:"self"`
	Participants []struct {
		Sid      string `json:"sid"`
		Identity string `json:"identity"`
		Name     string `json:"name"`
		Tracks   []struct {
			Sid    string `json:"sid"`
			Kind   string `json:"kind"`
			Source string `json:"source"`
		} `json:"tracks"`
	} `json:"participants"`
	RemoteTracks []string `json:"remoteTracks"`
	Publisher    string   `json:"publisher"`
	Subscriber   string   `json:"subscriber"`
	Signaling    string   `json:"signaling"`
	Reconnects   int      `json:"reconnects"`
	IceRestarts  int      `json:"iceRestarts"`
}

// trackStat mirrors one entry of window.parley.stats().
type trackStat struct {
	Participant     string `json:"participant"`
	Name            string `json:"name"`
	TrackSid        string `json:"trackSid"`
	Source          string `json:"source"`
	Kind            string `json:"kind"`
	FramesDecoded   int64  `json:"framesDecoded"`
	FrameWidth      int    `json:"frameWidth"`
	FrameHeight     int    `json:"frameHeight"`
	PacketsReceived int64  `json:"packetsReceived"`
	BytesReceived   int64  `json:"bytesReceived"`
}

func (s trackStat) key() string { return s.Participant + "|" + s.TrackSid }

// join starts a browser for name and opens the room's meeting link, which
// fetches a dev token and joins directly.
func join(t *testing.T, ctx context.Context, srv *server, room, name string) *participant {
	t.Helper()
	return joinQuery(t, ctx, srv, room, name, "")
}

// joinDebug is join with the page's ?debug switch, which adds the fault
// simulations of window.parley.debug.
func joinDebug(t *testing.T, ctx context.Context, srv *server, room, name string) *participant {
	t.Helper()
	return joinQuery(t, ctx, srv, room, name, "&debug=1")
}

// joinHD is join with the camera the client asks for (1280x720), for
// the tests of simulcast layers and resolutions.
func joinHD(t *testing.T, ctx context.Context, srv *server, room, name string) *participant {
	t.Helper()
	return joinWith(t, ctx, srv, room, name, "", BrowserOptions{HDCamera: true})
}

// joinQuery is join with more query parameters (starting with &).
func joinQuery(t *testing.T, ctx context.Context, srv *server, room, name, query string) *participant {
	t.Helper()
	return joinWith(t, ctx, srv, room, name, query, BrowserOptions{})
}

// joinWith is joinQuery with browser options.
func joinWith(t *testing.T, ctx context.Context, srv *server, room, name, query string, opts BrowserOptions) *participant {
	t.Helper()
	p := openMeeting(t, ctx, srv, room, name, query, opts)
	p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
	return p
}

// openMeeting starts a browser with opts and opens the meeting link,
// without waiting for the join.
func openMeeting(t *testing.T, ctx context.Context, srv *server, room, name, query string, opts BrowserOptions) *participant {
	t.Helper()
	b, err := StartBrowser(context.Background(), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	link := fmt.Sprintf("%s/r/%s?name=%s%s", srv.URL, url.PathEscape(room), url.QueryEscape(name), query)
	if err := b.Navigate(ctx, link); err != nil {
		t.Fatal(err)
	}
	return p
}

// finish checks the page threw no uncaught exception and broke no CSP
// rule (both would be client bugs even when the call worked), then
// closes the browser.
func (p *participant) finish(ctx context.Context) {
	t := p.owner
	p.t = t
	for _, line := range p.B.Console() {
		if strings.Contains(line, "exception at") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("%s: page error: %s", p.Name, line)
		}
	}
	if t.Failed() {
		p.shot(ctx, "failed")
		t.Logf("console of %s:\n%s", p.Name, strings.Join(p.B.Console(), "\n"))
	}
	p.B.Close()
}

func (p *participant) state(ctx context.Context) (clientState, error) {
	return Eval[clientState](ctx, p.B, `window.parley.state()`)
}

func (p *participant) stats(ctx context.Context) ([]trackStat, error) {
	return Eval[[]trackStat](ctx, p.B, `window.parley.stats()`)
}

func (p *participant) tileNames(ctx context.Context) ([]string, error) {
	return Eval[[]string](ctx, p.B,
		`[...document.querySelectorAll('[data-testid="tile-name"]')].map(e => e.textContent)`)
}

func (p *participant) shot(ctx context.Context, label string) {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(p.t.Name() + "-" + p.Name + "-" + label)
	path, err := p.B.Screenshot(ctx, outDir, name)
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	abs, _ := filepath.Abs(path)
	p.t.Logf("screenshot: %s", abs)
}

// waitState polls window.parley.state() until ok or the limit.
func (p *participant) waitState(ctx context.Context, limit time.Duration, what string, ok func(clientState) bool) clientState {
	p.t.Helper()
	var last clientState
	var lastErr error
	done := poll(ctx, limit, func() bool {
		last, lastErr = p.state(ctx)
		return lastErr == nil && ok(last)
	})
	if !done {
		// The page it is on tells a page that never moved from one that
		// moved and did not join.
		href, _ := Eval[string](ctx, p.B, `location.pathname + location.search`)
		p.t.Fatalf("%s: not %s within %v: state %+v (err %v) on %s", p.Name, what, limit, last, lastErr, href)
	}
	return last
}

// waitStats polls window.parley.stats() until ok or the limit.
func (p *participant) waitStats(ctx context.Context, limit time.Duration, what string, ok func([]trackStat) bool) []trackStat {
	p.t.Helper()
	var last []trackStat
	var lastErr error
	done := poll(ctx, limit, func() bool {
		last, lastErr = p.stats(ctx)
		return lastErr == nil && ok(last)
	})
	if !done {
		p.t.Fatalf("%s: %s not reached within %v: stats %+v (err %v)", p.Name, what, limit, last, lastErr)
	}
	return last
}

// waitTiles polls the grid's name labels until ok or the limit.
func (p *participant) waitTiles(ctx context.Context, limit time.Duration, what string, ok func([]string) bool) {
	p.t.Helper()
	var last []string
	var lastErr error
	if !poll(ctx, limit, func() bool {
		last, lastErr = p.tileNames(ctx)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s: grid never showed %s within %v: tiles %q (err %v)", p.Name, what, limit, last, lastErr)
	}
}

// poll calls f every 250 ms until it reports true, the limit passes or
// ctx ends. It reports whether f succeeded.
func poll(ctx context.Context, limit time.Duration, f func() bool) bool {
	return pollEvery(ctx, limit, 250*time.Millisecond, f)
}

// videosFrom returns the video stats with decoded frames whose sender is
// one of sids (any sender when sids is empty) and whose source matches.
func videosFrom(stats []trackStat, source string, sids ...string) []trackStat {
	var out []trackStat
	for _, s := range stats {
		if s.Kind != "video" || s.FramesDecoded == 0 || (source != "" && s.Source != source) {
			continue
		}
		if len(sids) > 0 && !slices.Contains(sids, s.Participant) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// assertFlowing samples stats twice, 2 s apart, and checks that every
// given track decoded more frames (video) or received more packets
// (audio) in between: media is flowing now, not just at some point.
func (p *participant) assertFlowing(ctx context.Context, tracks []trackStat) {
	p.t.Helper()
	before := map[string]trackStat{}
	for _, s := range tracks {
		before[s.key()] = s
	}
	time.Sleep(2 * time.Second)
	now, err := p.stats(ctx)
	if err != nil {
		p.t.Fatalf("%s: stats: %v", p.Name, err)
	}
	after := map[string]trackStat{}
	for _, s := range now {
		after[s.key()] = s
	}
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			p.t.Errorf("%s: track %s (%s %s) vanished", p.Name, k, b.Name, b.Kind)
		case b.Kind == "video" && a.FramesDecoded <= b.FramesDecoded:
			p.t.Errorf("%s: video %s from %s stalled: framesDecoded %d -> %d", p.Name, k, b.Name, b.FramesDecoded, a.FramesDecoded)
		case b.Kind == "audio" && a.PacketsReceived <= b.PacketsReceived:
			p.t.Errorf("%s: audio %s from %s stalled: packetsReceived %d -> %d", p.Name, k, b.Name, b.PacketsReceived, a.PacketsReceived)
		}
	}
}
