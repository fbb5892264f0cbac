package pgstore

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCheckReachesServerWithoutSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Check(ctx, testURL()); err != nil {
		unreachable(t, err)
	}
	// Nothing listens on port 1; the error names the server, never the
	// password.
	err := Check(ctx, "postgres://parley:hunter2secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("a server that does not exist answered")
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2secret") || !strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("error %q: want the address and no password", msg)
	}
}

func TestPingAfterClose(t *testing.T) {
	s := openTest(t, freshSchema(t), Options{})
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping of an open store: %v", err)
	}
	_ = s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("a closed store answers ping")
	}
}
