package lab

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/e2e"
	"github.com/parleyhq/parley/internal/netlab"
	"github.com/parleyhq/parley/internal/testkit"
)

// outDir is where timelines are written unless PARLEY_LAB_OUT names
// another directory (docs/lab keeps one run of each scenario).
const outDir = "testdata/out"

// call is one lab run: the lab, the server on its bridge, and the
// participants, each a Chromium in a host of its own.
type call struct {
	t     *testing.T
	ctx   context.Context
	lab   *netlab.Lab
	srv   *testkit.Parley
	base  string // the server's URL as the hosts reach it
	room  string
	mu    sync.Mutex
	peers []*peer
}

// peer is one participant.
type peer struct {
	name string
	host *netlab.Host
	b    *e2e.Browser
	// downCap is the downlink cap now in force, bit/s (0: none), for the
	// timeline.
	downCap int
}

// newCall builds the lab and starts the server on its bridge.
func newCall(t *testing.T, ctx context.Context, room string) *call {
	t.Helper()
	return newCallWith(t, ctx, room, nil)
}

// newCallWith is newCall with more keys of the server's sfu section
// (such as audio_red).
func newCallWith(t *testing.T, ctx context.Context, room string, sfuConfig map[string]any) *call {
	t.Helper()
	lab := netlab.New(t)
	sfuSection := map[string]any{
		"include_loopback":     false,
		"bandwidth_estimation": true, // what the lab measures
		"interfaces":           []string{lab.Bridge()},
		"cidrs":                []string{netlab.ServerAddr + "/24"},
	}
	// PARLEY_LAB_ESTIMATOR=pion runs the scenarios on the other
	// bandwidth estimator (sfu.bandwidth_estimator), to compare them.
	if e := lookupEnv("PARLEY_LAB_ESTIMATOR"); e != "" {
		sfuSection["bandwidth_estimator"] = e
	}
	maps.Copy(sfuSection, sfuConfig)
	config := map[string]any{"sfu": sfuSection}
	// PARLEY_LAB_LOG=debug adds the probe and estimate lines to the
	// server's log, which is written beside the timelines.
	if l := lookupEnv("PARLEY_LAB_LOG"); l != "" {
		config["log"] = map[string]any{"level": l}
	}
	srv := testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: config})
	raisePriority(t, srv.Pid())
	_, port, err := net.SplitHostPort(srv.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	lab.ExposeLoopbackPort(p)
	return &call{t: t, ctx: ctx, lab: lab, srv: srv, room: room, base: fmt.Sprintf("http://%s:%d", netlab.ServerAddr, p)}
}

// join starts a participant's Chromium in a new host and joins the room.
// The window is 1280x720 at a device scale of 2, a laptop's HiDPI
// screen: two remote tiles of it want the full 1280x720 layer.
func (c *call) join(name string) *peer {
	c.t.Helper()
	return c.joinWith(name)
}

// joinWith is join with more Chromium arguments (such as a microphone
// file). They come last, so they override the defaults (Chromium keeps
// the last value of a switch given twice, e.g. --window-size).
func (c *call) joinWith(name string, extra ...string) *peer {
	c.t.Helper()
	p := c.launch(name, extra...)
	c.enter(p)
	return p
}

// launch starts a participant's Chromium in a new host, not yet in the
// call. Scenarios with many participants launch every browser before
// anyone joins: a Chromium starting while the others already encode and
// decode video may not open its DevTools port within the lab's 60 s.
func (c *call) launch(name string, extra ...string) *peer {
	t := c.t
	t.Helper()
	h := c.lab.AddHost(name)
	args := append(e2e.ChromiumArgs(1280, 720),
		"--force-device-scale-factor=2",
		// 15 fps of fake camera: the lab's browsers share two cores, and
		// at 30 fps Chrome's CPU adaptation drops the top layer.
		"--use-fake-device-for-media-stream=fps=15",
		// The page is served over plain http from the lab's address:
		// without this it is no secure context and has no camera.
		"--unsafely-treat-insecure-origin-as-secure="+c.base)
	args = append(args, extra...)
	ws := h.StartChromium(t, e2e.ChromiumPath, args)
	b, err := e2e.ConnectBrowser(context.Background(), name, ws)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{name: name, host: h, b: b}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of %s:\n%s", name, strings.Join(b.Console(), "\n"))
		}
		b.Close()
	})
	return p
}

// joinLimit bounds a page's join, from its start to publishing. A page
// joins in seconds on a quiet machine; at load averages of 50 (other
// work on the lab's two cores) the sixth participant's took 90 s.
const joinLimit = 2 * time.Minute

// enter joins p's page to the call and waits until it publishes.
func (c *call) enter(p *peer) {
	t := c.t
	t.Helper()
	name, b := p.name, p.b
	link := fmt.Sprintf("%s/r/%s?name=%s", c.base, url.PathEscape(c.room), url.QueryEscape(name))
	// On a loaded machine the page's load event can take longer than
	// Navigate waits (30 s) while the page itself starts: the check
	// below loads it again only if it did not.
	if err := b.Navigate(c.ctx, link); err != nil {
		t.Logf("%s: %v", name, err)
	}
	// Chromium reports a network change while the new host's interface
	// settles (its IPv6 link-local address) and fails the requests in
	// flight with ERR_NETWORK_CHANGED, which can leave the page without
	// some of its modules: then it is loaded once more.
	if !poll(c.ctx, 20*time.Second, func() bool {
		ok, err := e2e.Eval[bool](c.ctx, b, `!!(window.parley && window.parley.state)`)
		return err == nil && ok
	}) {
		t.Logf("%s: the page did not start within 20 s; loading it again", name)
		if err := b.Navigate(c.ctx, link); err != nil {
			t.Fatal(err)
		}
	}
	type joinState struct {
		Status    string `json:"status"`
		Publisher string `json:"publisher"`
	}
	var st joinState
	var stErr error
	joined := func() bool {
		st, stErr = e2e.Eval[joinState](c.ctx, b, `window.parley.state()`)
		return stErr == nil && st.Status == "connected" && st.Publisher == "connected"
	}
	if !poll(c.ctx, joinLimit, joined) {
		// A page stuck on its way in is loaded once more, as a user
		// would: CI's run of 2026-12-06 lost its sixth participant so,
		// and said nothing of where the page stood.
		t.Logf("%s: not joined and publishing within %v (signaling %q, publisher %q, %v); loading the page again",
			name, joinLimit, st.Status, st.Publisher, stErr)
		if err := b.Navigate(c.ctx, link); err != nil {
			t.Logf("%s: %v", name, err)
		}
		if !poll(c.ctx, joinLimit, joined) {
			t.Fatalf("%s: not joined and publishing within %v of loading the page again (signaling %q, publisher %q, %v)",
				name, joinLimit, st.Status, st.Publisher, stErr)
		}
	}
	c.mu.Lock()
	c.peers = append(c.peers, p)
	c.mu.Unlock()
}

// setDownCap caps p's downlink (0 lifts the cap) and notes it.
func (c *call) setDownCap(p *peer, bps int, tl *recorder) {
	c.t.Helper()
	if err := p.host.SetRate(netlab.Down, bps); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	p.downCap = bps
	c.mu.Unlock()
	tl.note(fmt.Sprintf("downlink cap of %s: %d kbit/s (0 = none)", p.name, bps/1000))
}

// writeTimeline saves the recorder's timeline under PARLEY_LAB_OUT (or
// testdata/out) as name.json and name.png.
func writeTimeline(t *testing.T, tl *netlab.Timeline, name string) {
	t.Helper()
	dir := outDir
	if d := lookupEnv("PARLEY_LAB_OUT"); d != "" {
		dir = d
	}
	if err := tl.Write(dir, name); err != nil {
		t.Error(err)
		return
	}
	abs, _ := filepath.Abs(filepath.Join(dir, name))
	t.Logf("timeline: %s.json, %s.png", abs, abs)
}

// keepServerLog copies the server's log next to the timelines (for the
// layer choices it logs), as name.parley.log.
func (c *call) keepServerLog(name string) {
	dir := outDir
	if d := lookupEnv("PARLEY_LAB_OUT"); d != "" {
		dir = d
	}
	b, err := os.ReadFile(c.srv.LogPath)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".parley.log"), b, 0o644)
	}
	if err != nil {
		c.t.Logf("server log: %v", err)
	}
}

// poll calls f every 250 ms until it reports true, the limit passes or
// ctx ends.
func poll(ctx context.Context, limit time.Duration, f func() bool) bool {
	return testkit.Poll(ctx, limit, 250*time.Millisecond, f)
}

// testContext is bounded by the test's deadline (minus a margin for
// cleanup) or by limit, whichever is sooner.
func testContext(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	if dl, ok := t.Deadline(); ok {
		ctx2, cancel2 := context.WithDeadline(ctx, dl.Add(-20*time.Second))
		t.Cleanup(cancel2)
		ctx = ctx2
	}
	t.Cleanup(cancel)
	return ctx
}

// serverNice is the lab server's scheduling priority. On a real call
// the SFU has a machine of its own; in the lab it shares two cores with
// three to six browsers, and Chromium (running as root here) raises
// its browser process's main, presentation and audio threads to nice
// -8. At the default priority the server's packet reads waited behind
// the browsers' work, and the arrival times its transport-cc feedback
// reports to the publishers showed a queue that was not on the network
// (the likely reading of what was measured): in the run of 2026-12-05
// 13:25 Ada's and Bob's browsers, on links with no cap, lowered their
// own send estimates from 4.5 and 3.7 Mbit/s to 0.6-0.9 and stopped
// their 1280x720 layers for most of a minute (Ada and Bob saw each
// other at 720p in 16 and 23 of 60 samples); with the server at nice
// -10 (13:30, 13:35, 13:41) they did in 57-60 of 60.
const serverNice = -10

// raisePriority sets serverNice on every thread of process pid (on
// Linux a priority is a thread's; threads the process starts later
// take their creator's).
func raisePriority(t *testing.T, pid int) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatalf("server threads: %v", err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, serverNice); err != nil {
			t.Fatalf("server priority: %v", err)
		}
	}
}
