package firefox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Path is where Debian's firefox-esr package puts the browser.
const Path = "/usr/bin/firefox-esr"

// ErrNoFirefox explains how to get the browser the tests need.
var ErrNoFirefox = errors.New(Path + " is missing: run `apt-get install -y firefox-esr`")

// Check reports ErrNoFirefox when the browser is not installed.
func Check() error {
	if _, err := os.Stat(Path); err != nil {
		return fmt.Errorf("%w (%w)", ErrNoFirefox, err)
	}
	return nil
}

// Limits for talking to the browser. Firefox's first start on a fresh
// profile takes a few seconds here; the margins cover a loaded 2-core
// machine.
const (
	startLimit   = 60 * time.Second // process start until the BiDi line
	commandLimit = 30 * time.Second // one BiDi command
	closeLimit   = 10 * time.Second // browser.close until the process exits
)

// listenMarker starts the stderr line in which the remote agent tells
// where it listens; with --remote-debugging-port 0 it picks a free port,
// so parallel browsers never race for one.
const listenMarker = "WebDriver BiDi listening on "

// Browser is one headless Firefox process with a fresh profile and one
// tab, driven over WebDriver BiDi.
type Browser struct {
	Name string
	// Version is the browser's own version (session.new's
	// capabilities.browserVersion), e.g. "153.7.0".
	Version string

	cmd        *exec.Cmd
	exited     chan struct{}
	profileDir string
	sink       *sinkProxy
	bidi       *BiDi
	context    string // the tab's browsing context id
	output     sync.WaitGroup
	closeOnce  sync.Once

	mu      sync.Mutex
	console []string // page console lines and uncaught errors, in order
	stderr  []string // the process's last output lines
}

// Options tunes a browser. The zero value is the call setup: fake
// camera and microphone that count as a granted capture.
type Options struct {
	// Prefs are written after the standard prefs and win over them,
	// e.g. {"media.navigator.permission.fake": false}.
	Prefs map[string]any
}

// Start launches Firefox with a fresh profile, opens a WebDriver BiDi
// session and subscribes to the page's log. ctx bounds the start only;
// close the browser with Close.
func Start(ctx context.Context, name string, opts Options) (*Browser, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "parley-e2e-firefox-")
	if err != nil {
		return nil, fmt.Errorf("firefox %s: profile dir: %w", name, err)
	}
	sink, err := startSinkProxy()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("firefox %s: %w", name, err)
	}
	b := &Browser{Name: name, profileDir: dir, sink: sink, exited: make(chan struct{})}
	extra := sinkProxyPrefs(sink.port())
	maps.Copy(extra, opts.Prefs)
	if err := writeUserJS(dir, extra); err != nil {
		sink.close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("firefox %s: %w", name, err)
	}
	b.cmd = exec.Command(Path,
		"--headless", "--no-remote", "--profile", dir,
		"--remote-debugging-port", "0",
		"--window-size", "1280,720",
		"about:blank")
	b.cmd.Env = append(os.Environ(),
		"MOZ_CRASHREPORTER_DISABLE=1",
		// Mozilla's own test switch: Firefox refuses TCP connections to
		// anything but loopback, and honours the services.settings.server
		// pref (a release build ignores it otherwise and polls Mozilla's
		// Remote Settings server).
		"MOZ_DISABLE_NONLOCAL_CONNECTIONS=1")
	// Its own process group, so Close can end the content processes
	// Firefox forks even if the parent dies first.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		sink.close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("firefox %s: %w", name, err)
	}
	b.cmd.Stderr = b.cmd.Stdout // one pipe, one reader, lines in order
	if err := b.cmd.Start(); err != nil {
		sink.close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("firefox %s: start %s: %w", name, Path, err)
	}
	listening := make(chan string, 1)
	b.output.Go(func() { b.readOutput(out, listening) })
	go func() {
		b.output.Wait() // Wait closes the pipe; read it to the end first
		_ = b.cmd.Wait()
		close(b.exited)
	}()

	if err := b.connect(ctx, listening); err != nil {
		b.Close()
		return nil, fmt.Errorf("firefox %s: %w\nfirefox output:\n%s", name, err, b.Output())
	}
	return b, nil
}

func (b *Browser) connect(ctx context.Context, listening <-chan string) error {
	var addr string
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	select {
	case addr = <-listening:
	case <-b.exited:
		return fmt.Errorf("exited before the remote agent listened")
	case <-timer.C:
		return fmt.Errorf("remote agent not listening within %v", startLimit)
	case <-ctx.Done():
		return ctx.Err()
	}
	conn, err := DialBiDi(ctx, addr+"/session", b.onEvent)
	if err != nil {
		return err
	}
	b.bidi = conn
	res, err := conn.Call(ctx, commandLimit, "session.new", map[string]any{"capabilities": map[string]any{}})
	if err != nil {
		return err
	}
	var sess struct {
		Capabilities struct {
			BrowserVersion string `json:"browserVersion"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(res, &sess); err != nil {
		return fmt.Errorf("session.new result: %w", err)
	}
	b.Version = sess.Capabilities.BrowserVersion
	if _, err := conn.Call(ctx, commandLimit, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		return err
	}
	res, err = conn.Call(ctx, commandLimit, "browsingContext.getTree", map[string]any{"maxDepth": 0})
	if err != nil {
		return err
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(res, &tree); err != nil {
		return fmt.Errorf("browsingContext.getTree result: %w", err)
	}
	if len(tree.Contexts) == 0 {
		return errors.New("browsingContext.getTree: no tab")
	}
	b.context = tree.Contexts[0].Context
	return nil
}

// readOutput keeps the last lines of the process output for failure
// reports and hands over the remote agent's address.
func (b *Browser) readOutput(r io.Reader, listening chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, listenMarker); i >= 0 && !found {
			found = true
			listening <- strings.TrimSpace(line[i+len(listenMarker):])
		}
		b.mu.Lock()
		const keep = 200
		if len(b.stderr) >= keep {
			b.stderr = b.stderr[1:]
		}
		b.stderr = append(b.stderr, line)
		b.mu.Unlock()
	}
	// A line longer than the buffer stops the scan; drain the rest so
	// Firefox never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// logEntry is the part of a log.entryAdded event the tests show.
type logEntry struct {
	Type       string `json:"type"` // "console" or "javascript" (uncaught error)
	Level      string `json:"level"`
	Text       string `json:"text"`
	Method     string `json:"method"`
	StackTrace *struct {
		CallFrames []struct {
			URL        string `json:"url"`
			LineNumber int    `json:"lineNumber"`
		} `json:"callFrames"`
	} `json:"stackTrace"`
}

func (b *Browser) onEvent(ev Event) {
	if ev.Method != "log.entryAdded" {
		return
	}
	var e logEntry
	if err := json.Unmarshal(ev.Params, &e); err != nil {
		b.record(fmt.Sprintf("undecodable log entry %.200s: %v", ev.Params, err))
		return
	}
	where := ""
	if e.StackTrace != nil && len(e.StackTrace.CallFrames) > 0 {
		f := e.StackTrace.CallFrames[0]
		where = fmt.Sprintf(" (%s:%d)", f.URL, f.LineNumber+1)
	}
	switch e.Type {
	case "console":
		b.record(fmt.Sprintf("console.%s: %s%s", e.Method, e.Text, where))
	default:
		b.record(fmt.Sprintf("%s %s: %s%s", e.Type, e.Level, e.Text, where))
	}
}

func (b *Browser) record(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const keep = 500 // bounded: a chatty page must not grow memory for ever
	if len(b.console) >= keep {
		b.console = b.console[1:]
	}
	b.console = append(b.console, time.Now().Format("15:04:05.000")+" "+line)
}

// Console returns the page's console lines and uncaught errors so far;
// uncaught errors start with "javascript error:".
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Output returns the last lines Firefox wrote to stdout and stderr.
func (b *Browser) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.stderr, "\n")
}

// Refused returns the request lines of every attempt Firefox made to
// reach beyond loopback (all refused by the profile's sink proxy), e.g.
// "CONNECT firefox.settings.services.mozilla.com:443 HTTP/1.1".
func (b *Browser) Refused() []string { return b.sink.requests() }

// Navigate opens url in the tab and waits for its load event.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	_, err := b.bidi.Call(ctx, commandLimit, "browsingContext.navigate", map[string]any{
		"context": b.context, "url": url, "wait": "complete",
	})
	if err != nil {
		return fmt.Errorf("firefox %s: navigate %s: %w", b.Name, url, err)
	}
	return nil
}

// Click presses and releases the left mouse button at (x, y) in CSS
// pixels from the top left of the viewport: real input, so it counts as
// a user gesture (unlike element.click() from a script).
func (b *Browser) Click(ctx context.Context, x, y int) error {
	_, err := b.bidi.Call(ctx, commandLimit, "input.performActions", map[string]any{
		"context": b.context,
		"actions": []any{map[string]any{
			"type":       "pointer",
			"id":         "mouse",
			"parameters": map[string]any{"pointerType": "mouse"},
			"actions": []any{
				map[string]any{"type": "pointerMove", "x": x, "y": y},
				map[string]any{"type": "pointerDown", "button": 0},
				map[string]any{"type": "pointerUp", "button": 0},
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("firefox %s: click at %d,%d: %w", b.Name, x, y, err)
	}
	return nil
}

// evalResult is script.evaluate's result: the value (a BiDi remote
// value) or the exception.
type evalResult struct {
	Type   string `json:"type"` // "success" or "exception"
	Result struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"result"`
	ExceptionDetails struct {
		Text       string `json:"text"`
		LineNumber int    `json:"lineNumber"`
	} `json:"exceptionDetails"`
}

// Eval evaluates a JavaScript expression in the page, awaits it when it
// is a promise, and decodes the value into T. The page turns the value
// into JSON itself, so T sees plain JSON rather than BiDi's typed remote
// values.
func Eval[T any](ctx context.Context, b *Browser, expr string) (T, error) {
	var v T
	wrapped := "(async () => JSON.stringify(await (" + expr + ")) ?? 'null')()"
	res, err := b.bidi.Call(ctx, commandLimit, "script.evaluate", map[string]any{
		"expression":      wrapped,
		"target":          map[string]any{"context": b.context},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return v, fmt.Errorf("firefox %s: eval %q: %w", b.Name, expr, err)
	}
	var r evalResult
	if err := json.Unmarshal(res, &r); err != nil {
		return v, fmt.Errorf("firefox %s: eval %q: result: %w", b.Name, expr, err)
	}
	if r.Type != "success" {
		return v, fmt.Errorf("firefox %s: eval %q: %s: %s", b.Name, expr, r.Type, r.ExceptionDetails.Text)
	}
	var text string
	if r.Result.Type != "string" || json.Unmarshal(r.Result.Value, &text) != nil {
		return v, fmt.Errorf("firefox %s: eval %q: got a %s, want a JSON string", b.Name, expr, r.Result.Type)
	}
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return v, fmt.Errorf("firefox %s: eval %q: decode %.200q: %w", b.Name, expr, text, err)
	}
	return v, nil
}

// Close ends the session and the browser: browser.close first (a clean
// quit), then SIGKILL to the whole process group if it is still there
// after a bounded wait. It removes the profile and is safe to call more
// than once.
func (b *Browser) Close() {
	b.closeOnce.Do(b.close)
}

func (b *Browser) close() {
	grace := time.Duration(0) // no session (a failed start): kill at once
	if b.bidi != nil {
		grace = closeLimit
		ctx, cancel := context.WithTimeout(context.Background(), closeLimit)
		// The connection drops as the browser goes, so an error here
		// is expected and the exit below is what counts.
		_, _ = b.bidi.Call(ctx, closeLimit, "browser.close", nil)
		cancel()
		_ = b.bidi.Close()
	}
	select {
	case <-b.exited:
		// exited closes only after the parent is reaped and every
		// process holding its output pipe (the content processes) has
		// gone, so there is nothing left to kill.
	case <-time.After(grace):
		// The group is Firefox and the content processes it forked.
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-b.exited:
		case <-time.After(closeLimit):
		}
	}
	b.sink.close()
	// Firefox may still be flushing its profile for a moment.
	for range 20 {
		if err := os.RemoveAll(b.profileDir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
