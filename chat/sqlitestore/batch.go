package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/parleyhq/parley/chat"
)

// batcher is group commit: one goroutine owns appends, takes every request
// that is already waiting (up to max), runs them in one transaction with a
// savepoint each, commits once, and only then answers each request. One
// fsync then covers a whole batch instead of one message, which is what
// lets a single SQLite file take thousands of durable sends per second. A
// request that fails (not a member, conflict) rolls back only its own
// savepoint; if the commit fails, every request in the batch gets the error
// and none of them was stored.
type batcher struct {
	s    *Store
	max  int
	reqs chan *appendReq
	done chan struct{}
	wg   sync.WaitGroup
}

type appendReq struct {
	ctx context.Context
	msg chat.Message
	res chan appendRes // buffered, so the writer never blocks on a caller that gave up
}

type appendRes struct {
	msg chat.Message
	dup bool
	err error
}

func newBatcher(s *Store, max int) *batcher {
	b := &batcher{s: s, max: max, reqs: make(chan *appendReq), done: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

func (b *batcher) stop() {
	close(b.done)
	b.wg.Wait()
}

func (b *batcher) append(ctx context.Context, msg chat.Message) (chat.Message, bool, error) {
	r := &appendReq{ctx: ctx, msg: msg, res: make(chan appendRes, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return chat.Message{}, false, fmt.Errorf("append: %w", chat.ErrClosed)
	case <-ctx.Done():
		return chat.Message{}, false, fmt.Errorf("append: %w", ctx.Err())
	}
	// Once taken, the request is written (or fails) whatever the caller's
	// context does; a caller that stops waiting retries with the same
	// client message id and gets the stored original.
	select {
	case res := <-r.res:
		return res.msg, res.dup, res.err
	case <-ctx.Done():
		return chat.Message{}, false, fmt.Errorf("append: %w (it may still be stored; retry with the same client message id)", ctx.Err())
	}
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*appendReq, 0, b.max)
	for {
		select {
		case <-b.done:
			return
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		}
	fill:
		for len(batch) < b.max {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.run(batch)
		clear(batch)
	}
}

func (b *batcher) run(batch []*appendReq) {
	// The batch outlives any single caller, so it runs on its own context;
	// callers that already gave up are skipped.
	ctx := context.Background()
	results := make([]appendRes, len(batch))
	fail := func(err error) {
		for i := range results {
			if results[i].err == nil {
				results[i] = appendRes{err: err}
			}
		}
	}
	tx, err := b.s.writer.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("append: begin: %w", mapErr(err)))
	} else {
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				results[i] = appendRes{err: fmt.Errorf("append: %w", err)}
				continue
			}
			results[i] = b.one(ctx, tx, r.msg)
		}
		if err := tx.Commit(); err != nil {
			fail(fmt.Errorf("append: commit: %w", mapErr(err)))
		}
	}
	for i, r := range batch {
		r.res <- results[i]
	}
}

// one appends a single request inside the batch transaction under its own
// savepoint, so its failure does not undo its neighbours.
func (b *batcher) one(ctx context.Context, tx *sql.Tx, msg chat.Message) appendRes {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT append_one`); err != nil {
		return appendRes{err: fmt.Errorf("append: savepoint: %w", mapErr(err))}
	}
	stored, dup, err := b.s.appendTx(ctx, tx, msg)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO append_one`); rerr != nil {
			return appendRes{err: fmt.Errorf("%w (and rollback to savepoint: %w)", err, rerr)}
		}
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE append_one`); rerr != nil && err == nil {
		return appendRes{err: fmt.Errorf("append: release savepoint: %w", mapErr(rerr))}
	}
	return appendRes{msg: stored, dup: dup, err: err}
}
