package host

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

// ThrottleOptions bound how often scripts may repeat an action on the same
// thing, so a flapping trigger cannot churn sessions or the table.
type ThrottleOptions struct {
	Policy Duration `toml:"policy" yaml:"policy"` // set_export/import_policy per peer; default 5s
	Reset  Duration `toml:"reset" yaml:"reset"`   // reset/enable/disable per peer; default 30s
	Route  Duration `toml:"route" yaml:"route"`   // announce/withdraw per prefix; default 1s
}

func (o ThrottleOptions) withDefaults() ThrottleOptions {
	if o.Policy <= 0 {
		o.Policy = Duration(5 * time.Second)
	}
	if o.Reset <= 0 {
		o.Reset = Duration(30 * time.Second)
	}
	if o.Route <= 0 {
		o.Route = Duration(time.Second)
	}
	return o
}

// throttle wraps the daemon's actions. An action on a key (peer, prefix)
// within its interval of the last one is not done at once: it waits for
// the interval to end, and if more come meanwhile only the last is done.
// The last intended state wins; none is lost, none repeats faster.
type throttle struct {
	luaapi.Actions
	opts      ThrottleOptions
	clock     Clock
	log       *slog.Logger
	mu        sync.Mutex
	keys      map[string]*throttleKey
	Throttled atomic.Uint64
}

type throttleKey struct {
	last    time.Time
	pending func() error // the latest intended action, nil if none
	armed   bool
}

func newThrottle(a luaapi.Actions, o ThrottleOptions, clock Clock, log *slog.Logger) *throttle {
	return &throttle{Actions: a, opts: o.withDefaults(), clock: clock, log: log, keys: make(map[string]*throttleKey)}
}

// do runs fn now, or schedules it (replacing what was scheduled) if key
// acted less than every ago.
func (t *throttle) do(key string, every time.Duration, fn func() error) error {
	t.mu.Lock()
	k := t.keys[key]
	if k == nil {
		k = &throttleKey{}
		t.keys[key] = k
	}
	now := t.clock.Now()
	if k.last.IsZero() || now.Sub(k.last) >= every {
		k.last = now
		k.pending = nil
		t.mu.Unlock()
		return fn()
	}
	k.pending = fn
	wait := every - now.Sub(k.last)
	t.Throttled.Add(1)
	if !k.armed {
		k.armed = true
		t.clock.AfterFunc(wait, func() { t.fire(key) })
	}
	t.mu.Unlock()
	t.log.Warn("action throttled; the last one asked for runs when the interval ends", "key", key, "in", wait.Round(time.Millisecond))
	return nil
}

func (t *throttle) fire(key string) {
	t.mu.Lock()
	k := t.keys[key]
	fn := k.pending
	k.pending, k.armed = nil, false
	if fn != nil {
		k.last = t.clock.Now()
	}
	t.mu.Unlock()
	if fn != nil {
		if err := fn(); err != nil {
			t.log.Error("throttled action failed", "key", key, "err", err)
		}
	}
}

func (t *throttle) SetExportPolicy(peer, policy string) error {
	return t.do("export-policy "+peer, time.Duration(t.opts.Policy), func() error { return t.Actions.SetExportPolicy(peer, policy) })
}

func (t *throttle) SetImportPolicy(peer, policy string) error {
	return t.do("import-policy "+peer, time.Duration(t.opts.Policy), func() error { return t.Actions.SetImportPolicy(peer, policy) })
}

func (t *throttle) ResetPeer(address, how string) error {
	return t.do("reset "+address, time.Duration(t.opts.Reset), func() error { return t.Actions.ResetPeer(address, how) })
}

func (t *throttle) SetPeerEnabled(address string, enabled bool) error {
	return t.do("admin "+address, time.Duration(t.opts.Reset), func() error { return t.Actions.SetPeerEnabled(address, enabled) })
}

func (t *throttle) Announce(script string, r luaapi.Route) error {
	return t.do(fmt.Sprintf("route %s %s", script, r.Prefix), time.Duration(t.opts.Route), func() error { return t.Actions.Announce(script, r) })
}

func (t *throttle) Withdraw(script, prefix string) error {
	return t.do(fmt.Sprintf("route %s %s", script, prefix), time.Duration(t.opts.Route), func() error { return t.Actions.Withdraw(script, prefix) })
}
