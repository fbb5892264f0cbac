package main

// exampleDocs comments the keys of `parley config example` whose
// components do not carry doc tags themselves.
var exampleDocs = map[string]string{ //nolint:gochecknoglobals // read-only table
	"signaling":                        "HTTP(S) and WebSocket front door.",
	"signaling.listen":                 "Address for the web client, WebSocket, admin API, /metrics and /healthz.",
	"signaling.tls_cert":               "PEM certificate; with tls_key, serve HTTPS/WSS (browsers need a secure context off localhost).",
	"signaling.tls_key":                "PEM private key for tls_cert.",
	"signaling.allowed_origins":        "Extra Origins allowed to open the WebSocket (the server's own host always is), e.g. https://meet.example.com.",
	"signaling.api_keys":               "API key id -> secret (at least 32 bytes). Signs access tokens and authenticates the admin API. Keep this file private.",
	"signaling.dev_mode":               "Let the landing page mint guest tokens (POST /api/dev/token). Never on a public server.",
	"signaling.max_message_bytes":      "Largest WebSocket message a client may send.",
	"signaling.rate_per_second":        "Messages per second per connection (token bucket), with rate_burst.",
	"signaling.ping_interval":          "Server heartbeat; a client silent for ping_timeout is dropped.",
	"signaling.token_ttl":              "Lifetime of the refreshed tokens the server sends to joined clients.",
	"sfu":                              "Media forwarding (WebRTC).",
	"sfu.udp_port":                     "The one UDP port all WebRTC media uses (ICE UDP mux). Open it in the firewall.",
	"sfu.tcp_port":                     "ICE-TCP fallback port for networks that block UDP; 0 turns it off.",
	"sfu.tcp_unauthenticated_per_addr": "ICE-TCP connections one address (IPv6 /64) may hold before ICE authenticates them; more are closed on accept.",
	"sfu.tcp_first_stun_timeout":       "How long an ICE-TCP connection may wait before its first STUN binding request (and how long one naming an unknown ufrag is kept).",
	"sfu.bind_address":                 "Address the media ports bind to; empty means all.",
	"sfu.public_ips":                   "Public IPs to advertise when Parley runs behind NAT (1:1), e.g. a cloud VM's public address.",
	"sfu.interfaces":                   "Network interfaces ICE may gather candidates on; empty means all.",
	"sfu.cidrs":                        "Address ranges ICE may gather and advertise; empty means all.",
	"sfu.include_loopback":             "Offer loopback candidates (dev mode and tests: calls between browsers on the same machine).",
	"sfu.bandwidth_estimation":         "Estimate each subscriber's bandwidth (TWCC, GCC) and cap its simulcast layers by it, probing with padding when tiles want more. On by default (the lab's six scenarios in CI, docs/lab/README.md); off, layers follow tile sizes only, for about a fifth less CPU per forwarded packet.",
	"sfu.bandwidth_estimator":          "With bandwidth_estimation on: parley (the default: the GCC algorithm on a fixed send history, no allocation per packet; 16-23% less CPU per forwarded packet than pion's, and better in the lab's cap scenarios) or pion (pion/interceptor's GCC).",
	"sfu.audio_dtx":                    "Ask browsers for Opus DTX (usedtx=1): a silent microphone sends a packet every few hundred ms instead of 50 a second. false: continuous audio.",
	"sfu.send_batch":                   "Send each burst of media packets with one sendmmsg(2) call, a frame's packets to one subscriber as one UDP GSO message (Linux). false: one sendto per packet.",
	"sfu.audio_red":                    "Negotiate RED (redundant audio) with browsers that have it; the SFU unwraps it for the others. false: plain Opus only.",
}

func init() {
	for k, v := range map[string]string{
		"signaling.chat_rate_per_second":      "Chat writes (send, receipts, conversations, calls) per second per connection, with chat_rate_burst.",
		"signaling.typing_rate_per_second":    "Typing notices per second per connection.",
		"signaling.chat_page_max":             "Largest history/sync page a client may ask for.",
		"signaling.max_sessions_per_identity": "Simultaneous connections (devices, tabs) per identity.",
		"signaling.call_ring_timeout":         "How long a call rings before it counts as missed.",
		"signaling.call_token_ttl":            "Lifetime of the fresh room tokens handed out when a call is accepted.",
		"chat":                                "Chat storage: embedded SQLite in data_dir (unless db_path says otherwise), or PostgreSQL with store: postgres.",
		"chat.data_dir":                       "Directory for chat.db; empty follows the top-level data_dir.",
		"chat.max_message_bytes":              "Largest chat message text in bytes.",
		"turn":                                "Embedded TURN server (off by default; `parley turn` runs it alone).",
		"turn.shared_secrets":                 "TURN REST secrets (coturn's use-auth-secret); the first signs new credentials, all are accepted, for rotation.",
		"turn.allowed_peer_cidrs":             "Peer ranges TURN may relay to despite the special-purpose deny list, e.g. the SFU's private address.",
		"turn.public_ipv4":                    "Public IPv4 address advertised as the relay address.",
		"turn.event_loops":                    "Goroutines reading the TURN sockets through epoll; 0 means one per 4 CPUs (each relays a few hundred thousand packets/s).",
		"turn.unallocated_answer_rate":        "Answers per second over UDP to one source without an allocation (bounds reflection through forged sources); 0 = unlimited.",
	} {
		exampleDocs[k] = v
	}
}
