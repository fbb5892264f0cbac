package turn

import (
	"context"
	"log/slog"

	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/turn/internal/relay"
)

// relayDeps is what the socket wrappers (conns.go, relay.go) need of the
// server, and no more: the counters, the fast-path mirror, the answer
// budget and shaping, the event loops and the shutdown tracker. They never
// see the configuration, pion's server or the server's lifecycle.
type relayDeps struct {
	metrics *metrics
	fast    *fastPath
	steer   *steering
	// answers caps answers to UDP sources without an allocation.
	answers *sourceBudget
	replies *replies
	loops   *relay.Loops // empty on a vnet and off Linux
	tracker *tracker
	// closes notes a client connection that ended, for the deletion
	// reason of its allocation.
	closes *addrNotes
	log    *slog.Logger
	// learn shows a signed request to the authenticator (secret
	// rotation); nil when it needs none.
	learn func([]byte)
	// ctx ends at shutdown and wakes relays waiting on the bandwidth cap.
	ctx context.Context
}

// replies shapes pion's answers on their way out of a client socket and
// notes the requests they answer (authreply.go, amplify.go, forbidden.go).
type replies struct {
	realm string
	// slack bounds answers to unsigned requests (amplify.go).
	slack   int
	auth    *authenticator
	metrics *metrics
	// refusals turn pion's 400 for a refused credential into 401;
	// releases tell why an allocation was deleted.
	refusals *addrNotes
	releases *addrNotes
	log      *refusalLog
}

// logRefusal logs a refusal, rate limited.
func (r *replies) logRefusal(msg string, attrs ...slog.Attr) { r.log.log(msg, attrs...) }

// refusalLog logs refusals at Info with a rate limit: they can come at
// packet rate from an attacker, the counters keep the full picture, the
// log keeps a sample.
type refusalLog struct {
	out  *slog.Logger
	rate *rate.Limiter
	m    *metrics
}

func newRefusalLog(out *slog.Logger, m *metrics) *refusalLog {
	return &refusalLog{out: out, rate: rate.NewLimiter(20, 100), m: m}
}

func (l *refusalLog) log(msg string, attrs ...slog.Attr) {
	if !l.rate.Allow() {
		l.m.logsSuppressed.Inc()

		return
	}
	l.out.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
}
