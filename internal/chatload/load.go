package chatload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/signaling/proto"
)

// Load modes: where the clients meet.
const (
	// ModeRoom joins each client to a call room with a chat-only token
	// (no media grants, so no PeerConnections): the room conversation.
	ModeRoom = "room"
	// ModeGroup opens messaging-only sessions and puts each set of
	// clients in a group conversation made by its first member.
	ModeGroup = "group"
)

// LoadOptions describe the clients of a load run.
type LoadOptions struct {
	URL    string // ws://host:port/ws
	Origin string // empty sends no Origin
	// MetricsURL is the server's /metrics, for memory and CPU figures;
	// empty skips them.
	MetricsURL string
	Clients    int
	Rooms      int
	Mode       string // ModeRoom or ModeGroup
	// Token mints a token for identity; room is "" for ModeGroup.
	Token func(identity, room string) (string, error)
	// DialConcurrency bounds simultaneous connects; 0 means 32.
	DialConcurrency int
	// Settle is the idle wait before the memory is measured; 0 means 5 s.
	Settle time.Duration
	// GCWait bounds the further wait for the server's next garbage
	// collection (Go forces one every 2 minutes); 0 means 130 s.
	GCWait time.Duration
	// TextBytes pads each message text to this size (at least what the
	// timestamp needs).
	TextBytes int
	Logger    *slog.Logger
	// More are further nodes of a cluster: client i connects to node
	// i mod (1+len(More)), URL's node first, and the server CPU of a step
	// is the sum over every node's metrics. The idle memory figures are
	// the first node's, divided by all the clients: not per connection.
	More []LoadEndpoint
}

// LoadEndpoint is one more node a load connects clients to.
type LoadEndpoint struct {
	URL, Origin, MetricsURL string
}

// IdleReport is the server's memory before and after the clients
// connected and went idle. The Go heap figure is the live heap at the
// first garbage collection after the clients connected (derived from the
// GC's next goal: goal = live + (live + stacks) x GOGC/100), because the
// heap in use right after connecting is mostly garbage not yet collected;
// RSS is the operating system's view and includes that garbage.
type IdleReport struct {
	Clients                       int
	ConnectTime                   time.Duration
	RSSBefore, RSSAfter           float64 // process_resident_memory_bytes
	LiveHeapBefore, LiveHeapAfter float64 // estimated live heap after a GC
	StackBefore, StackAfter       float64 // go_memstats_stack_inuse_bytes
	GoroutinesBefore, Goroutines  float64
	GCSeen                        bool    // a GC ran after the connects (else the heap figures are upper bounds)
	RSSPerConn                    float64 // bytes per connection
	GoPerConn                     float64 // live heap + stacks per connection
}

func (r IdleReport) String() string {
	gc := "after a GC"
	if !r.GCSeen {
		gc = "NO GC seen: upper bound"
	}
	return fmt.Sprintf("clients=%d connect=%s rss %.1f->%.1f MiB (%.1f KiB/conn); go live heap %.1f->%.1f MiB + stacks %.1f->%.1f MiB (%.1f KiB/conn, %s); goroutines %.0f->%.0f",
		r.Clients, r.ConnectTime.Round(time.Millisecond), r.RSSBefore/(1<<20), r.RSSAfter/(1<<20), r.RSSPerConn/1024,
		r.LiveHeapBefore/(1<<20), r.LiveHeapAfter/(1<<20), r.StackBefore/(1<<20), r.StackAfter/(1<<20), r.GoPerConn/1024, gc,
		r.GoroutinesBefore, r.Goroutines)
}

// liveHeap estimates the live heap at the last GC from its goal, capped
// by the heap allocated now (a fresh process sits at the minimum goal).
func liveHeap(m map[string]float64) float64 {
	gogc := m["go_gc_gogc_percent"]
	if gogc <= 0 {
		gogc = 100
	}
	f := gogc / 100
	live := (m["go_memstats_next_gc_bytes"] - f*m["go_memstats_stack_inuse_bytes"]) / (1 + f)
	return min(live, m["go_memstats_heap_alloc_bytes"])
}

// StepOptions describe one measured load level.
type StepOptions struct {
	Rate     float64       // messages per second sent, over all senders
	Senders  int           // clients that send; 0 means all
	Warmup   time.Duration // sending before the measured window
	Duration time.Duration // measured window
	// Drain bounds the wait after sending stops for deliveries still on
	// the way; 0 means 3 s.
	Drain time.Duration
	// AckTimeout bounds one send; 0 means 5 s.
	AckTimeout time.Duration
}

// StepResult is what one step measured. Counts cover messages sent
// inside the measured window.
type StepResult struct {
	TargetRate                            float64
	Duration                              time.Duration
	Sent, Acked, Deliveries, Expected     uint64
	SendRate, AckRate, DeliveryRate       float64 // per second of the window
	DeliveryP50, DeliveryP99, DeliveryMax time.Duration
	AckP50, AckP99, AckMax                time.Duration
	Errors                                map[string]uint64
	LoadCPU                               float64 // cores this process used during the step
	ServerCPU                             float64 // cores the server used (-1: unknown)
}

// DeliveryRatio is deliveries received over deliveries expected.
func (r StepResult) DeliveryRatio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Deliveries) / float64(r.Expected)
}

// OK says whether the step held up: p99 delivery below limit, every
// message acked and delivered, no errors.
func (r StepResult) OK(limit time.Duration) bool {
	var errs uint64
	for _, n := range r.Errors {
		errs += n
	}
	return r.Acked > 0 && r.Acked == r.Sent && r.Deliveries == r.Expected && errs == 0 && r.DeliveryP99 < limit
}

func (r StepResult) String() string {
	per100k := -1.0
	if r.ServerCPU >= 0 && r.DeliveryRate > 0 {
		per100k = r.ServerCPU / r.DeliveryRate * 100000
	}
	return fmt.Sprintf("rate=%.0f/s sent=%.0f/s acked=%.0f/s deliveries=%.0f/s (%d/%d, %.3f%%) delivery p50=%s p99=%s max=%s ack p50=%s p99=%s max=%s errors=%v load_cpu=%.2f cores server_cpu=%.2f cores (%.2f CPU-s per 100k deliveries)",
		r.TargetRate, r.SendRate, r.AckRate, r.DeliveryRate, r.Deliveries, r.Expected, 100*r.DeliveryRatio(),
		ms(r.DeliveryP50), ms(r.DeliveryP99), ms(r.DeliveryMax), ms(r.AckP50), ms(r.AckP99), ms(r.AckMax), r.Errors, r.LoadCPU, r.ServerCPU, per100k)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

type loadClient struct {
	id   string
	conn *Conn
	conv string
	size int // members of its conversation
}

// stepStats collects one step; pushes find it through Load.cur.
type stepStats struct {
	from, to   int64 // measured window, Unix ns of the send time
	sent       atomic.Uint64
	acked      atomic.Uint64
	expected   atomic.Uint64
	deliveries atomic.Uint64
	delivery   Histogram
	ack        Histogram
	errors     Codes
}

func (s *stepStats) inWindow(ts int64) bool { return ts >= s.from && ts < s.to }

// Load is a set of connected clients that steps can drive.
type Load struct {
	opts    LoadOptions
	clients []*loadClient
	cur     atomic.Pointer[stepStats]
	pushErr Codes // errors pushed outside any reply
	Idle    IdleReport
}

// textPrefix starts every load message; the timestamp follows.
const textPrefix = `"text":"t=`

// Connect opens every client, puts them in their conversations and
// measures the server's memory per idle connection.
func Connect(ctx context.Context, o LoadOptions) (*Load, error) {
	if o.Clients < 2 || o.Rooms < 1 || o.Rooms > o.Clients {
		return nil, fmt.Errorf("need at least 2 clients and 1 to clients rooms, got %d clients in %d rooms", o.Clients, o.Rooms)
	}
	if o.Mode == "" {
		o.Mode = ModeRoom
	}
	if o.Mode != ModeRoom && o.Mode != ModeGroup {
		return nil, fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeRoom, ModeGroup)
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 32
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	if o.GCWait <= 0 {
		o.GCWait = 130 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Load{opts: o, clients: make([]*loadClient, o.Clients)}
	before, _ := l.scrape(ctx)

	// Small buffers: thousands of connections in one process.
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.DialConcurrency)
	for i := range o.Clients {
		room := i % o.Rooms
		c := &loadClient{id: fmt.Sprintf("load-%05d", i)}
		l.clients[i] = c
		g.Go(func() error {
			roomName := ""
			if o.Mode == ModeRoom {
				roomName = fmt.Sprintf("load-%03d", room)
			}
			tok, err := o.Token(c.id, roomName)
			if err != nil {
				return err
			}
			url, origin := o.URL, o.Origin
			if n := i % (1 + len(o.More)); n > 0 {
				url, origin = o.More[n-1].URL, o.More[n-1].Origin
			}
			conn, err := Dial(gctx, DialOptions{URL: url, Origin: origin, Token: tok, Dialer: dialer,
				RawPush: l.rawPush, OnPush: l.onPush})
			if err != nil {
				return fmt.Errorf("client %s: %w", c.id, err)
			}
			c.conn, c.conv = conn, conn.Joined.ConversationID
			if o.Mode == ModeRoom && c.conv == "" {
				return fmt.Errorf("client %s: joined carries no conversationId (is chat enabled?)", c.id)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		l.Close()
		return nil, err
	}
	if o.Mode == ModeGroup {
		if err := l.makeGroups(ctx); err != nil {
			l.Close()
			return nil, err
		}
	}
	sizes := map[string]int{}
	for _, c := range l.clients {
		sizes[c.conv]++
	}
	for _, c := range l.clients {
		c.size = sizes[c.conv]
	}
	l.Idle.Clients = o.Clients
	l.Idle.ConnectTime = time.Since(start)
	o.Logger.Info("clients connected", "clients", o.Clients, "conversations", len(sizes), "took", l.Idle.ConnectTime)
	if before != nil {
		if err := l.measureIdle(ctx, before, time.Now()); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// measureIdle waits Settle, then for a GC that started after connected
// (bounded by GCWait), and fills l.Idle.
func (l *Load) measureIdle(ctx context.Context, before map[string]float64, connected time.Time) error {
	if !sleepCtx(ctx, l.opts.Settle) {
		return ctx.Err()
	}
	deadline := time.Now().Add(l.opts.GCWait)
	var after map[string]float64
	for {
		m, err := l.scrape(ctx)
		if err != nil {
			return nil // figures stay zero; the run goes on
		}
		after = m
		if after["go_memstats_last_gc_time_seconds"] > float64(connected.UnixNano())/1e9 {
			l.Idle.GCSeen = true
			break
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 2*time.Second) {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	n := float64(l.opts.Clients)
	r := &l.Idle
	r.RSSBefore, r.RSSAfter = before["process_resident_memory_bytes"], after["process_resident_memory_bytes"]
	r.StackBefore, r.StackAfter = before["go_memstats_stack_inuse_bytes"], after["go_memstats_stack_inuse_bytes"]
	r.LiveHeapBefore = liveHeap(before)
	if r.GCSeen {
		r.LiveHeapAfter = liveHeap(after)
	} else {
		r.LiveHeapAfter = after["go_memstats_heap_inuse_bytes"]
	}
	r.GoroutinesBefore, r.Goroutines = before["go_goroutines"], after["go_goroutines"]
	r.RSSPerConn = (r.RSSAfter - r.RSSBefore) / n
	r.GoPerConn = (r.LiveHeapAfter - r.LiveHeapBefore + r.StackAfter - r.StackBefore) / n
	return nil
}

// makeGroups has the first client of each set create a group with the
// others.
func (l *Load) makeGroups(ctx context.Context) error {
	sets := make([][]*loadClient, l.opts.Rooms)
	for i, c := range l.clients {
		sets[i%l.opts.Rooms] = append(sets[i%l.opts.Rooms], c)
	}
	for i, set := range sets {
		members := make([]string, 0, len(set)-1)
		for _, c := range set[1:] {
			members = append(members, c.id)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conv, err := set[0].conn.CreateGroup(rctx, fmt.Sprintf("load %d", i), members)
		cancel()
		if err != nil {
			return fmt.Errorf("chat_group %d: %w", i, err)
		}
		for _, c := range set {
			c.conv = conv.ID
		}
	}
	return nil
}

func (l *Load) scrape(ctx context.Context) (map[string]float64, error) {
	if l.opts.MetricsURL == "" {
		return nil, errors.New("no metrics URL")
	}
	m, err := promtext.Scrape(ctx, l.opts.MetricsURL)
	if err != nil {
		l.opts.Logger.Warn("metrics unavailable", "err", err)
		return nil, err
	}
	return byName(m), nil
}

// byName adds to m each metric's sum over its label sets under its bare
// name: a cluster node labels every series with its node id, and the
// figures read here are per process either way.
func byName(m promtext.Series) map[string]float64 {
	out := make(map[string]float64, len(m))
	for series, v := range m {
		out[series] = v
		if name, _, ok := strings.Cut(series, "{"); ok {
			out[name] += v
		}
	}
	return out
}

// rawPush takes `message` frames: it reads the send time from the text
// and records the delivery latency without decoding the frame.
func (l *Load) rawPush(frame []byte) bool {
	if !bytes.HasPrefix(frame, []byte(`{"type":"message"`)) {
		return false
	}
	now := time.Now().UnixNano()
	st := l.cur.Load()
	if st == nil {
		return true
	}
	i := bytes.Index(frame, []byte(textPrefix))
	if i < 0 {
		return false // unusual encoding: let onPush decode it
	}
	l.delivered(st, frame[i+len(textPrefix)-len("t="):], now)
	return true
}

// delivered records one received load message whose text starts at text
// ("t=<unix ns> ...").
func (l *Load) delivered(st *stepStats, text []byte, now int64) {
	rest, ok := bytes.CutPrefix(text, []byte("t="))
	end := bytes.IndexByte(rest, ' ')
	if !ok || end < 0 {
		st.errors.Add("unparsable_push")
		return
	}
	ts, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		st.errors.Add("unparsable_push")
		return
	}
	if st.inWindow(ts) {
		st.deliveries.Add(1)
		st.delivery.Record(time.Duration(now - ts))
	}
}

func (l *Load) onPush(typ string, data json.RawMessage) {
	if typ == proto.TypeMessage {
		now := time.Now().UnixNano()
		var m Message
		if st := l.cur.Load(); st != nil && json.Unmarshal(data, &m) == nil {
			l.delivered(st, []byte(m.Text), now)
		}
		return
	}
	if typ != proto.TypeError {
		return
	}
	var se ServerError
	_ = json.Unmarshal(data, &se)
	if st := l.cur.Load(); st != nil {
		st.errors.Add("push:" + se.Code)
	} else {
		l.pushErr.Add(se.Code)
	}
}

// Live counts the clients whose connection is still up.
func (l *Load) Live() int {
	n := 0
	for _, c := range l.clients {
		if c.conn != nil && c.conn.Err() == nil {
			n++
		}
	}
	return n
}

// Step sends at o.Rate for Warmup+Duration and reports the window.
func (l *Load) Step(ctx context.Context, o StepOptions) (StepResult, error) {
	if o.Rate <= 0 || o.Duration <= 0 {
		return StepResult{}, errors.New("step: rate and duration must be positive")
	}
	if o.Drain <= 0 {
		o.Drain = 3 * time.Second
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	senders := l.pickSenders(o.Senders)
	interval := time.Duration(float64(len(senders)) / o.Rate * float64(time.Second))
	start := time.Now()
	st := &stepStats{from: start.Add(o.Warmup).UnixNano(), to: start.Add(o.Warmup + o.Duration).UnixNano()}
	l.cur.Store(st)
	defer l.cur.Store(nil)
	sendEnd := start.Add(o.Warmup + o.Duration)
	cpu0, srv0 := ProcessCPU(), l.serverCPU(ctx)

	var wg sync.WaitGroup
	for _, c := range senders {
		phase := time.Duration(rand.Int64N(int64(interval) + 1))
		wg.Go(func() { l.sendLoop(ctx, c, st, start.Add(phase), interval, sendEnd, o.AckTimeout) })
	}
	wg.Wait()
	cpu1, srv1 := ProcessCPU(), l.serverCPU(ctx)
	wall := time.Since(start)
	// Deliveries of the window's last messages may still be on the way.
	drainEnd := time.Now().Add(o.Drain)
	for st.deliveries.Load() < st.expected.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	secs := o.Duration.Seconds()
	r := StepResult{
		TargetRate: o.Rate, Duration: o.Duration,
		Sent: st.sent.Load(), Acked: st.acked.Load(), Deliveries: st.deliveries.Load(), Expected: st.expected.Load(),
		DeliveryP50: st.delivery.Quantile(0.5), DeliveryP99: st.delivery.Quantile(0.99), DeliveryMax: st.delivery.Max(),
		AckP50: st.ack.Quantile(0.5), AckP99: st.ack.Quantile(0.99), AckMax: st.ack.Max(),
		Errors:  st.errors.Snapshot(),
		LoadCPU: (cpu1 - cpu0).Seconds() / wall.Seconds(), ServerCPU: -1,
	}
	r.SendRate, r.AckRate, r.DeliveryRate = float64(r.Sent)/secs, float64(r.Acked)/secs, float64(r.Deliveries)/secs
	if srv0 >= 0 && srv1 >= 0 {
		r.ServerCPU = (srv1 - srv0) / wall.Seconds()
	}
	return r, ctx.Err()
}

// pickSenders spreads n senders over the conversations.
func (l *Load) pickSenders(n int) []*loadClient {
	if n <= 0 || n >= len(l.clients) {
		return l.clients
	}
	// Clients alternate conversations (i % rooms), so the first n are
	// spread evenly.
	return l.clients[:n]
}

// serverCPU is the CPU seconds of every node so far (-1 if any node's
// figure is missing).
func (l *Load) serverCPU(ctx context.Context) float64 {
	urls := []string{l.opts.MetricsURL}
	for _, e := range l.opts.More {
		urls = append(urls, e.MetricsURL)
	}
	total := 0.0
	for _, u := range urls {
		if u == "" {
			return -1
		}
		m, err := promtext.Scrape(ctx, u)
		if err != nil {
			return -1
		}
		v, ok := byName(m)["process_cpu_seconds_total"]
		if !ok {
			return -1
		}
		total += v
	}
	return total
}

// sendLoop sends one message per interval from first until end (late
// sends go out at once, so a slow ack does not lower the offered rate
// for long), each waiting for its ack.
func (l *Load) sendLoop(ctx context.Context, c *loadClient, st *stepStats, first time.Time, interval time.Duration, end time.Time, ackTimeout time.Duration) {
	pad := ""
	if l.opts.TextBytes > 40 {
		pad = strings.Repeat("x", l.opts.TextBytes-40)
	}
	for k := 0; ; k++ {
		at := first.Add(time.Duration(k) * interval)
		if !at.Before(end) || ctx.Err() != nil {
			return
		}
		if d := time.Until(at); d > 0 && !sleepCtx(ctx, d) {
			return
		}
		if c.conn.Err() != nil {
			st.errors.Add("disconnected")
			return
		}
		sentAt := time.Now()
		ts := sentAt.UnixNano()
		in := st.inWindow(ts)
		text := "t=" + strconv.FormatInt(ts, 10) + " " + c.id + " " + pad
		rctx, cancel := context.WithTimeout(ctx, ackTimeout)
		_, err := c.conn.Send(rctx, c.conv, uuid.NewString(), text)
		cancel()
		if in {
			st.sent.Add(1)
		}
		if err != nil {
			var se *ServerError
			switch {
			case errors.As(err, &se):
				st.errors.Add(se.Code)
			case errors.Is(err, context.DeadlineExceeded):
				st.errors.Add("ack_timeout")
			default:
				st.errors.Add("closed")
			}
			continue
		}
		if in {
			st.acked.Add(1)
			st.expected.Add(uint64(c.size - 1))
			st.ack.Record(time.Since(sentAt))
		}
	}
}

// Close disconnects every client.
func (l *Load) Close() {
	var wg sync.WaitGroup
	for _, c := range l.clients {
		if c != nil && c.conn != nil {
			wg.Go(func() { _ = c.conn.Close() })
		}
	}
	wg.Wait()
}
