package signaling

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/promreg"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/proto"
)

// metrics are created even without a Registerer so the code never checks
// for nil; they are just not exported then.
type metrics struct {
	connections  prometheus.Gauge
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	rooms        prometheus.GaugeFunc
	participants prometheus.GaugeFunc
	queueDrops   prometheus.Counter
	sessions     prometheus.Gauge
	chatPushes   prometheus.Counter
	calls        *prometheus.CounterVec
	ringing      prometheus.Gauge
	moderation   *prometheus.CounterVec
	// relayed and relayFailures: join_relay.go.
	relayed       prometheus.Gauge
	relayFailures prometheus.Counter
}

// newMetrics makes the counters; the room gauges read dir.
func newMetrics(reg prometheus.Registerer, dir *rooms.Directory) (*metrics, error) {
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
		rooms: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_signaling_rooms",
			Help: "Rooms with at least one participant.",
		}, func() float64 { n, _ := dir.Counts(); return float64(n) }),
		participants: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_signaling_participants",
			Help: "Joined participants (ingest streams included).",
		}, func() float64 { _, n := dir.Counts(); return float64(n) }),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signaling_send_queue_drops_total",
			Help: "Clients disconnected because their send queue was full.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_sessions",
			Help: "Messaging sessions (call and messaging-only connections of identities, with chat enabled).",
		}),
		chatPushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signaling_chat_pushes_total",
			Help: "Chat events (messages, call entries) queued to member sessions.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_calls_total",
			Help: "Call invitations by how they ended for a callee: accepted, declined, missed.",
		}, []string{"outcome"}),
		ringing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_calls_ringing",
			Help: "Call invitations ringing now.",
		}),
		moderation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signaling_moderation_actions_total",
			Help: "Moderation actions carried out, by action (moderators and the admin API).",
		}, []string{"action"}),
		relayed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_signaling_relayed_sessions",
			Help: "Client connections whose room is hosted by another node and whose signaling this node relays there (cluster.relay_signaling).",
		}),
		relayFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signaling_relay_failures_total",
			Help: "Relayed sessions refused or ended because the room's node could not be reached or stopped answering.",
		}),
	}
	if err := promreg.Register(reg, "signaling", m.connections, m.messages, m.errors, m.rooms, m.participants,
		m.queueDrops, m.sessions, m.chatPushes, m.calls, m.ringing, m.moderation, m.relayed, m.relayFailures); err != nil {
		return nil, err
	}
	return m, nil
}

// countMessage counts a client message by type. The label set is proto's
// registry plus "unknown", so a client cannot grow it.
func (m *metrics) countMessage(typ string) {
	if _, ok := proto.Lookup(typ); !ok {
		typ = "unknown"
	}
	m.messages.WithLabelValues(typ).Inc()
}
