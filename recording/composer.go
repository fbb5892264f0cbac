package recording

import (
	"context"
	"errors"
)

// maxComposeQueue bounds the recordings waiting to be composed; past it a
// recording is left without a composed file (its per-track files are the
// record; Compose can still be run on it later).
const maxComposeQueue = 64

// composer makes the composed MP4s of finished recordings one at a time
// (ffmpeg takes a core or more while it runs), in its own goroutine,
// owned by the store: Close cancels a running ffmpeg and waits.
type composer struct {
	queue  chan composeJob
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type composeJob struct{ room, id string }

func (s *Store) startComposer() {
	ctx, cancel := context.WithCancel(context.Background())
	s.comp = &composer{queue: make(chan composeJob, maxComposeQueue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.composeLoop() // joined by stopComposer
}

func (s *Store) composeLoop() {
	c := s.comp
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.queue:
			path, err := s.Compose(c.ctx, j.room, j.id)
			switch {
			case err == nil:
				s.log.Info("recording composed", "room", j.room, "id", j.id, "file", path)
			case errors.Is(c.ctx.Err(), context.Canceled):
				return
			default:
				s.log.Warn("recording not composed", "room", j.room, "id", j.id, "err", err)
			}
		}
	}
}

// composeLater queues a finished recording for composition.
func (s *Store) composeLater(room, id string) {
	if s.comp == nil {
		return
	}
	select {
	case s.comp.queue <- composeJob{room: room, id: id}:
	default:
		s.log.Warn("recording not composed: too many waiting", "room", room, "id", id)
	}
}

func (s *Store) stopComposer() {
	if s.comp == nil {
		return
	}
	s.comp.cancel()
	<-s.comp.done
}
