package main

// exampleDocs comments the keys of `parley config example` whose
// components do not carry doc tags themselves.
var exampleDocs = map[string]string{
	"signaling":                   "HTTP(S) and WebSocket front door.",
	"signaling.listen":            "Address for the web client, WebSocket, admin API, /metrics and /healthz.",
	"signaling.tls_cert":          "PEM certificate; with tls_key, serve HTTPS/WSS (browsers need a secure context off localhost).",
	"signaling.tls_key":           "PEM private key for tls_cert.",
	"signaling.allowed_origins":   "Extra Origins allowed to open the WebSocket (the server's own host always is), e.g. https://meet.example.com.",
	"signaling.api_keys":          "API key id -> secret (at least 32 bytes). Signs access tokens and authenticates the admin API. Keep this file private.",
	"signaling.dev_mode":          "Let the landing page mint guest tokens (POST /api/dev/token). Never on a public server.",
	"signaling.max_message_bytes": "Largest WebSocket message a client may send.",
	"signaling.rate_per_second":   "Messages per second per connection (token bucket), with rate_burst.",
	"signaling.ping_interval":     "Server heartbeat; a client silent for ping_timeout is dropped.",
	"signaling.token_ttl":         "Lifetime of the refreshed tokens the server sends to joined clients.",
	"sfu":                         "Media forwarding (WebRTC).",
	"sfu.udp_port":                "The one UDP port all WebRTC media uses (ICE UDP mux). Open it in the firewall.",
	"sfu.tcp_port":                "ICE-TCP fallback port for networks that block UDP; 0 turns it off.",
	"sfu.bind_address":            "Address the media ports bind to; empty means all.",
	"sfu.public_ips":              "Public IPs to advertise when Parley runs behind NAT (1:1), e.g. a cloud VM's public address.",
	"sfu.interfaces":              "Network interfaces ICE may gather candidates on; empty means all.",
	"sfu.cidrs":                   "Address ranges ICE may gather and advertise; empty means all.",
	"sfu.include_loopback":        "Offer loopback candidates (dev mode and tests: calls between browsers on the same machine).",
}
