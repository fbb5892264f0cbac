package signaling

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/peraddr"
	"github.com/parleyhq/parley/internal/promreg"
)

// edge holds what the server checks at its HTTP edge, before a request
// reaches a route's handler and its authentication (docs/limits.md):
// the client address (trusted_proxies), request body deadlines and sizes
// (bodylimit.go), the cap on WebSockets that have not joined yet
// (addrcap.go), and dev mode's Host check (hostcheck.go).
type edge struct {
	resolver *peraddr.Resolver
	unjoined *peraddr.Cap
	devHosts devHosts
	refused  *prometheus.CounterVec // by reason
}

func newEdge(cfg Config, reg prometheus.Registerer) (*edge, error) {
	res, err := peraddr.NewResolver(cfg.TrustedProxies, cfg.ForwardedHeader)
	if err != nil {
		return nil, fmt.Errorf("signaling.trusted_proxies: %w", err)
	}
	capped, err := peraddr.NewCap(peraddr.CapConfig{PerAddr: cfg.MaxUnjoinedPerAddress})
	if err != nil {
		return nil, fmt.Errorf("signaling.max_unjoined_per_address: %w", err)
	}
	e := &edge{
		resolver: res,
		unjoined: capped,
		devHosts: newDevHosts(cfg.DevAllowedHosts),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_http_refused_total",
			Help: "HTTP requests refused at the edge, by reason (body_timeout, body_too_large, unjoined_cap, dev_host, cross_site, content_type).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"body_timeout", "body_too_large", "unjoined_cap", "dev_host", "cross_site", "content_type"} {
		e.refused.WithLabelValues(r) // export zeros, so alerts see the series
	}
	if err := promreg.Register(reg, "signaling edge", e.refused); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *edge) refuse(reason string) { e.refused.WithLabelValues(reason).Inc() }

// wrap puts the edge in front of mux: every request gets its resolved
// client address in its context (peraddr.FromRequest, which WHIP's rate
// limit reads too) and, if it carries a body, the body's deadline and
// size limit for the route mux will pick.
func (e *edge) wrap(mux *http.ServeMux, s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(peraddr.WithClientAddr(r.Context(), e.resolver.ClientAddr(r)))
		if !s.limitBody(w, r, mux) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}
