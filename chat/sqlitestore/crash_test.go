package sqlitestore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/storetest"
)

// The crash test re-runs this test binary as a writer process, kills it with
// SIGKILL at a random moment, and checks the database it left behind. A
// process kill leaves the OS page cache intact, so this proves "acked means
// committed" and crash recovery of the WAL, not survival of a power cut;
// that part rests on synchronous=FULL (fsync of the WAL on each commit).
const (
	crashEnvDB    = "PARLEY_CHAT_CRASH_DB"
	crashEnvBatch = "PARLEY_CHAT_CRASH_BATCH"
	crashWriters  = 4
	crashPerWrite = 5000 // the helper stops by itself after this many each
	crashRoom     = "crash"
)

func crashClientID(writer, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", writer+1, i)
}

func crashWriter(w int) chat.Identity {
	return chat.Identity{ID: fmt.Sprintf("w%d", w), Name: fmt.Sprintf("Writer %d", w)}
}

func crashMsg(convID string, w, i int) chat.Message {
	return chat.Message{ConversationID: convID, ClientMsgID: crashClientID(w, i), Sender: crashWriter(w),
		Kind: chat.EventText, Text: fmt.Sprintf("w%d-%d", w, i)}
}

func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnvDB); path != "" {
		runCrashHelper(t, path)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 64} {
		for round := range 2 {
			t.Run(fmt.Sprintf("batch%d_round%d", batch, round), func(t *testing.T) {
				crashRound(t, exe, batch)
			})
		}
	}
}

type ack struct {
	seq      int64
	serverID string
}

func crashRound(t *testing.T, exe string, batch int) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	conv := storetest.MustRoom(t, s, crashRoom)
	for w := range crashWriters {
		if err := s.AddMember(ctx, chat.Member{ConversationID: conv.ID, Identity: crashWriter(w), Role: chat.RoleMember}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, exe, "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDB+"="+path, crashEnvBatch+"="+strconv.Itoa(batch))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := 20 + rand.IntN(400)
	acked := map[[2]int]ack{}
	last := [crashWriters]int{-1, -1, -1, -1}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		var w, i int
		var a ack
		if _, err := fmt.Sscanf(sc.Text(), "ACK %d %d %d %s", &w, &i, &a.seq, &a.serverID); err != nil {
			continue // test framework output
		}
		acked[[2]int{w, i}] = a
		last[w] = max(last[w], i)
		if !killed && len(acked) >= killAfter {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
	}
	// Acks still in the pipe after the kill were printed after their commit,
	// so they count too.
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("helper finished before the kill (%d acks); raise crashPerWrite", len(acked))
	}
	t.Logf("killed after %d acks (target %d), batch %d", len(acked), killAfter, batch)

	s, err = Open(ctx, path, Options{MaxBatch: batch})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	stored := readAll(t, s, conv.ID)
	byKey := map[[2]int]chat.Message{}
	for _, m := range stored {
		var w, i int
		if _, err := fmt.Sscanf(m.Text, "w%d-%d", &w, &i); err != nil {
			t.Fatalf("unexpected text %q", m.Text)
		}
		if _, dup := byKey[[2]int{w, i}]; dup {
			t.Fatalf("message w%d-%d stored twice", w, i)
		}
		byKey[[2]int{w, i}] = m
	}
	for k, a := range acked {
		m, ok := byKey[k]
		if !ok {
			t.Fatalf("acked message w%d-%d (seq %d) lost in the crash", k[0], k[1], a.seq)
		}
		if m.Seq != a.seq || m.ServerID != a.serverID {
			t.Fatalf("acked w%d-%d as seq %d/%s, stored as %d/%s", k[0], k[1], a.seq, a.serverID, m.Seq, m.ServerID)
		}
	}
	// Each writer sends one at a time, so at most the one after its last
	// ack can be stored without an ack.
	for k := range byKey {
		if k[1] > last[k[0]]+1 {
			t.Fatalf("w%d-%d stored but writer's last ack was %d", k[0], k[1], last[k[0]])
		}
	}

	// The clients reconnect and resend everything they sent but may not
	// have seen acked; nothing may be stored twice.
	want := 0
	for w := range crashWriters {
		for i := 0; i <= last[w]+1; i++ {
			got, dup, err := s.Append(ctx, crashMsg(conv.ID, w, i))
			if err != nil {
				t.Fatalf("retry w%d-%d: %v", w, i, err)
			}
			if orig, ok := byKey[[2]int{w, i}]; ok && (!dup || got.Seq != orig.Seq) {
				t.Fatalf("retry of stored w%d-%d: dup=%v seq=%d, want original seq %d", w, i, dup, got.Seq, orig.Seq)
			}
			want++
		}
	}
	if got := readAll(t, s, conv.ID); len(got) != want {
		t.Fatalf("after retries %d messages, want %d", len(got), want)
	}
}

// readAll pages through a conversation and checks seqs are exactly 1..n.
func readAll(t *testing.T, s *Store, convID string) []chat.Message {
	t.Helper()
	var all []chat.Message
	for {
		page, err := s.Range(t.Context(), convID, int64(len(all)), 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		for _, m := range page {
			if m.Seq != int64(len(all)+1) {
				t.Fatalf("seq %d at position %d: gap or duplicate", m.Seq, len(all)+1)
			}
			all = append(all, m)
		}
	}
}

// runCrashHelper is the child: it appends from several writers and prints
// each ack only after Append returned, until it is killed.
func runCrashHelper(t *testing.T, path string) {
	batch, _ := strconv.Atoi(os.Getenv(crashEnvBatch))
	s, err := Open(t.Context(), path, Options{MaxBatch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conv, err := s.EnsureRoom(t.Context(), crashRoom)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for wr := range crashWriters {
		wg.Go(func() {
			for i := range crashPerWrite {
				m, _, err := s.Append(t.Context(), crashMsg(conv.ID, wr, i))
				if err != nil {
					t.Errorf("helper append: %v", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(w, "ACK %d %d %d %s\n", wr, i, m.Seq, m.ServerID)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
