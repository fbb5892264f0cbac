package ingest

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	streams     *prometheus.GaugeVec   // protocol
	started     *prometheus.CounterVec // protocol
	refused     *prometheus.CounterVec // protocol, reason
	revokedLive *prometheus.CounterVec // protocol
	keyframes   *prometheus.CounterVec // protocol, result
	reconnect   prometheus.Counter
	whip        *prometheus.CounterVec // method, status
	relays      prometheus.Gauge
	relayed     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parley_ingest_streams",
			Help: "Live ingest streams by protocol (rtmp, whip)."}, []string{"protocol"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ingest_streams_started_total",
			Help: "Ingest streams started by protocol."}, []string{"protocol"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ingest_refused_total",
			Help: "Ingest streams refused by protocol and reason."}, []string{"protocol", "reason"}),
		revokedLive: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ingest_revoked_live_total",
			Help: "Live ingest streams ended because their stream key was revoked."}, []string{"protocol"}),
		keyframes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ingest_keyframe_requests_total",
			Help: "Viewers' key-frame requests (after the SFU's throttle): forwarded to a WHIP encoder, or unsupported (RTMP cannot carry them)."},
			[]string{"protocol", "result"}),
		reconnect: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_ingest_reconnects_total",
			Help: "Streams that reconnected within reconnect_grace and kept their participant."}),
		whip: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ingest_whip_requests_total",
			Help: "WHIP HTTP requests by method and status code."}, []string{"method", "status"}),
		relays: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_ingest_relays",
			Help: "RTMP publishes currently relayed over WHIP to the cluster node that hosts their room."}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_ingest_relayed_total",
			Help: "RTMP publishes relayed over WHIP to the cluster node that hosts their room."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.streams, m.started, m.refused, m.revokedLive, m.keyframes, m.reconnect, m.whip, m.relays, m.relayed} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("ingest metrics: %w (one Service per registry)", err)
			}
			return nil, fmt.Errorf("ingest metrics: %w", err)
		}
	}
	return m, nil
}
