package rtmp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, the values of the "reason" label.
const (
	reasonApp          = "wrong_app"
	reasonUnknownKey   = "unknown_key"
	reasonRevokedKey   = "revoked_key"
	reasonKeyInUse     = "key_in_use"
	reasonKeyStore     = "keystore_error"
	reasonSink         = "sink_error"
	reasonSinkEnded    = "sink_ended"
	reasonVideoCodec   = "unsupported_video"
	reasonBFrames      = "bframes"
	reasonMalformed    = "malformed"
	reasonTooLarge     = "message_too_large"
	reasonTooManyConns = "too_many_connections"
	reasonChunkStreams = "too_many_chunk_streams"
	reasonBufferBudget = "buffer_budget"
	reasonAMF          = "amf_declared_too_large"
	// Connection slots (the connection was closed before it published).
	reasonPerIP            = "too_many_connections_per_ip"
	reasonEvicted          = "evicted_unauthenticated"
	reasonEvictedPerIP     = "evicted_unauthenticated_per_ip"
	reasonHandshakeTimeout = "handshake_timeout"
	reasonServerShutdown   = "shutdown"
)

// metrics are the parley_rtmp_* series. A nil *metrics is valid and does
// nothing, so tests and callers without a registry need no special case.
type metrics struct {
	active       prometheus.Gauge
	connections  prometheus.Gauge
	unauth       prometheus.Gauge
	bytesIn      *prometheus.CounterVec
	bitrate      *prometheus.HistogramVec
	keyframeIvl  prometheus.Histogram
	restarts     prometheus.Counter
	refused      *prometheus.CounterVec
	audioDrops   prometheus.Counter
	panics       prometheus.Counter
	videoLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_rtmp_active_streams", Help: "RTMP publishes currently live.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_rtmp_connections", Help: "Open RTMP TCP connections.",
		}),
		unauth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_rtmp_unauthenticated_connections", Help: "Open RTMP connections whose publish key has not been accepted yet.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rtmp_received_bytes_total", Help: "Media payload bytes received from publishers; rate() is the ingest bitrate.",
		}, []string{"kind"}),
		bitrate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_rtmp_stream_bitrate_bits_per_second",
			Help:    "Per-stream media bitrate, observed every 5 s of stream time.",
			Buckets: prometheus.ExponentialBuckets(32_000, 2, 10),
		}, []string{"kind"}),
		keyframeIvl: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_rtmp_keyframe_interval_seconds",
			Help:    "Time between video keyframes (stream time); long intervals make joins slow.",
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 8, 10, 20},
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rtmp_transcoder_restarts_total", Help: "Audio transcoder restarts after it died or failed to start.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rtmp_refused_publishes_total", Help: "Publishes refused or stopped by Parley, by reason.",
		}, []string{"reason"}),
		audioDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rtmp_audio_frames_dropped_total", Help: "AAC frames dropped because the transcoder was down or behind.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_rtmp_connection_panics_total", Help: "Panics recovered on an RTMP connection (the connection was closed).",
		}),
		videoLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_rtmp_video_remux_seconds",
			Help:    "Time from a complete FLV video tag to its RTP packets handed to the SFU.",
			Buckets: prometheus.ExponentialBuckets(0.000_01, 4, 8),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.active, m.connections, m.unauth, m.bytesIn, m.bitrate, m.keyframeIvl, m.restarts, m.refused, m.audioDrops, m.panics, m.videoLatency} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) transcoderRestart() {
	if m != nil {
		m.restarts.Inc()
	}
}

func (m *metrics) audioDropped() {
	if m != nil {
		m.audioDrops.Inc()
	}
}

func (m *metrics) bytes(kind string, n int) {
	if m != nil {
		m.bytesIn.WithLabelValues(kind).Add(float64(n))
	}
}

func (m *metrics) streamBitrate(kind string, bps float64) {
	if m != nil {
		m.bitrate.WithLabelValues(kind).Observe(bps)
	}
}

func (m *metrics) keyframeInterval(sec float64) {
	if m != nil {
		m.keyframeIvl.Observe(sec)
	}
}

func (m *metrics) panicked() {
	if m != nil {
		m.panics.Inc()
	}
}

func (m *metrics) streamStarted() {
	if m != nil {
		m.active.Inc()
	}
}

func (m *metrics) streamEnded() {
	if m != nil {
		m.active.Dec()
	}
}

func (m *metrics) connOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *metrics) unauthChanged(d float64) {
	if m != nil {
		m.unauth.Add(d)
	}
}

func (m *metrics) connClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

func (m *metrics) remuxed(sec float64) {
	if m != nil {
		m.videoLatency.Observe(sec)
	}
}
