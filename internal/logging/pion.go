package logging

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelTrace sits below Debug: pion's trace output is per packet and only
// wanted when explicitly asked for.
const levelTrace = slog.LevelDebug - 4

// PionOptions tune PionFactory.
type PionOptions struct {
	// Demote logs every pion level one step lower: Info as Debug, Warn as
	// Info, Error as Warn, Debug as Trace. For a pion component that logs
	// at Info or Error per packet or per request from anyone on the
	// Internet (pion/turn: a peer without permission, a scanner's failed
	// TLS handshake), whose refusals the caller logs itself, rate limited.
	Demote bool
}

// PionFactory adapts a slog logger to pion's LoggerFactory. Each pion scope
// ("ice", "dtls", "turn", ...) becomes a "scope" attribute. At most one
// PionOptions is used; none means pion's levels as they are.
func PionFactory(l *slog.Logger, opts ...PionOptions) logging.LoggerFactory {
	f := pionFactory{l: l}
	if len(opts) > 0 {
		f.opts = opts[0]
	}

	return f
}

type pionFactory struct {
	l    *slog.Logger
	opts PionOptions
}

func (f pionFactory) NewLogger(scope string) logging.LeveledLogger {
	p := pionLogger{l: f.l.With("scope", scope)}
	if f.opts.Demote {
		p.shift = -4 // slog's levels are 4 apart
	}

	return p
}

type pionLogger struct {
	l     *slog.Logger
	shift slog.Level
}

func (p pionLogger) log(level slog.Level, msg string) {
	level += p.shift
	ctx := context.Background()
	if !p.l.Enabled(ctx, level) {
		return
	}
	p.l.LogAttrs(ctx, level, msg)
}

func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	if !p.l.Enabled(context.Background(), level+p.shift) {
		return
	}
	p.log(level, fmt.Sprintf(format, args...))
}

func (p pionLogger) Trace(msg string)                  { p.log(levelTrace, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.logf(levelTrace, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.log(slog.LevelInfo, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelInfo, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.log(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelWarn, format, args...) }
func (p pionLogger) Error(msg string)                  { p.log(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelError, format, args...) }
