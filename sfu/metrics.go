package sfu

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/promreg"
	"github.com/parleyhq/parley/sfu/internal/probe"
)

// Drop reasons, used as the "reason" label and as TrackStats.Drops keys.
const (
	DropQueueFull   = "queue_full"    // subscriber's send queue was full
	DropKeyframe    = "keyframe_wait" // video waiting for a key frame after a drop or join
	DropLate        = "late"          // out-of-order packet older than a sequence rewrite
	DropCacheMiss   = "cache_miss"    // queued packet already evicted from the cache
	DropWriteFailed = "write_failed"  // SRTP/transport write returned an error
)

const numDropReasons = 5

var dropReasons = [numDropReasons]string{DropQueueFull, DropKeyframe, DropLate, DropCacheMiss, DropWriteFailed} //nolint:gochecknoglobals // read-only table

type dropReason uint8

// numProbeOutcomes bounds probe.Outcome, metrics.probes' index.
const numProbeOutcomes = probe.OutcomeNoData + 1

const (
	dropQueueFull dropReason = iota
	dropKeyframe
	dropLate
	dropCacheMiss
	dropWriteFailed
)

// Reasons an ICE-TCP connection is closed before ICE authenticated it,
// used as the "reason" label of parley_sfu_ice_tcp_refused_total.
const (
	RefusedPerAddrCap = "per_addr_cap" // its address already held tcp_unauthenticated_per_addr
	RefusedReadBudget = "read_budget"  // it sent more than a client's STUN checks would
	// RefusedAcceptError counts the listener's accept failures (out of
	// file descriptors, say), waited out and retried.
	RefusedAcceptError = "accept_error"
)

type refusedReason uint8

const (
	refusedPerAddrCap refusedReason = iota
	refusedReadBudget
	refusedAcceptError
	numRefusedReasons
)

var refusedReasons = [numRefusedReasons]string{RefusedPerAddrCap, RefusedReadBudget, RefusedAcceptError} //nolint:gochecknoglobals // read-only table

// metrics are the SFU's Prometheus collectors. Per-packet counters are
// resolved to their label children once so the hot path is one atomic add.
type metrics struct {
	rooms, participants, tracks prometheus.Gauge

	packetsForwarded prometheus.Counter
	bytesForwarded   prometheus.Counter
	drops            [numDropReasons]prometheus.Counter
	nacksIn          prometheus.Counter
	nacksOut         prometheus.Counter
	plisIn           prometheus.Counter
	plisOut          prometheus.Counter
	retransmits      prometheus.Counter
	nackAnswers      [numRTXOutcomes]prometheus.Counter
	rtxIn, rtxOut    prometheus.Counter
	redUnwrapped     prometheus.Counter
	redRecovered     prometheus.Counter
	speakerChanges   prometheus.Counter
	layerSwitches    prometheus.Counter
	belowWanted      prometheus.Counter
	estimatedBitrate prometheus.Histogram
	probeBytes       prometheus.Counter
	probes           [numProbeOutcomes]prometheus.Counter

	iceTCPUnauthenticated prometheus.Gauge
	iceTCPRefused         [numRefusedReasons]prometheus.Counter
	iceLogSuppressed      prometheus.Counter
	// udpSockets are the UDP mux's raw sockets, set once it is bound,
	// read by parley_sfu_udp_send_errors_total at each scrape.
	udpSockets atomic.Pointer[corkSet]
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rooms:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_sfu_rooms", Help: "Rooms with at least one participant."}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_sfu_participants", Help: "Participants joined to the SFU."}),
		tracks:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_sfu_tracks", Help: "Published tracks."}),
		packetsForwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_packets_forwarded_total",
			Help: "RTP packets sent to subscribers (one per packet per subscriber, retransmissions excluded)."}),
		bytesForwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_bytes_forwarded_total",
			Help: "RTP payload bytes sent to subscribers."}),
		retransmits: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_retransmits_total",
			Help: "Packets resent from the packet cache in answer to subscriber NACKs."}),
		redUnwrapped: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_red_unwrapped_total",
			Help: "RED audio packets unwrapped to Opus for subscribers that did not negotiate RED (once per packet, not per subscriber)."}),
		redRecovered: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_red_recovered_total",
			Help: "Opus frames lost on a publisher's uplink and recovered from RED redundancy."}),
		speakerChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_speaker_changes_total",
			Help: "Changes of a room's active speaker."}),
		layerSwitches: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_layer_switches_total",
			Help: "Simulcast layer changes made for subscribers (each at a key frame of the new layer)."}),
		belowWanted: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_below_wanted_seconds_total",
			Help: "Subscriber-seconds a visible simulcast video was received below the layer its tile wants (too little bandwidth, or the layer does not arrive)."}),
		estimatedBitrate: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_sfu_estimated_bandwidth_bits",
			Help:    "Subscriber connections' estimated available bandwidth (GCC's, or the probed floor while above it), bit/s, sampled once a second per subscriber.",
			Buckets: prometheus.ExponentialBuckets(125_000, 2, 8)}),
		probeBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_probe_bytes_total",
			Help: "Bytes of padding-only packets sent to subscribers to probe their bandwidth (RTP header and padding)."}),
		iceTCPUnauthenticated: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_sfu_ice_tcp_unauthenticated",
			Help: "ICE-TCP connections held that no ICE agent has authenticated yet."}),
		iceLogSuppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_sfu_ice_log_suppressed_total",
			Help: "Warnings about junk on the media ports not written to the log (rate-limited)."}),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_ice_tcp_refused_total",
		Help: "ICE-TCP connections closed before ICE authenticated them, by reason."}, []string{"reason"})
	for i, r := range refusedReasons {
		m.iceTCPRefused[i] = refused.WithLabelValues(r)
	}
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_drops_total",
		Help: "Packets not forwarded to a subscriber, by reason."}, []string{"reason"})
	nacks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_nacks_total",
		Help: "NACKed sequence numbers: in = from subscribers, out = sent to publishers."}, []string{"direction"})
	plis := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_plis_total",
		Help: "Key-frame requests: in = PLI/FIR from subscribers, out = PLI sent to publishers."}, []string{"direction"})
	for i, r := range dropReasons {
		m.drops[i] = drops.WithLabelValues(r)
	}
	m.nacksIn, m.nacksOut = nacks.WithLabelValues("in"), nacks.WithLabelValues("out")
	m.plisIn, m.plisOut = plis.WithLabelValues("in"), plis.WithLabelValues("out")
	probes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_probes_total",
		Help: "Bandwidth probe clusters sent to subscribers, by outcome: success (delivered at the rate sent: the estimate rose), limited (queued or lost: the link is full), aborted (congestion showed while sent), no_data (too little feedback)."},
		[]string{"outcome"})
	for o := probe.OutcomeSuccess; o < numProbeOutcomes; o++ {
		m.probes[o] = probes.WithLabelValues(o.String())
	}
	rtx := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_rtx_packets_total",
		Help: "Video retransmissions on RTX streams (RFC 4588): in = received from publishers, out = sent to subscribers (also counted in parley_sfu_retransmits_total)."},
		[]string{"direction"})
	m.rtxIn, m.rtxOut = rtx.WithLabelValues("in"), rtx.WithLabelValues("out")
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_sfu_nack_answers_total",
		Help: "Sequence numbers subscribers NACKed that were in the packet cache, by what the SFU did: resent (queued for retransmission), too_recent (resent less than a round trip ago), max_attempts (resent 4 times already), over_budget (the subscriber's retransmission budget was spent), left_layer (of a simulcast layer the subscriber has been switched away from)."},
		[]string{"outcome"})
	for i, o := range rtxOutcomes {
		m.nackAnswers[i] = answers.WithLabelValues(o)
	}
	sendErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sfu_udp_send_errors_total",
		Help: "Batched media datagrams the kernel refused after their writer was told they were sent (sfu.send_batch)."},
		func() float64 { return float64(m.udpSockets.Load().sendErrors()) })
	if err := promreg.Register(reg, "sfu", sendErrors, m.rooms, m.participants, m.tracks, m.packetsForwarded,
		m.bytesForwarded, m.retransmits, m.redUnwrapped, m.redRecovered, m.speakerChanges, m.layerSwitches, m.belowWanted, m.estimatedBitrate, m.probeBytes, probes, drops, nacks, answers, plis, rtx, m.iceTCPUnauthenticated, refused, m.iceLogSuppressed); err != nil {
		return nil, err
	}
	return m, nil
}
