package sqlitestore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
)

// BenchmarkAppend measures durable appends per second (synchronous=FULL, on
// the disk that holds the test's temp dir) for one sender at a time and for
// many concurrent senders, with and without group commit.
//
//	go test ./chat/sqlitestore -run '^$' -bench Append -benchtime 3000x
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		batch    int
		parallel int // goroutines per GOMAXPROCS; 0 = one sender
	}{
		{"serial", 1, 0},
		{"parallel32/no_batching", 1, 16},
		{"parallel32/group_commit", 64, 16},
		{"parallel128/group_commit", 256, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), Options{MaxBatch: bc.batch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			conv, err := s.EnsureRoom(b.Context(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			if err := s.AddMember(b.Context(), chat.Member{ConversationID: conv.ID, Identity: alice, Role: chat.RoleMember}); err != nil {
				b.Fatal(err)
			}
			body := fmt.Sprintf("%0100d", 0) // a typical short chat line
			send := func() {
				m := chat.Message{ConversationID: conv.ID, ClientMsgID: uuid.NewString(), Sender: alice, Kind: chat.EventText, Text: body}
				if _, _, err := s.Append(b.Context(), m); err != nil {
					b.Error(err)
				}
			}
			b.ResetTimer()
			if bc.parallel == 0 {
				for b.Loop() {
					send()
				}
			} else {
				b.SetParallelism(bc.parallel)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						send()
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
