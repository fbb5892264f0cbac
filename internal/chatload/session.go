package chatload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/parleyhq/parley/internal/wire"
	"github.com/parleyhq/parley/signaling/proto"
)

// SessionOptions configures a reconnecting chat session.
type SessionOptions struct {
	URL    string // ws://host:port/ws
	Origin string
	// Fallbacks are further front doors of the same service (the other
	// nodes of a cluster): after a failed connect the session tries the
	// next one, round the list, as a client behind round-robin DNS would.
	Fallbacks []Endpoint
	// Token returns the token for each (re)connect, so an expiring
	// token can be replaced.
	Token func() (string, error)
	// AckTimeout bounds the wait for one chat_ack before the connection
	// is considered dead and replaced; 0 means 5 s.
	AckTimeout time.Duration
	// Window is how many sends may await their ack at once; 0 means 1.
	Window int
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// after each failed attempt and carries +-25% jitter; 0 means the
	// protocol's 0.5 s and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// FailAfter gives up on a message that has no ack this long after it
	// was queued: it leaves the outbox and Failed reports it with code
	// "timeout" (the UI's "failed"; it may still have been stored, so a
	// retry the user asks for reuses its clientMsgId). An ack that
	// arrives later still counts. 0 means never.
	FailAfter time.Duration
	// PageLimit is the limit for chat_sync and chat_range; 0 means 100.
	PageLimit int
	Logger    *slog.Logger
}

// Endpoint is one address a session can connect to.
type Endpoint struct {
	URL, Origin string
}

// SessionStats counts what happened to a session.
type SessionStats struct {
	Connects      int            // successful joins
	DialFailures  int            // failed connects or joins
	Acks          int            // acks received (including duplicates)
	Duplicates    int            // acks with duplicate:true (a retry of a stored message)
	Retries       int            // chat_send frames written again after a reconnect
	RangeRequests int            // chat_range requests made for gaps or catch-up
	Errors        map[string]int // server error codes (replies and pushes)
}

type outgoing struct {
	convID, id, text string
	queued           time.Time
	writtenOn        *Conn // the connection it was last written on
	writes           int
}

// Session is one identity's device: it stays connected (reconnecting
// with backoff), keeps an outbox of messages until each is acked (every
// retry reuses the message's clientMsgId), and keeps a gap-free log of
// each conversation it knows from pushes, chat_sync and chat_range.
type Session struct {
	opts SessionOptions
	log  *slog.Logger

	mu       sync.Mutex
	identity string
	logs     map[string]*ConvLog
	pending  []*outgoing
	acks     map[string]Ack // by clientMsgId
	failed   map[string]*ServerError
	stats    SessionStats
	door     int // which of URL and Fallbacks the next connect uses

	kick    chan struct{} // outbox grew
	gapKick chan struct{} // a push left a gap
}

// NewSession makes a session; Run connects it.
func NewSession(o SessionOptions) *Session {
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 1
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.PageLimit <= 0 {
		o.PageLimit = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Session{
		opts: o, log: o.Logger,
		logs: map[string]*ConvLog{}, acks: map[string]Ack{}, failed: map[string]*ServerError{},
		stats: SessionStats{Errors: map[string]int{}},
		kick:  make(chan struct{}, 1), gapKick: make(chan struct{}, 1),
	}
}

// Send queues a text message and returns its clientMsgId (a fresh UUID).
func (s *Session) Send(convID, text string) string {
	id := uuid.NewString()
	s.SendWithID(convID, id, text)
	return id
}

// SendWithID queues a text message with a caller-chosen clientMsgId.
func (s *Session) SendWithID(convID, clientMsgID, text string) {
	s.mu.Lock()
	s.pending = append(s.pending, &outgoing{convID: convID, id: clientMsgID, text: text, queued: time.Now()})
	s.logFor(convID)
	s.mu.Unlock()
	signal(s.kick)
}

// Track makes the session keep the log of a conversation (named in
// chat_sync on every reconnect).
func (s *Session) Track(convID string) *ConvLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logFor(convID)
}

// Log returns the session's copy of a conversation (nil if unknown).
func (s *Session) Log(convID string) *ConvLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs[convID]
}

// Pending is the number of queued messages without an ack.
func (s *Session) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Acks returns the acks received, by clientMsgId.
func (s *Session) Acks() map[string]Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Ack, len(s.acks))
	for k, v := range s.acks {
		out[k] = v
	}
	return out
}

// Failed returns messages the server refused for good, by clientMsgId.
func (s *Session) Failed() map[string]*ServerError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*ServerError, len(s.failed))
	for k, v := range s.failed {
		out[k] = v
	}
	return out
}

// Stats returns a copy of the counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Errors = make(map[string]int, len(s.stats.Errors))
	for k, v := range s.stats.Errors {
		st.Errors[k] = v
	}
	return st
}

func (s *Session) logFor(convID string) *ConvLog {
	l := s.logs[convID]
	if l == nil {
		l = NewConvLog()
		s.logs[convID] = l
	}
	return l
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run keeps the session connected until ctx ends; it returns nil then.
func (s *Session) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for ctx.Err() == nil {
		s.expire()
		conn, err := s.connect(ctx)
		if err != nil {
			s.mu.Lock()
			s.stats.DialFailures++
			s.door++
			var se *ServerError
			if errors.As(err, &se) {
				s.stats.Errors[se.Code]++
			}
			s.mu.Unlock()
			s.log.Debug("connect failed", "err", err, "backoff", backoff)
			if !sleepCtx(ctx, jitter(backoff)) {
				break
			}
			backoff = min(2*backoff, s.opts.MaxBackoff)
			continue
		}
		backoff = s.opts.MinBackoff
		err = s.serve(ctx, conn)
		_ = conn.Close()
		if ctx.Err() == nil {
			s.log.Debug("connection lost", "err", err)
			// A short pause so a server that just died is not hammered.
			if !sleepCtx(ctx, jitter(s.opts.MinBackoff)) {
				break
			}
		}
	}
	return nil
}

func (s *Session) connect(ctx context.Context) (*Conn, error) {
	tok, err := s.opts.Token()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	doors := append([]Endpoint{{URL: s.opts.URL, Origin: s.opts.Origin}}, s.opts.Fallbacks...)
	s.mu.Lock()
	door := doors[s.door%len(doors)]
	s.mu.Unlock()
	c, err := Dial(ctx, DialOptions{URL: door.URL, Origin: door.Origin, Token: tok, OnPush: s.onPush})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.identity = c.Joined.Participant.Identity
	s.stats.Connects++
	s.mu.Unlock()
	return c, nil
}

// serve runs one connection: catch up first, then send the outbox and
// fill gaps until the connection or ctx ends.
func (s *Session) serve(ctx context.Context, c *Conn) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		select {
		case <-c.Done():
			return c.Err()
		case <-gctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		if err := s.catchUp(gctx, c); err != nil {
			return err
		}
		g.Go(func() error { return s.fillGaps(gctx, c) })
		return s.sendLoop(gctx, c)
	})
	err := g.Wait()
	if err == nil {
		err = wire.ErrClosed
	}
	return err
}

func (s *Session) onPush(typ string, data json.RawMessage) {
	switch typ {
	case proto.TypeMessage:
		var m Message
		if json.Unmarshal(data, &m) != nil {
			return
		}
		s.mu.Lock()
		l := s.logFor(m.ConversationID)
		s.mu.Unlock()
		if l.Apply(m) {
			signal(s.gapKick)
		}
	case proto.TypeConversation:
		var b proto.ConversationBody
		if json.Unmarshal(data, &b) == nil && b.Conversation.ID != "" {
			s.Track(b.Conversation.ID)
		}
	case proto.TypeError:
		var se ServerError
		_ = json.Unmarshal(data, &se)
		s.mu.Lock()
		s.stats.Errors[se.Code]++
		s.mu.Unlock()
	}
}

// catchUp sends chat_sync with the contiguous seq of every known
// conversation, applies what comes back and pages the rest with
// chat_range until each log reaches the conversation's lastSeq.
func (s *Session) catchUp(ctx context.Context, c *Conn) error {
	last := map[string]int64{}
	s.mu.Lock()
	for id, l := range s.logs {
		last[id] = l.Contiguous()
	}
	s.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
	synced, err := c.Sync(rctx, last, s.opts.PageLimit)
	cancel()
	if err != nil {
		return s.requestFailed("chat_sync", err)
	}
	for _, sc := range synced.Conversations {
		l := s.Track(sc.Conversation.ID)
		for _, m := range sc.Messages {
			l.Apply(m)
		}
		if err := s.rangeTo(ctx, c, sc.Conversation.ID, l, sc.Conversation.LastSeq); err != nil {
			return err
		}
	}
	return nil
}

// rangeTo pages chat_range until l holds everything up to target (or the
// server has nothing more).
func (s *Session) rangeTo(ctx context.Context, c *Conn, convID string, l *ConvLog, target int64) error {
	for l.Contiguous() < target {
		after := l.Contiguous()
		rctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
		page, err := c.Range(rctx, convID, after, s.opts.PageLimit)
		cancel()
		s.mu.Lock()
		s.stats.RangeRequests++
		s.mu.Unlock()
		if err != nil {
			return s.requestFailed("chat_range", err)
		}
		for _, m := range page.Messages {
			l.Apply(m)
		}
		if len(page.Messages) == 0 || l.Contiguous() == after {
			// The server has nothing past after: what we believed was
			// there is not (yet). Stop rather than spin.
			return nil
		}
	}
	return nil
}

// fillGaps fetches missing ranges when a push skipped ahead.
func (s *Session) fillGaps(ctx context.Context, c *Conn) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.gapKick:
		}
		// Pushes of one conversation arrive in order but this session's
		// own messages enter the log at ack time, which can be ahead of
		// pushes still on the wire: give those a moment before reading.
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil
		}
		s.mu.Lock()
		type gap struct {
			id  string
			l   *ConvLog
			max int64
		}
		var gaps []gap
		for id, l := range s.logs {
			if mx := l.Max(); l.Contiguous() < mx {
				gaps = append(gaps, gap{id, l, mx})
			}
		}
		s.mu.Unlock()
		for _, g := range gaps {
			if err := s.rangeTo(ctx, c, g.id, g.l, g.max); err != nil {
				return err
			}
		}
	}
}

type flight struct {
	item *outgoing
	call *Call
}

// sendLoop writes queued messages in order, at most Window awaiting an
// ack, and handles the acks in order (the server answers one
// connection's requests in the order they were sent).
func (s *Session) sendLoop(ctx context.Context, c *Conn) error {
	var inflight []flight
	for {
		s.expire()
		// Write what the window allows.
		for len(inflight) < s.opts.Window {
			item := s.nextUnwritten(c)
			if item == nil {
				break
			}
			call, err := c.Go(proto.TypeChatSend, proto.ChatSendBody{ConversationID: item.convID, ClientMsgID: item.id, Text: item.text})
			if err != nil {
				return err
			}
			inflight = append(inflight, flight{item, call})
		}
		if len(inflight) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.kick:
				continue
			}
		}
		head := inflight[0]
		inflight = inflight[1:]
		wctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
		var ack Ack
		err := head.call.Wait(wctx, &ack)
		cancel()
		if err != nil {
			var se *ServerError
			if !errors.As(err, &se) {
				if ctx.Err() == nil {
					// No ack in time or the connection died: the message
					// stays pending and goes out again, same id, on the
					// next connection.
					_ = c.Close()
				}
				return fmt.Errorf("chat_send %s: %w", head.item.id, err)
			}
			if s.refused(head.item, se) && !sleepCtx(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		s.acked(head.item, ack)
	}
}

// nextUnwritten returns the first pending message not yet written on c.
func (s *Session) nextUnwritten(c *Conn) *outgoing {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.pending {
		if it.writtenOn != c {
			it.writtenOn = c
			it.writes++
			if it.writes > 1 {
				s.stats.Retries++
			}
			return it
		}
	}
	return nil
}

func (s *Session) acked(it *outgoing, a Ack) {
	s.mu.Lock()
	s.stats.Acks++
	if a.Duplicate {
		s.stats.Duplicates++
	}
	s.acks[it.id] = a
	delete(s.failed, it.id) // it had timed out, but it was stored after all
	s.removePending(it)
	l := s.logFor(it.convID)
	me := s.identity
	s.mu.Unlock()
	// The sending connection gets the ack, not the push: the session
	// enters its own message into its log from the ack.
	if l.Apply(Message{
		ConversationID: it.convID, Seq: a.Seq, ServerID: a.ServerID, ClientMsgID: a.ClientMsgID,
		Sender: Sender{Identity: me}, Kind: "text", Text: it.text, CreatedAt: a.CreatedAt,
	}) {
		signal(s.gapKick)
	}
}

// refused handles an error reply to a send; it reports whether the
// message will be written again (after a pause).
func (s *Session) refused(it *outgoing, se *ServerError) (retry bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Errors[se.Code]++
	switch se.Code {
	case "rate_limited", "internal", "unavailable":
		// Nothing was stored (or the server could not tell): write it
		// again, same id.
		it.writtenOn = nil
		return true
	default:
		s.failed[it.id] = se
		s.removePending(it)
		return false
	}
}

// expire moves messages older than FailAfter from the outbox to Failed.
func (s *Session) expire() {
	if s.opts.FailAfter <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.pending[:0]
	for _, it := range s.pending {
		if time.Since(it.queued) > s.opts.FailAfter {
			s.failed[it.id] = &ServerError{Code: "timeout", Message: fmt.Sprintf("no ack within %s", s.opts.FailAfter)}
			continue
		}
		keep = append(keep, it)
	}
	clear(s.pending[len(keep):])
	s.pending = keep
}

func (s *Session) removePending(it *outgoing) {
	for i, p := range s.pending {
		if p == it {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
	}
}

func (s *Session) requestFailed(op string, err error) error {
	var se *ServerError
	if errors.As(err, &se) {
		s.mu.Lock()
		s.stats.Errors[se.Code]++
		s.mu.Unlock()
	}
	return fmt.Errorf("%s: %w", op, err)
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
