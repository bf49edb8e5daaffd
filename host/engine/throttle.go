package engine

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edbgpd/edbgpd/host/units"
	"github.com/edbgpd/edbgpd/luaapi"
)

// ThrottleOptions bound how often scripts may repeat an action on the same
// thing, so a flapping trigger cannot churn sessions or the table.
type ThrottleOptions struct {
	Policy units.Duration `toml:"policy" yaml:"policy"` // set_export/import_policy per peer; default 5s
	Reset  units.Duration `toml:"reset" yaml:"reset"`   // reset/enable/disable per peer; default 30s
	Route  units.Duration `toml:"route" yaml:"route"`   // announce/withdraw per prefix; default 1s
}

func (o ThrottleOptions) withDefaults() ThrottleOptions {
	if o.Policy <= 0 {
		o.Policy = units.Duration(5 * time.Second)
	}
	if o.Reset <= 0 {
		o.Reset = units.Duration(30 * time.Second)
	}
	if o.Route <= 0 {
		o.Route = units.Duration(time.Second)
	}
	return o
}

// Throttle wraps the daemon's actions. An action on a key (peer, prefix)
// within its interval of the last one is not done at once: it waits for
// the interval to end, and if more come meanwhile only the last is done.
// The last intended state wins; none is lost, none repeats faster.
//
// What can be checked is checked before an action is deferred (an unknown
// policy, peer or a bad route), so the script hears of it at once; a
// deferred action returns *luaapi.Deferred, which scripts see as success.
type Throttle struct {
	luaapi.Actions
	check     Checker // nil: nothing checked up front
	opts      ThrottleOptions
	clock     Clock
	log       *slog.Logger
	mu        sync.Mutex
	keys      map[string]*throttleKey
	throttled atomic.Uint64
}

// Throttled counts the actions held back so far.
func (t *Throttle) Throttled() uint64 { return t.throttled.Load() }

// Checker tells whether an action would be refused, without doing it.
type Checker interface {
	CheckPolicy(policy string) error
	CheckPeer(address string) error
	CheckRoute(script string, r luaapi.Route) error
	CheckWithdraw(script, prefix string) error
}

type throttleKey struct {
	last    time.Time
	pending func() error // the latest intended action, nil if none
	armed   bool
}

// NewThrottle paces a's actions; check (nil: none) refuses at once what
// a would refuse when it runs.
func NewThrottle(a luaapi.Actions, check Checker, o ThrottleOptions, clock Clock, log *slog.Logger) *Throttle {
	return &Throttle{Actions: a, check: check, opts: o.withDefaults(), clock: clock, log: log, keys: make(map[string]*throttleKey)}
}

// do runs fn now, or schedules it (replacing what was scheduled) if key
// acted less than every ago. check, if not nil, runs first either way.
func (t *Throttle) do(key string, every time.Duration, check func(Checker) error, fn func() error) error {
	if check != nil && t.check != nil {
		if err := check(t.check); err != nil {
			return err
		}
	}
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
	t.throttled.Add(1)
	if !k.armed {
		k.armed = true
		t.clock.AfterFunc(wait, func() { t.fire(key) })
	}
	t.mu.Unlock()
	return &luaapi.Deferred{In: wait}
}

// pending tells whether an action on key waits for its interval to end.
func (t *Throttle) pending(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.keys[key]
	return k != nil && k.pending != nil
}

func (t *Throttle) fire(key string) {
	t.mu.Lock()
	k := t.keys[key]
	fn := k.pending
	k.pending, k.armed = nil, false
	if fn != nil {
		k.last = t.clock.Now()
	}
	t.mu.Unlock()
	if fn == nil {
		return
	}
	if err := fn(); err != nil {
		t.log.Error("throttled action failed", "key", key, "err", err)
		return
	}
	t.log.Info("throttled action done", "key", key)
}

func (t *Throttle) SetExportPolicy(peer, policy string) error {
	return t.do("export-policy "+peer, time.Duration(t.opts.Policy), func(c Checker) error { return c.CheckPolicy(policy) },
		func() error { return t.Actions.SetExportPolicy(peer, policy) })
}

func (t *Throttle) SetImportPolicy(peer, policy string) error {
	return t.do("import-policy "+peer, time.Duration(t.opts.Policy), func(c Checker) error { return c.CheckPolicy(policy) },
		func() error { return t.Actions.SetImportPolicy(peer, policy) })
}

func (t *Throttle) ResetPeer(address, how string) error {
	return t.do("reset "+address, time.Duration(t.opts.Reset), func(c Checker) error { return c.CheckPeer(address) },
		func() error { return t.Actions.ResetPeer(address, how) })
}

func (t *Throttle) SetPeerEnabled(address string, enabled bool) error {
	return t.do("admin "+address, time.Duration(t.opts.Reset), func(c Checker) error { return c.CheckPeer(address) },
		func() error { return t.Actions.SetPeerEnabled(address, enabled) })
}

func (t *Throttle) Announce(script string, r luaapi.Route) error {
	return t.do(fmt.Sprintf("route %s %s", script, r.Prefix), time.Duration(t.opts.Route), func(c Checker) error { return c.CheckRoute(script, r) },
		func() error { return t.Actions.Announce(script, r) })
}

func (t *Throttle) Withdraw(script, prefix string) error {
	key := fmt.Sprintf("route %s %s", script, prefix)
	return t.do(key, time.Duration(t.opts.Route), func(c Checker) error {
		if t.pending(key) {
			return nil // an announcement waits: the withdrawal replaces it
		}
		return c.CheckWithdraw(script, prefix)
	}, func() error { return t.Actions.Withdraw(script, prefix) })
}
