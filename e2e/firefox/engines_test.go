package firefox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// wrapJSON makes the page return expr's (awaited) value as a JSON
// string, so both engines hand the tests the same plain JSON.
func wrapJSON(expr string) string {
	return "(async () => JSON.stringify(await (" + expr + ")) ?? 'null')()"
}

// ----- Firefox -----

type firefoxPage struct{ b *Browser }

func (f firefoxPage) click(ctx context.Context, x, y int) error { return f.b.Click(ctx, x, y) }

func (f firefoxPage) evalJSON(ctx context.Context, expr string) ([]byte, error) {
	raw, err := Eval[json.RawMessage](ctx, f.b, expr)
	return raw, err
}
func (f firefoxPage) console() []string { return f.b.Console() }
func (f firefoxPage) close()            { f.b.Close() }

// joinFirefox starts Firefox, opens the meeting link and waits until it
// publishes. The browser is closed when t ends.
func joinFirefox(t *testing.T, ctx context.Context, srvURL, room, name string, opts Options) (*participant, *Browser) {
	t.Helper()
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	b, err := Start(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, Name: name, Engine: "firefox", page: firefoxPage{b}}
	t.Cleanup(func() {
		p.checkConsole(t)
		if t.Failed() {
			t.Logf("firefox %s output (last lines):\n%s", name, b.Output())
		}
		b.Close()
		t.Logf("firefox %s: %d refused requests beyond loopback: %q", name, len(b.Refused()), b.Refused())
	})
	if err := b.Navigate(ctx, joinLink(srvURL, room, name)); err != nil {
		t.Fatal(err)
	}
	p.waitJoined(ctx)
	return p, b
}

// ----- Chromium -----

const chromiumPath = "/usr/bin/chromium"

type chromiumPage struct {
	ctx     context.Context // the tab; lives until close
	cancel  context.CancelFunc
	dir     string
	readers sync.WaitGroup

	mu    sync.Mutex
	lines []string
}

// chromiumFlags are ENGINEERING.md's flags for calls in headless
// Chromium; without allow-loopback-in-peer-connection it offers no
// loopback candidate and never connects to the test SFU.
func chromiumFlags(dir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 720),
	}
}

func startChromium() (*chromiumPage, error) {
	if _, err := os.Stat(chromiumPath); err != nil {
		return nil, fmt.Errorf("%s is missing: run `apt-get install -y chromium` (%w)", chromiumPath, err)
	}
	dir, err := os.MkdirTemp("", "parley-e2e-firefox-chromium-")
	if err != nil {
		return nil, err
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), chromiumFlags(dir)...)
	tabCtx, tabCancel := chromedp.NewContext(allocCtx)
	c := &chromiumPage{ctx: tabCtx, dir: dir, cancel: func() { tabCancel(); allocCancel() }}
	// The first action starts the process; it gets no deadline of its
	// own, or the browser would die with it.
	if err := chromedp.Do(tabCtx); err != nil {
		c.close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	excs := chromedp.Events(tabCtx, runtime.ExceptionThrown)
	entries := chromedp.Events(tabCtx, cdplog.EntryAdded)
	if _, err := chromedp.Call(tabCtx, cdplog.Enable, cdp.Empty{}); err != nil {
		c.close()
		return nil, fmt.Errorf("chromium: enable log domain: %w", err)
	}
	c.readers.Go(func() {
		for ev, err := range excs {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			c.record(fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber+1))
		}
	})
	c.readers.Go(func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			c.record(fmt.Sprintf("browser %s %s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	})
	return c, nil
}

func (c *chromiumPage) record(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) >= 500 {
		c.lines = c.lines[1:]
	}
	c.lines = append(c.lines, time.Now().Format("15:04:05.000")+" "+line)
}

func (c *chromiumPage) console() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// bounded is a per-action context: a child of the tab (so the browser
// outlives it) that ends with ctx or after 30 s.
func (c *chromiumPage) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	stop := context.AfterFunc(ctx, cancel)
	return actx, func() { stop(); cancel() }
}

func (c *chromiumPage) navigate(ctx context.Context, url string) error {
	actx, cancel := c.bounded(ctx)
	defer cancel()
	return chromedp.Do(actx, chromedp.Navigate(url))
}

func (c *chromiumPage) click(ctx context.Context, x, y int) error {
	actx, cancel := c.bounded(ctx)
	defer cancel()
	return chromedp.Do(actx, chromedp.MouseClickXY(float64(x), float64(y)))
}

func (c *chromiumPage) evalJSON(ctx context.Context, expr string) ([]byte, error) {
	actx, cancel := c.bounded(ctx)
	defer cancel()
	s, err := chromedp.Run(actx, chromedp.Evaluate[string](wrapJSON(expr), chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("chromium: eval %q: %w", expr, err)
	}
	return []byte(s), nil
}

// close ends the browser (chromedp kills the process it started) and
// removes its profile.
func (c *chromiumPage) close() {
	c.cancel()
	c.readers.Wait()
	for range 20 {
		if err := os.RemoveAll(c.dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// joinChromium is joinFirefox for headless Chromium.
func joinChromium(t *testing.T, ctx context.Context, srvURL, room, name string) *participant {
	t.Helper()
	c, err := startChromium()
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, Name: name, Engine: "chromium", page: c}
	t.Cleanup(func() {
		p.checkConsole(t)
		c.close()
	})
	if err := c.navigate(ctx, joinLink(srvURL, room, name)); err != nil {
		t.Fatalf("chromium %s: navigate: %v", name, err)
	}
	p.waitJoined(ctx)
	return p
}

// hasPrefix reports whether any key starts with prefix.
func hasPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
