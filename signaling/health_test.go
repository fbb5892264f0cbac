package signaling

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// /healthz names each service the node depends on and answers 503 while
// one of them is down, without telling the world why.
func TestHealthzReportsServices(t *testing.T) {
	var pgDown atomic.Bool
	env := startServerDeps(t, nil, func(d *Deps) {
		d.Health = map[string]func(context.Context) error{
			"postgres": func(context.Context) error {
				if pgDown.Load() {
					return errors.New("dial tcp 10.0.0.5:5432: connection refused")
				}
				return nil
			},
			"redis": func(context.Context) error { return nil },
		}
	})
	code, body := env.do(httpReq{method: "GET", path: "/healthz"})
	if code != 200 || string(body) != "ok\npostgres: ok\nredis: ok" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	pgDown.Store(true)
	code, body = env.do(httpReq{method: "GET", path: "/healthz"})
	if code != 503 || string(body) != "unavailable\npostgres: unavailable\nredis: ok" {
		t.Fatalf("postgres down: %d %q", code, body)
	}
	if strings.Contains(string(body), "10.0.0.5") {
		t.Fatal("the failure's details reached the unauthenticated response")
	}
}
