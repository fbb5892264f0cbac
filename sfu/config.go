package sfu

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the sfu section of Parley's configuration.
type Config struct {
	// UDPPort is the single UDP port every peer's ICE traffic uses (one
	// socket per allowed local address, demultiplexed by ICE ufrag). 0
	// picks a free port per address (tests only: clients cannot be told).
	UDPPort int `yaml:"udp_port"`
	// TCPPort is the ICE-TCP (passive) fallback port for networks that
	// block UDP; 0 disables it.
	TCPPort int `yaml:"tcp_port"`
	// TCPUnauthenticatedPerAddr is how many ICE-TCP connections one
	// address (an IPv6 /64) may hold open before ICE authenticates them;
	// beyond it new ones are closed on accept. Authenticated connections
	// do not count, so many users behind one NAT are not refused.
	TCPUnauthenticatedPerAddr int `yaml:"tcp_unauthenticated_per_addr"`
	// TCPFirstSTUNTimeout is how long an ICE-TCP connection may stay
	// open before its first STUN binding request, and how long a
	// connection whose request names an unknown ufrag is kept.
	TCPFirstSTUNTimeout time.Duration `yaml:"tcp_first_stun_timeout"`
	// BindAddress restricts the listeners to one local IP; "" means every
	// address allowed by Interfaces and CIDRs.
	BindAddress string `yaml:"bind_address"`
	// PublicIPs are advertised instead of (host) or in addition to (srflx)
	// the local addresses, for servers behind a 1:1 NAT such as a cloud VM
	// with an elastic IP.
	PublicIPs []string `yaml:"public_ips"`
	// NAT1To1CandidateType is "host" (default: the public IP replaces the
	// private one in host candidates, so clients on the server's own LAN
	// must hairpin through the NAT) or "srflx" (the public IP is added as a
	// server-reflexive candidate and private host candidates stay).
	NAT1To1CandidateType string `yaml:"nat_1to1_candidate_type"`
	// Interfaces is an allow-list of interface names for ICE gathering
	// (empty = all).
	Interfaces []string `yaml:"interfaces"`
	// CIDRs is an allow-list of local IP ranges for ICE gathering and
	// advertising (empty = all).
	CIDRs []string `yaml:"cidrs"`
	// IncludeLoopback offers loopback candidates (development and tests).
	IncludeLoopback bool `yaml:"include_loopback"`

	// PacketCacheSize is the number of recent video packets kept per track
	// to answer NACKs (rounded up to a power of two).
	PacketCacheSize int `yaml:"packet_cache_size"`
	// AudioCacheSize is the same for audio tracks, which need far fewer.
	AudioCacheSize int `yaml:"audio_cache_size"`
	// SubscriberQueue is the number of packets queued for one subscriber
	// before its packets are dropped (video then waits for a key frame).
	// Must be smaller than AudioCacheSize so a queued packet is still in
	// the cache when the writer gets to it.
	SubscriberQueue int `yaml:"subscriber_queue"`
	// PLIInterval is the minimum time between two key-frame requests sent
	// to a publisher for the same track, however many subscribers ask.
	PLIInterval time.Duration `yaml:"pli_interval"`
	// ReportInterval is the period of RTCP receiver reports to publishers
	// and sender reports to subscribers.
	ReportInterval time.Duration `yaml:"report_interval"`
	// AudioRED negotiates RFC 2198 redundant audio ("audio/red" over
	// Opus) with clients that support it (Chromium): each packet also
	// carries the previous frames, so a lost packet costs no audio. The
	// SFU forwards RED to subscribers that negotiated it and unwraps it
	// to plain Opus for the others. false offers plain Opus only.
	AudioRED bool `yaml:"audio_red"`
	// AudioDTX asks publishers for Opus DTX (usedtx=1 in the answer to
	// their offer): a silent microphone then sends a packet every 400 ms
	// or so instead of 50 a second, which saves upload and forwarding
	// for everyone listening to a muted-in-spirit room. false: browsers
	// send continuously, as they do by default.
	AudioDTX bool `yaml:"audio_dtx"`
	// BandwidthEstimation runs send-side bandwidth estimation (TWCC and
	// the estimator BandwidthEstimator names) on every subscriber connection, probes for more when
	// the estimate is below what the tiles want (probe.go), and lets the
	// estimate cap the simulcast layers each subscriber gets. On by
	// default since 2026-12-07, when the network lab's six scenarios
	// (a capped downlink, steps, loss, a capped publisher uplink,
	// visibility, small tiles) passed run after run and went into CI
	// (docs/lab/README.md). Off, subscriber connections negotiate no
	// transport-cc and layers follow the tiles' sizes only, as before
	// issue #10: about a fifth less server CPU per forwarded packet
	// (docs/benchmarks.md), and no adaptation to a subscriber's network.
	BandwidthEstimation bool `yaml:"bandwidth_estimation"`
	// BandwidthEstimator picks the estimator when BandwidthEstimation is
	// on: "parley" (sfu/internal/sendside, the default; empty means it
	// too: the GCC algorithm on a fixed-size send history, with no
	// allocation per packet) or "pion" (pion/interceptor's GCC, whose
	// per-packet bookkeeping cost about 10% of the server's CPU in a
	// 10 x 10 load run, docs/benchmarks.md). In the lab Parley's met the
	// downlink-cap scenario's figures in eight runs of ten, pion's in
	// three of six, and the scenarios CI runs passed on it
	// (docs/lab/README.md).
	BandwidthEstimator string `yaml:"bandwidth_estimator"`
	// SendBatch sends the media of each subscriber's writer burst (and of
	// the writers running alongside it) with one sendmmsg(2) per batch
	// instead of one sendto per packet, a frame's packets to one
	// subscriber as one UDP GSO message (Linux host sockets only; about
	// 30% less server CPU per forwarded video packet, docs/benchmarks.md).
	SendBatch bool `yaml:"send_batch"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		UDPPort: 7882,
		TCPPort: 7881,
		// A browser opens one ICE-TCP connection per candidate pair per
		// PeerConnection (two per participant): 16 leaves room for a few
		// tabs or users behind one NAT connecting at the same moment.
		TCPUnauthenticatedPerAddr: 16,
		// A client sends its first binding request as soon as it has
		// connected; 5 s covers a slow handshake on a lossy link.
		TCPFirstSTUNTimeout:  5 * time.Second,
		NAT1To1CandidateType: "host",
		PacketCacheSize:      1024,
		AudioCacheSize:       256,
		SubscriberQueue:      192,
		PLIInterval:          500 * time.Millisecond,
		ReportInterval:       time.Second,
		AudioRED:             true,
		AudioDTX:             true,
		SendBatch:            true,
		BandwidthEstimation:  true,
		BandwidthEstimator:   "parley",
	}
}

// Validate reports every invalid field, each error naming its yaml key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sfu.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		bad("udp_port", "%d is not a port (0-65535)", c.UDPPort)
	}
	if c.TCPPort < 0 || c.TCPPort > 65535 {
		bad("tcp_port", "%d is not a port (0-65535, 0 disables ICE-TCP)", c.TCPPort)
	}
	if c.TCPPort != 0 && c.TCPPort == c.UDPPort {
		// Different protocols could share a number, but one number for both
		// makes firewall rules ambiguous in our docs; keep them distinct.
		bad("tcp_port", "must differ from udp_port (%d)", c.UDPPort)
	}
	if c.TCPUnauthenticatedPerAddr < 1 || c.TCPUnauthenticatedPerAddr > 4096 {
		bad("tcp_unauthenticated_per_addr", "%d must be between 1 and 4096", c.TCPUnauthenticatedPerAddr)
	}
	if c.TCPFirstSTUNTimeout < time.Second || c.TCPFirstSTUNTimeout > time.Minute {
		bad("tcp_first_stun_timeout", "%v must be between 1s and 1m", c.TCPFirstSTUNTimeout)
	}
	if c.BindAddress != "" && net.ParseIP(c.BindAddress) == nil {
		bad("bind_address", "%q is not an IP address", c.BindAddress)
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			bad("public_ips", "%q is not an IP address", ip)
		}
	}
	switch c.BandwidthEstimator {
	case "", "pion", "parley":
	default:
		bad("bandwidth_estimator", "%q must be \"pion\" or \"parley\"", c.BandwidthEstimator)
	}
	switch c.NAT1To1CandidateType {
	case "", "host", "srflx":
	default:
		bad("nat_1to1_candidate_type", "%q must be \"host\" or \"srflx\"", c.NAT1To1CandidateType)
	}
	for _, cidr := range c.CIDRs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			bad("cidrs", "%q is not a CIDR range", cidr)
		}
	}
	if c.PacketCacheSize < 64 || c.PacketCacheSize > 32768 {
		bad("packet_cache_size", "%d must be between 64 and 32768", c.PacketCacheSize)
	}
	if c.AudioCacheSize < 32 || c.AudioCacheSize > 32768 {
		bad("audio_cache_size", "%d must be between 32 and 32768", c.AudioCacheSize)
	}
	if c.SubscriberQueue < 8 {
		bad("subscriber_queue", "%d must be at least 8", c.SubscriberQueue)
	} else if c.SubscriberQueue >= c.AudioCacheSize || c.SubscriberQueue >= c.PacketCacheSize {
		bad("subscriber_queue", "%d must be smaller than audio_cache_size and packet_cache_size", c.SubscriberQueue)
	}
	if c.PLIInterval < 0 || c.PLIInterval > 10*time.Second {
		bad("pli_interval", "%v must be between 0 and 10s", c.PLIInterval)
	}
	if c.ReportInterval < 100*time.Millisecond || c.ReportInterval > 10*time.Second {
		bad("report_interval", "%v must be between 100ms and 10s", c.ReportInterval)
	}
	return errors.Join(errs...)
}

func (c Config) parsedCIDRs() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range c.CIDRs {
		if _, n, err := net.ParseCIDR(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// ipAllowed applies CIDRs and BindAddress to one local address.
func (c Config) ipAllowed(nets []*net.IPNet, ip net.IP) bool {
	if c.BindAddress != "" {
		bind := net.ParseIP(c.BindAddress)
		// 0.0.0.0 means every IPv4 address, :: every address.
		if bind.IsUnspecified() {
			if bind.To4() != nil && ip.To4() == nil {
				return false
			}
		} else if !ip.Equal(bind) {
			return false
		}
	}
	if len(nets) == 0 {
		return true
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (c Config) interfaceAllowed(name string) bool {
	if len(c.Interfaces) == 0 {
		return true
	}
	for _, n := range c.Interfaces {
		if n == name {
			return true
		}
	}
	return false
}
