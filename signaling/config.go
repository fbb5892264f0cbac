package signaling

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// Config is the "signaling" section of the configuration file.
type Config struct {
	// Listen is the HTTP(S) address for the web client, WebSocket and APIs.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey, when both set, make the server speak HTTPS/WSS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// AllowedOrigins are browser origins ("https://app.example.com") that
	// may open the WebSocket in addition to the server's own host.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// APIKeys maps API key ids to secrets (at least 32 bytes). Used when
	// Deps.Keys is nil.
	APIKeys map[string]string `yaml:"api_keys"`
	// DevMode enables POST /api/dev/token, which hands out guest tokens to
	// anyone who can reach the server.
	DevMode bool `yaml:"dev_mode"`

	// MaxMessageBytes caps one client frame; larger ones close with 1009.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// RatePerSecond and RateBurst form each connection's token bucket.
	RatePerSecond int `yaml:"rate_per_second"`
	RateBurst     int `yaml:"rate_burst"`
	// SendQueue is how many server messages may wait for a slow client
	// before it is disconnected.
	SendQueue int `yaml:"send_queue"`

	// PingInterval is how often the server pings; PingTimeout is how long
	// a joined client may stay silent before it is dropped.
	PingInterval time.Duration `yaml:"ping_interval"`
	PingTimeout  time.Duration `yaml:"ping_timeout"`
	// JoinTimeout is how long a new connection has to send "join".
	JoinTimeout time.Duration `yaml:"join_timeout"`
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// TokenTTL is the lifetime of the fresh tokens sent to joined clients;
	// a new one is sent every TokenTTL/2.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// DevTokenTTL is the lifetime of dev-mode guest tokens.
	DevTokenTTL time.Duration `yaml:"dev_token_ttl"`
	// MaxTokenTTL caps tokens created through the admin API.
	MaxTokenTTL time.Duration `yaml:"max_token_ttl"`
	// MaxParticipantsPerRoom refuses joins beyond this many (0: no limit).
	MaxParticipantsPerRoom int `yaml:"max_participants_per_room"`
	// ShutdownTimeout bounds how long Run waits for clients to close.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LobbyTimeout is how long a joiner waits in a room's lobby before
	// its entry expires (docs/protocol.md, Moderation).
	LobbyTimeout time.Duration `yaml:"lobby_timeout"`
	// LobbyByDefault turns the lobby on in every room whose settings do
	// not say otherwise.
	LobbyByDefault bool `yaml:"lobby_by_default"`

	// Chat, presence and call invitations (docs/protocol.md, Chat). They
	// only matter when Deps.Chat is set.

	// ChatRatePerSecond and ChatRateBurst form a second token bucket per
	// connection for chat_send, chat_edit and chat_delete (on top of the
	// general rate), because each of those is a durable write.
	ChatRatePerSecond int `yaml:"chat_rate_per_second"`
	ChatRateBurst     int `yaml:"chat_rate_burst"`
	// TypingRatePerSecond bounds "typing" per connection (burst 3).
	TypingRatePerSecond float64 `yaml:"typing_rate_per_second"`
	// ChatPageMax is the largest limit a client may ask for in chat_sync,
	// chat_history and chat_range; keep it at most chat.history_page_max
	// and chat.catch_up_page_max (the chat service caps there too).
	ChatPageMax int `yaml:"chat_page_max"`
	// MaxSessionsPerIdentity bounds one identity's simultaneous
	// connections (devices and tabs).
	MaxSessionsPerIdentity int `yaml:"max_sessions_per_identity"`
	// CallRingTimeout ends an unanswered call invitation as missed.
	CallRingTimeout time.Duration `yaml:"call_ring_timeout"`
	// CallTokenTTL is the lifetime of the tokens minted for an accepted
	// call's fresh room; the client joins with it at once and then gets
	// refreshed tokens like any participant.
	CallTokenTTL time.Duration `yaml:"call_token_ttl"`
	// MaxPendingCalls bounds the call invitations one identity may have
	// ringing at the same time.
	MaxPendingCalls int `yaml:"max_pending_calls"`
	// MaxCallCallees bounds how many identities one group call rings.
	MaxCallCallees int `yaml:"max_call_callees"`

	// The HTTP edge: limits applied before any handler or auth runs
	// (edge_config.go, docs/limits.md).

	// BodyTimeout is how long a client has, after its request headers,
	// to send the whole request body.
	BodyTimeout time.Duration `yaml:"body_timeout" doc:"Time a client has after its request headers to send the whole body (every route; WebSocket upgrades carry none)."`
	// TrustedProxies are reverse proxies (CIDRs or addresses) whose
	// ForwardedHeader is believed for the client address.
	TrustedProxies []string `yaml:"trusted_proxies" doc:"Reverse proxies (CIDRs or addresses) whose forwarded_header names the client; empty: the TCP peer is the client and forwarding headers are ignored."`
	// ForwardedHeader is the header those proxies set.
	ForwardedHeader string `yaml:"forwarded_header" doc:"Header the trusted proxies set: x-forwarded-for or forwarded (RFC 7239)."`
	// MaxUnjoinedPerAddress bounds the WebSockets one client address
	// (IPv6: its /64) may have open before they join.
	MaxUnjoinedPerAddress int `yaml:"max_unjoined_per_address" doc:"WebSockets one client address (IPv6: its /64) may hold open before they join; more get HTTP 429."`
	// DevAllowedHosts are host names, besides loopback, IP literals and
	// this machine's names, that dev mode accepts in the Host header.
	DevAllowedHosts []string `yaml:"dev_allowed_hosts" doc:"Dev mode: extra Host names accepted for guest tokens and the WebSocket (loopback, IP addresses and this machine's host name always are); guards against DNS rebinding."`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Listen:                 ":8080",
		MaxMessageBytes:        65536,
		RatePerSecond:          50,
		RateBurst:              100,
		SendQueue:              256,
		PingInterval:           5 * time.Second,
		PingTimeout:            15 * time.Second,
		JoinTimeout:            10 * time.Second,
		WriteTimeout:           10 * time.Second,
		TokenTTL:               10 * time.Minute,
		DevTokenTTL:            10 * time.Minute,
		MaxTokenTTL:            24 * time.Hour,
		MaxParticipantsPerRoom: 100,
		ShutdownTimeout:        5 * time.Second,
		LobbyTimeout:           5 * time.Minute,

		ChatRatePerSecond:      10,
		ChatRateBurst:          20,
		TypingRatePerSecond:    1,
		ChatPageMax:            100,
		MaxSessionsPerIdentity: 10,
		CallRingTimeout:        30 * time.Second,
		CallTokenTTL:           2 * time.Minute,
		MaxPendingCalls:        3,
		MaxCallCallees:         32,

		BodyTimeout:           10 * time.Second,
		ForwardedHeader:       "x-forwarded-for",
		MaxUnjoinedPerAddress: 64,
	}
}

// Validate checks every field and names the yaml key of the first problem.
func (c Config) Validate() error {
	if c.Listen == "" {
		return errors.New("signaling.listen: must not be empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("signaling.tls_cert and signaling.tls_key: set both or neither")
	}
	for _, o := range c.AllowedOrigins {
		if _, err := normalizeOrigin(o); err != nil {
			return fmt.Errorf("signaling.allowed_origins: %q: %w", o, err)
		}
	}
	for id, secret := range c.APIKeys {
		if len(secret) < auth.MinSecretBytes {
			return fmt.Errorf("signaling.api_keys: key %q: secret must be at least %d bytes", id, auth.MinSecretBytes)
		}
	}
	ints := []struct {
		key string
		v   int
		min int
	}{
		{"max_message_bytes", c.MaxMessageBytes, 1024},
		{"rate_per_second", c.RatePerSecond, 1},
		{"rate_burst", c.RateBurst, 1},
		{"send_queue", c.SendQueue, 8},
		{"max_participants_per_room", c.MaxParticipantsPerRoom, 0},
		{"chat_rate_per_second", c.ChatRatePerSecond, 1},
		{"chat_rate_burst", c.ChatRateBurst, 1},
		{"chat_page_max", c.ChatPageMax, 1},
		{"max_sessions_per_identity", c.MaxSessionsPerIdentity, 1},
		{"max_pending_calls", c.MaxPendingCalls, 1},
		{"max_call_callees", c.MaxCallCallees, 1},
	}
	for _, f := range ints {
		if f.v < f.min {
			return fmt.Errorf("signaling.%s: must be at least %d, got %d", f.key, f.min, f.v)
		}
	}
	durs := []struct {
		key string
		v   time.Duration
	}{
		{"ping_interval", c.PingInterval},
		{"ping_timeout", c.PingTimeout},
		{"join_timeout", c.JoinTimeout},
		{"write_timeout", c.WriteTimeout},
		{"token_ttl", c.TokenTTL},
		{"dev_token_ttl", c.DevTokenTTL},
		{"max_token_ttl", c.MaxTokenTTL},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"lobby_timeout", c.LobbyTimeout},
		{"call_ring_timeout", c.CallRingTimeout},
		{"call_token_ttl", c.CallTokenTTL},
	}
	for _, f := range durs {
		if f.v <= 0 {
			return fmt.Errorf("signaling.%s: must be positive, got %s", f.key, f.v)
		}
	}
	if !(c.TypingRatePerSecond > 0) || c.TypingRatePerSecond > 100 {
		return fmt.Errorf("signaling.typing_rate_per_second: must be above 0 and at most 100, got %g", c.TypingRatePerSecond)
	}
	if c.ChatPageMax > 10000 {
		return fmt.Errorf("signaling.chat_page_max: must be at most 10000, got %d", c.ChatPageMax)
	}
	if c.PingTimeout <= c.PingInterval {
		return fmt.Errorf("signaling.ping_timeout: must exceed ping_interval (%s), got %s", c.PingInterval, c.PingTimeout)
	}
	if c.TokenTTL < 2*time.Second {
		return fmt.Errorf("signaling.token_ttl: must be at least 2s, got %s", c.TokenTTL)
	}
	return c.validateEdge()
}

// normalizeOrigin reduces "https://Host:443/" style input to the exact
// string browsers send in the Origin header: scheme://host[:port].
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("scheme must be http or https")
	}
	if u.Host == "" || strings.Contains(u.Host, "*") {
		return "", errors.New("needs an exact host (no wildcards)")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", errors.New("must be only scheme://host[:port]")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
