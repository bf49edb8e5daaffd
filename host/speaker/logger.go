package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger adapts GoBGP's logger interface to slog. It checks the level
// before touching the fields, and it listens for two things GoBGP only says
// in its logs: why a session went down, and config errors (which GoBGP's
// config package reports through Fatal and then carries on).
type gobgpLogger struct {
	log   *slog.Logger
	level atomic.Uint32 // a gobgplog.LogLevel

	reasons sync.Map // peer address -> last "Peer Down" reason

	mu        sync.Mutex
	configErr []string // config errors since the last takeConfigErrors
}

var _ gobgplog.Logger = (*gobgpLogger)(nil)

func newGobgpLogger(log *slog.Logger, level gobgplog.LogLevel) *gobgpLogger {
	l := &gobgpLogger{log: log.With("component", "gobgp")}
	l.level.Store(uint32(level))
	return l
}

func (l *gobgpLogger) emit(level slog.Level, msg string, fields gobgplog.Fields) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != gobgplog.FieldFacility {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	l.log.Log(context.Background(), level, msg, args...)
}

func (l *gobgpLogger) Panic(msg string, fields gobgplog.Fields) {
	l.emit(slog.LevelError, msg, fields)
	panic(msg)
}

// Fatal: config errors are collected for the caller to judge (fatal at
// start, a warning on SIGHUP); anything else ends the process as in gobgpd.
func (l *gobgpLogger) Fatal(msg string, fields gobgplog.Fields) {
	if fields.HasFacility(gobgplog.FacilityConfig) || fields["Topic"] == "config" || fields["Topic"] == "Config" {
		e := msg
		if err, ok := fields["Error"]; ok {
			e = fmt.Sprintf("%s: %v", msg, err)
		}
		if key, ok := fields["Key"]; ok {
			e = fmt.Sprintf("%s (%v)", e, key)
		}
		l.mu.Lock()
		l.configErr = append(l.configErr, e)
		l.mu.Unlock()
		l.emit(slog.LevelError, msg, fields)
		return
	}
	l.emit(slog.LevelError, msg, fields)
	os.Exit(1)
}

func (l *gobgpLogger) Error(msg string, fields gobgplog.Fields) {
	l.emit(slog.LevelError, msg, fields)
}

func (l *gobgpLogger) Warn(msg string, fields gobgplog.Fields) {
	l.emit(slog.LevelWarn, msg, fields)
}

func (l *gobgpLogger) Info(msg string, fields gobgplog.Fields) {
	if msg == "Peer Down" {
		if key, ok := fields["Key"].(string); ok {
			if r, ok := fields["Reason"].(string); ok {
				l.reasons.Store(key, r)
			}
		}
	}
	l.emit(slog.LevelInfo, msg, fields)
}

func (l *gobgpLogger) Debug(msg string, fields gobgplog.Fields) {
	if l.level.Load() < uint32(gobgplog.DebugLevel) {
		return
	}
	l.emit(slog.LevelDebug, msg, fields)
}

func (l *gobgpLogger) SetLevel(level gobgplog.LogLevel) { l.level.Store(uint32(level)) }

func (l *gobgpLogger) GetLevel() gobgplog.LogLevel { return gobgplog.LogLevel(l.level.Load()) }

// takeDownReason returns and forgets the last down reason GoBGP logged for
// the peer. GoBGP logs it before it queues the state change, so it is
// there when the watcher event arrives.
func (l *gobgpLogger) takeDownReason(addr string) string {
	if r, ok := l.reasons.LoadAndDelete(addr); ok {
		return r.(string)
	}
	return ""
}

// takeConfigErrors returns and clears the config errors seen so far.
func (l *gobgpLogger) takeConfigErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.configErr
	l.configErr = nil
	return e
}
