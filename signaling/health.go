package signaling

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// healthTimeout bounds each check of /healthz: a load balancer polls it
// and must get an answer even when a service hangs.
const healthTimeout = 2 * time.Second

// handleHealth answers /healthz: "ok" when every external service the
// node depends on answers (each named on its own line), 503 and
// "unavailable" beside the failing one otherwise. The reason goes to the
// log at debug level, not to the (unauthenticated) response.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	names := make([]string, 0, len(s.health))
	for name := range s.health {
		names = append(names, name)
	}
	slices.Sort(names)
	results := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			results[i] = s.health[name](ctx)
		})
	}
	wg.Wait()
	var b strings.Builder
	healthy := true
	for i, name := range names {
		state := "ok"
		if results[i] != nil {
			healthy, state = false, "unavailable"
			s.log.Debug("health check failed", "service", name, "err", results[i])
		}
		fmt.Fprintf(&b, "\n%s: %s", name, state)
	}
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, "unavailable"+b.String())
		return
	}
	_, _ = fmt.Fprint(w, "ok"+b.String())
}
