package wsbatch

import (
	"testing"
	"time"
)

// A queue without a socket of its own queues in order, wakes the writer
// once per empty-to-non-empty change, refuses past its bound, and reuses
// the writer's small batch arrays.
func TestQueueBoundsAndWakes(t *testing.T) {
	q := NewQueue(nil, 3)
	for i, want := range []PushResult{Queued, Queued, Queued, Full} {
		if got, err := q.Push([]byte{byte('a' + i)}); got != want || err != nil {
			t.Fatalf("push %d = %v, %v; want %v", i, got, err, want)
		}
	}
	select {
	case <-q.Wake():
	default:
		t.Fatal("no wake-up after the first push")
	}
	select {
	case <-q.Wake():
		t.Fatal("a second wake-up for the same batch")
	default:
	}
	q.Begin(time.Now().Add(time.Second))
	b := q.Take()
	if string(b[0])+string(b[1])+string(b[2]) != "abc" {
		t.Fatalf("took %q", b)
	}
	q.Recycle(b)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	q.End()
	// The recycled array becomes the queue at the next Take.
	if empty := q.Take(); len(empty) != 0 {
		t.Fatalf("took %q from an empty queue", empty)
	}
	if got, _ := q.Push([]byte("d")); got != Queued {
		t.Fatalf("push after a batch = %v", got)
	}
	next := q.Take()
	if len(next) != 1 || cap(next) != cap(b) {
		t.Fatalf("took %d messages in an array of cap %d; want 1 in the recycled one (cap %d)", len(next), cap(next), cap(b))
	}
}
