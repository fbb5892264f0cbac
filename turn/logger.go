package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs adapts slog to pion's logging interface. pion logs some events
// per packet or per request at Info and Error (a peer without permission,
// a failed TLS handshake from a scanner), so every level is shifted one step
// down: pion Info becomes Debug, Warn becomes Info, Error becomes Warn.
// Parley's own refusals are logged by the server with rate limiting.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.LogAttrs(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.LogAttrs(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }
