package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// ErrNoChromium explains how to get the browser the tests need.
var ErrNoChromium = errors.New(ChromiumPath + " is missing: run `apt-get install -y chromium`")

// CheckChromium reports ErrNoChromium when the browser is not installed.
func CheckChromium() error {
	if _, err := os.Stat(ChromiumPath); err != nil {
		return fmt.Errorf("%w (%w)", ErrNoChromium, err)
	}
	return nil
}

// Browser is one headless Chromium process with one tab. Each call
// participant gets its own process and profile so that nothing (cookies,
// permissions, the media stack) is shared between them.
type Browser struct {
	Name    string
	ctx     context.Context
	cancel  context.CancelFunc
	dataDir string
	readers sync.WaitGroup

	mu      sync.Mutex
	console []string // console messages and uncaught exceptions, in order
}

// BrowserOptions tunes a browser. The zero value is a 1280x720 window
// with a 320x180 camera.
type BrowserOptions struct {
	Width, Height int
	// HDCamera gives the page the camera the web client asks for
	// (1280x720 at 30 fps, sent in three simulcast layers). Without it
	// the camera is a small one (smallCameraScript): encoding and
	// decoding 720p in every browser was most of a test's CPU on the
	// 2-core CI machine, and only the tests of layers and resolutions
	// need it.
	HDCamera bool
	// ExtraFlags are added after the standard call flags, e.g. for screen
	// capture; a value of "" makes a boolean switch.
	ExtraFlags map[string]string
}

// callSwitches are the switches measured to work for WebRTC calls here
// (see ENGINEERING.md "Headless Chromium for calls"); without
// allow-loopback-in-peer-connection no loopback candidate is offered and
// the call never connects.
var callSwitches = []string{ //nolint:gochecknoglobals // read-only table
	"headless=new", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync",
	"use-fake-ui-for-media-stream", "use-fake-device-for-media-stream",
	"allow-loopback-in-peer-connection",
}

// smallCameraScript makes the page's camera a 320x180, 15 fps one, as a
// cheap webcam would be: getUserMedia's video constraints are replaced
// before the page's own scripts run. Its simulcast layers are then small
// ones (Chromium may send fewer of them), which the SFU takes as it does
// any publisher's.
const smallCameraScript = `(() => {
	const md = navigator.mediaDevices;
	if (!md || !md.getUserMedia) return;
	const real = md.getUserMedia.bind(md);
	md.getUserMedia = (c) => {
		if (c && c.video) {
			const v = typeof c.video === 'object' ? c.video : {};
			c = { ...c, video: { ...v, width: { ideal: 320 }, height: { ideal: 180 }, frameRate: { ideal: 15 } } };
		}
		return real(c);
	};
})();`

// ChromiumArgs are the command-line arguments of a call participant's
// Chromium (for a caller that starts the process itself, like the
// network lab), with a window of w x h.
func ChromiumArgs(w, h int) []string {
	args := make([]string, 0, len(callSwitches)+1)
	for _, s := range callSwitches {
		args = append(args, "--"+s)
	}
	return append(args, fmt.Sprintf("--window-size=%d,%d", w, h))
}

func callFlags() []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(ChromiumPath)}
	for _, s := range callSwitches {
		if k, v, ok := strings.Cut(s, "="); ok {
			opts = append(opts, chromedp.Flag(k, v))
		} else {
			opts = append(opts, chromedp.Flag(s, true))
		}
	}
	return opts
}

// ConnectBrowser drives a Chromium started elsewhere (the network lab
// starts one inside each host's namespace) through its DevTools
// websocket URL. Close ends the connection; the process is its
// starter's to stop.
func ConnectBrowser(parent context.Context, name, wsURL string) (*Browser, error) {
	allocCtx, allocCancel := remote.NewAllocator(parent, wsURL, remote.NoModifyURL)
	tabCtx, tabCancel := chromedp.NewContext(allocCtx)
	b := &Browser{Name: name, ctx: tabCtx, cancel: func() {
		tabCancel()
		allocCancel()
	}}
	if err := chromedp.Do(tabCtx); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser %s: connect %s: %w", name, wsURL, err)
	}
	if err := b.collectConsole(); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser %s: %w", name, err)
	}
	return b, nil
}

// StartBrowser launches a browser with a fresh profile directory and
// waits until its tab is ready. Close it with Close.
func StartBrowser(parent context.Context, name string, opts BrowserOptions) (*Browser, error) {
	if err := CheckChromium(); err != nil {
		return nil, err
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1280, 720
	}
	dir, err := os.MkdirTemp("", "parley-e2e-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser %s: profile dir: %w", name, err)
	}
	flags := append(callFlags(),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(opts.Width, opts.Height),
	)
	for k, v := range opts.ExtraFlags {
		if v == "" {
			flags = append(flags, chromedp.Flag(k, true))
		} else {
			flags = append(flags, chromedp.Flag(k, v))
		}
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(parent, flags...)
	tabCtx, tabCancel := chromedp.NewContext(allocCtx)
	b := &Browser{
		Name:    name,
		ctx:     tabCtx,
		dataDir: dir,
		cancel: func() {
			tabCancel()
			allocCancel()
		},
	}
	// The first action starts the process; its context must not carry a
	// deadline, or the browser would die with it.
	if err := chromedp.Do(tabCtx); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser %s: start chromium: %w", name, err)
	}
	if err := b.collectConsole(); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser %s: %w", name, err)
	}
	if !opts.HDCamera {
		if _, err := chromedp.Call(tabCtx, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: smallCameraScript}); err != nil {
			b.Close()
			return nil, fmt.Errorf("browser %s: small camera: %w", name, err)
		}
	}
	return b, nil
}

// collectConsole records the page's console output and uncaught
// exceptions so a failing test can show what the client saw.
func (b *Browser) collectConsole() error {
	calls := chromedp.Events(b.ctx, runtime.ConsoleAPICalled)
	excs := chromedp.Events(b.ctx, runtime.ExceptionThrown)
	// The browser's own messages (CSP violations, failed loads) come
	// through the Log domain, which is off until enabled.
	entries := chromedp.Events(b.ctx, cdplog.EntryAdded)
	if _, err := chromedp.Call(b.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		return fmt.Errorf("enable log domain: %w", err)
	}
	b.readers.Go(func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			e := ev.Entry
			b.record(fmt.Sprintf("browser %s %s: %s (%s)", e.Source, e.Level, e.Text, e.URL))
		}
	})
	b.readers.Go(func() {
		for ev, err := range calls {
			if err != nil {
				return
			}
			parts := make([]string, 0, len(ev.Args))
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, strings.Trim(fmt.Sprint(string(a.Value)), `"`))
				}
			}
			b.record(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
		}
	})
	b.readers.Go(func() {
		for ev, err := range excs {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			b.record(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		}
	})
	return nil
}

func (b *Browser) record(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const keep = 500 // bounded: a chatty page must not grow memory forever
	if len(b.console) >= keep {
		b.console = b.console[1:]
	}
	b.console = append(b.console, time.Now().Format("15:04:05.000")+" "+line)
}

// Console returns the console lines recorded so far.
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Context is the tab's chromedp context, for actions the helpers lack.
func (b *Browser) Context() context.Context { return b.ctx }

// Close stops the browser process and removes its profile.
func (b *Browser) Close() {
	b.cancel()
	b.readers.Wait()
	if b.dataDir == "" {
		return // a connected browser: its starter owns the profile
	}
	// Chromium may still be flushing its profile for a moment after the
	// process is told to go; a bounded retry keeps /tmp clean.
	for i := 0; i < 20; i++ {
		if err := os.RemoveAll(b.dataDir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Navigate opens url in the tab.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	tctx, cancel := b.bounded(ctx)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("browser %s: navigate %s: %w", b.Name, url, err)
	}
	return nil
}

// Click clicks the first element matching the CSS selector (a real input
// event, so it counts as a user gesture, e.g. for getDisplayMedia).
func (b *Browser) Click(ctx context.Context, css string) error {
	tctx, cancel := b.bounded(ctx)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible)); err != nil {
		return fmt.Errorf("browser %s: click %s: %w", b.Name, css, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page, awaiting a promise
// result, and decodes the value into T.
func Eval[T any](ctx context.Context, b *Browser, expr string) (T, error) {
	tctx, cancel := b.bounded(ctx)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("browser %s: eval %q: %w", b.Name, expr, err)
	}
	return v, nil
}

// Screenshot saves a PNG of the visible page to dir/name.png and returns
// the path.
func (b *Browser) Screenshot(ctx context.Context, dir, name string) (string, error) {
	tctx, cancel := b.bounded(ctx)
	defer cancel()
	buf, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		return "", fmt.Errorf("browser %s: screenshot: %w", b.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("screenshot dir: %w", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return "", fmt.Errorf("write screenshot: %w", err)
	}
	return path, nil
}

// bounded derives a per-action context from the tab context (so the
// browser stays alive) that also ends when ctx ends, or after 30 s.
func (b *Browser) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	stop := context.AfterFunc(ctx, cancel)
	return tctx, func() {
		stop()
		cancel()
	}
}
