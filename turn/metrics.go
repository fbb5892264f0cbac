package turn

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/promreg"
)

// metrics are the parley_turn_* series. They exist (and are updated) even
// without a registerer so the server and its tests can read them.
type metrics struct {
	allocationsActive   prometheus.Gauge
	allocationsCreated  prometheus.Counter
	allocationsDeleted  *prometheus.CounterVec
	permissionsActive   prometheus.Gauge
	permissionsCreated  prometheus.Counter
	channelsActive      prometheus.Gauge
	relayedBytes        *prometheus.CounterVec
	relayedPackets      *prometheus.CounterVec
	droppedPackets      *prometheus.CounterVec
	peerDenials         *prometheus.CounterVec
	quotaRejections     *prometheus.CounterVec
	authFailures        *prometheus.CounterVec
	requestErrors       prometheus.Counter
	conns               *connMetrics
	logsSuppressed      prometheus.Counter
	amplificationDrops  prometheus.Counter
	bytesToPeer         prometheus.Counter
	bytesToClient       prometheus.Counter
	packetsToPeer       prometheus.Counter
	packetsToClient     prometheus.Counter
	droppedBandwidthOut prometheus.Counter
	droppedBandwidthIn  prometheus.Counter
	droppedSendFailed   prometheus.Counter
	droppedSendFailedTo prometheus.Counter
	droppedBacklogIn    prometheus.Counter
	droppedBacklogOut   prometheus.Counter
	droppedClientBehind prometheus.Counter
	tcpBacklogCloses    prometheus.Counter
	answersRateLimited  prometheus.Counter
}

// connMetrics describe the TCP/TLS listeners' budgets (connbudget.go),
// each labelled by listener ("tcp" or "tls").
type connMetrics struct {
	active          *prometheus.GaugeVec
	unauthenticated *prometheus.GaugeVec
	refused         *prometheus.CounterVec // and reason
	evicted         *prometheus.CounterVec
	authTimeouts    *prometheus.CounterVec
}

func newConnMetrics() *connMetrics {
	return &connMetrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_turn_tcp_connections_active", Help: "Client TCP and TLS connections open now, by listener."},
			[]string{"listener"}),
		unauthenticated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_turn_tcp_connections_unauthenticated",
			Help: "Client TCP and TLS connections open now that have not authenticated yet, by listener."},
			[]string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_tcp_connections_refused_total",
			Help: "Client TCP and TLS connections closed at accept, by listener and reason (pool_full: max_tcp_connections or max_tls_connections reached with every connection authenticated; address_cap: max_tcp_connections_per_ip; address_unauthenticated_cap: max_tcp_unauthenticated_per_ip)."},
			[]string{"listener", "reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_tcp_connections_evicted_total",
			Help: "Unauthenticated client connections closed to make room for a newcomer in a full pool, by listener."},
			[]string{"listener"}),
		authTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_tcp_auth_timeouts_total",
			Help: "Client TCP and TLS connections closed because they had not authenticated within tcp_auth_timeout, by listener."},
			[]string{"listener"}),
	}
}

func (c *connMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.active, c.unauthenticated, c.refused, c.evicted, c.authTimeouts}
}

// Allocation deletion reasons.
const (
	deleteExpired    = "expired"
	deleteReleased   = "released"
	deleteConnClosed = "connection_closed"
)

// Direction label values.
const (
	dirToPeer   = "to_peer"
	dirToClient = "to_client"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		allocationsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_turn_allocations_active", Help: "TURN allocations that exist now."}),
		allocationsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_allocations_created_total", Help: "TURN allocations created."}),
		allocationsDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_allocations_deleted_total",
			Help: "TURN allocations ended, by reason: expired (not refreshed), released (Refresh with lifetime 0), connection_closed (TCP client left)."},
			[]string{"reason"}),
		permissionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_turn_permissions_active", Help: "TURN permissions that exist now."}),
		permissionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_permissions_created_total", Help: "TURN permissions created."}),
		channelsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_turn_channels_active", Help: "TURN channel bindings that exist now."}),
		relayedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_relayed_bytes_total",
			Help: "Payload bytes relayed, by direction (to_peer: sent from relay sockets; to_client: received on relay sockets)."},
			[]string{"direction"}),
		relayedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_relayed_packets_total", Help: "Datagrams or TCP reads relayed, by direction."},
			[]string{"direction"}),
		droppedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_dropped_packets_total", Help: "Relay datagrams dropped, by direction and reason."},
			[]string{"direction", "reason"}),
		peerDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_peer_denials_total",
			Help: "CreatePermission, ChannelBind and Connect requests refused by the peer policy, by reason."},
			[]string{"reason"}),
		quotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_quota_rejections_total", Help: "Allocate requests answered 486, by quota scope."},
			[]string{"scope"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turn_auth_failures_total", Help: "Authenticated requests refused, by reason."},
			[]string{"reason"}),
		requestErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_request_errors_total", Help: "Client packets the TURN engine could not handle."}),
		conns: newConnMetrics(),
		answersRateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_answers_rate_limited_total",
			Help: "UDP answers not sent because their destination, holding no allocation, had used its unallocated_answer_rate."}),
		tcpBacklogCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_tcp_connections_flooded_total",
			Help: "Client TCP connections closed because they sent requests faster than they were answered."}),
		logsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_logs_suppressed_total", Help: "Denial and auth-failure log lines skipped by the log rate limit."}),
		amplificationDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_turn_amplification_drops_total",
			Help: "Answers to requests without MESSAGE-INTEGRITY not sent because they outgrew the request by more than the allowed slack."}),
	}
	m.bytesToPeer = m.relayedBytes.WithLabelValues(dirToPeer)
	m.bytesToClient = m.relayedBytes.WithLabelValues(dirToClient)
	m.packetsToPeer = m.relayedPackets.WithLabelValues(dirToPeer)
	m.packetsToClient = m.relayedPackets.WithLabelValues(dirToClient)
	m.droppedBandwidthOut = m.droppedPackets.WithLabelValues(dirToPeer, "bandwidth")
	m.droppedBandwidthIn = m.droppedPackets.WithLabelValues(dirToClient, "bandwidth")
	m.droppedSendFailed = m.droppedPackets.WithLabelValues(dirToClient, "send_failed")
	m.droppedSendFailedTo = m.droppedPackets.WithLabelValues(dirToPeer, "send_failed")
	m.droppedBacklogIn = m.droppedPackets.WithLabelValues(dirToClient, "backlog")
	m.droppedBacklogOut = m.droppedPackets.WithLabelValues(dirToPeer, "backlog")
	m.droppedClientBehind = m.droppedPackets.WithLabelValues(dirToClient, "client_behind")
	if err := promreg.Register(reg, "turn", append([]prometheus.Collector{
		m.allocationsActive, m.allocationsCreated, m.allocationsDeleted, m.permissionsActive,
		m.permissionsCreated, m.channelsActive, m.relayedBytes, m.relayedPackets, m.droppedPackets,
		m.peerDenials, m.quotaRejections, m.authFailures, m.requestErrors,
		m.tcpBacklogCloses, m.logsSuppressed, m.amplificationDrops, m.answersRateLimited,
	}, m.conns.collectors()...)...); err != nil {
		return nil, err
	}
	return m, nil
}
