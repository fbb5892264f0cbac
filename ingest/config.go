package ingest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the "ingest" section of parley.yaml.
type Config struct {
	// ReconnectGrace keeps a stream's participant in the room for this
	// long after the publisher disconnects: OBS reconnecting within it
	// comes back as the same participant (same id), and viewers see a
	// short gap instead of a leave and a join.
	ReconnectGrace time.Duration `yaml:"reconnect_grace" doc:"How long a stream's participant stays after the publisher disconnects; reconnecting within it keeps the participant."`
	// MaxStreams bounds live ingest streams (RTMP and WHIP together).
	MaxStreams int `yaml:"max_streams" doc:"Live ingest streams (RTMP and WHIP together)."`
	// KeyCheckInterval is how often live streams' keys are checked, so a
	// key revoked while live (by the admin API or `parley ingress revoke`
	// in another process) ends its stream.
	KeyCheckInterval time.Duration `yaml:"key_check_interval" doc:"How often live streams' keys are re-checked; a key revoked while live ends its stream within this time."`
	WHIP             WHIPConfig    `yaml:"whip" doc:"WHIP endpoint for OBS 30+ (Service WHIP, Bearer Token = stream key)."`
}

// WHIPConfig configures the WHIP endpoint (OBS 30+ "WHIP" service).
type WHIPConfig struct {
	Enabled bool `yaml:"enabled" doc:"Serve WHIP on the web server."`
	// Path is where the endpoint is mounted: POST <path> creates a
	// stream, DELETE <path>/<id> ends it.
	Path string `yaml:"path" doc:"WHIP endpoint path: POST creates a stream, DELETE <path>/<id> ends it."`
	// MaxOfferBytes bounds the SDP offer.
	MaxOfferBytes int `yaml:"max_offer_bytes" doc:"Largest SDP offer accepted."`
	// RequestsPerMinute is how many POSTs one client address (IPv6: its
	// /64) may make in any 60 s, up to a quarter of them back to back;
	// 0 disables the limit.
	RequestsPerMinute int `yaml:"requests_per_minute" doc:"WHIP POSTs per client address (IPv6: per /64) in any 60 s, a quarter of them back to back; 0 disables the limit."`
	// CORSOrigins may call the endpoint from a browser ("*" for any; the
	// endpoint uses Bearer tokens, never cookies). Empty: no CORS headers.
	CORSOrigins []string `yaml:"cors_origins" doc:"Origins allowed to call WHIP from a browser (* for any; empty sends no CORS headers)."`
	// ConnectTimeout ends a WHIP session whose connection is not up this
	// long after the answer was sent.
	ConnectTimeout time.Duration `yaml:"connect_timeout" doc:"End a WHIP session whose connection is not up by then."`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		ReconnectGrace:   10 * time.Second,
		MaxStreams:       32,
		KeyCheckInterval: 5 * time.Second,
		WHIP: WHIPConfig{
			Enabled:           true,
			Path:              "/whip",
			MaxOfferBytes:     64 << 10,
			RequestsPerMinute: 30,
			CORSOrigins:       []string{"*"},
			ConnectTimeout:    30 * time.Second,
		},
	}
}

// Validate reports every invalid field, each error naming its yaml key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingest.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ReconnectGrace < 0 || c.ReconnectGrace > 5*time.Minute {
		bad("reconnect_grace", "%v must be between 0 and 5m", c.ReconnectGrace)
	}
	if c.MaxStreams < 1 || c.MaxStreams > 10000 {
		bad("max_streams", "%d must be between 1 and 10000", c.MaxStreams)
	}
	if c.KeyCheckInterval < 100*time.Millisecond || c.KeyCheckInterval > time.Hour {
		bad("key_check_interval", "%v must be between 100ms and 1h", c.KeyCheckInterval)
	}
	w := c.WHIP
	if w.Enabled && (!strings.HasPrefix(w.Path, "/") || strings.HasSuffix(w.Path, "/") || strings.ContainsAny(w.Path, "?# ")) {
		bad("whip.path", "%q must start with '/', not end with '/', and have no '?', '#' or spaces", w.Path)
	}
	if w.MaxOfferBytes < 1024 || w.MaxOfferBytes > 1<<20 {
		bad("whip.max_offer_bytes", "%d must be between 1024 and 1048576", w.MaxOfferBytes)
	}
	if w.RequestsPerMinute < 0 {
		bad("whip.requests_per_minute", "%d must be >= 0 (0 disables the limit)", w.RequestsPerMinute)
	}
	for _, o := range w.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("whip.cors_origins", "%q must be \"*\" or an origin like https://example.com", o)
		}
	}
	if w.ConnectTimeout < time.Second || w.ConnectTimeout > 5*time.Minute {
		bad("whip.connect_timeout", "%v must be between 1s and 5m", w.ConnectTimeout)
	}
	return errors.Join(errs...)
}
