package chat

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	stored     *prometheus.CounterVec
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	appendTime prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_chat_events_stored_total",
			Help: "Chat events durably stored, by kind.",
		}, []string{"kind"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_duplicates_total",
			Help: "Sends answered with the original ack because the client message id was already stored (client retries).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_chat_rejected_total",
			Help: "Chat events refused, by reason.",
		}, []string{"reason"}),
		appendTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_chat_append_seconds",
			Help:    "Time from a send reaching the store to its durable ack.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.stored, m.duplicates, m.rejected, m.appendTime} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("chat metrics: %w", err)
		}
	}
	return m, nil
}

// reason names the sentinel behind err for the rejected counter, so the
// label set stays small and fixed.
func reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrInvalid, "invalid"}, {ErrTooLarge, "too_large"}, {ErrNotMember, "not_member"},
		{ErrNotFound, "not_found"}, {ErrForbidden, "forbidden"}, {ErrConflict, "conflict"},
		{ErrClosed, "closed"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "error"
}
