package signaling

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created even without a Registerer so the code never checks
// for nil; they are just not exported then.
type metrics struct {
	connections  prometheus.Gauge
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	rooms        prometheus.Gauge
	participants prometheus.Gauge
	queueDrops   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_connections",
			Help: "Open WebSocket connections.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_messages_total",
			Help: "Client messages received, by type (unknown types as \"unknown\").",
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_errors_total",
			Help: "Error messages sent to clients, by code.",
		}, []string{"code"}),
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_rooms",
			Help: "Rooms with at least one participant.",
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_participants",
			Help: "Joined participants.",
		}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signaling_send_queue_drops_total",
			Help: "Clients disconnected because their send queue was full.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.messages, m.errors, m.rooms, m.participants, m.queueDrops} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register signaling metrics: %w", err)
		}
	}
	return m, nil
}

// knownTypes bounds the label values of messages_total.
var knownTypes = map[string]bool{
	TypeJoin: true, TypePublish: true, TypeUnpublish: true, TypeOffer: true,
	TypeAnswer: true, TypeCandidate: true, TypeICERestart: true, TypeMute: true,
	TypePong: true, TypeLeave: true,
}

func (m *metrics) countMessage(typ string) {
	if !knownTypes[typ] {
		typ = "unknown"
	}
	m.messages.WithLabelValues(typ).Inc()
}
