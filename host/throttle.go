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
//
// What can be checked is checked before an action is deferred (an unknown
// policy, peer or a bad route), so the script hears of it at once; a
// deferred action returns *luaapi.Deferred, which scripts see as success.
type throttle struct {
	luaapi.Actions
	check     checker // nil: nothing checked up front
	opts      ThrottleOptions
	clock     Clock
	log       *slog.Logger
	mu        sync.Mutex
	keys      map[string]*throttleKey
	Throttled atomic.Uint64
}

// checker tells whether an action would be refused, without doing it.
type checker interface {
	checkPolicy(policy string) error
	checkPeer(address string) error
	checkRoute(r luaapi.Route) error
	checkWithdraw(script, prefix string) error
}

type throttleKey struct {
	last    time.Time
	pending func() error // the latest intended action, nil if none
	armed   bool
}

func newThrottle(a luaapi.Actions, o ThrottleOptions, clock Clock, log *slog.Logger) *throttle {
	t := &throttle{Actions: a, opts: o.withDefaults(), clock: clock, log: log, keys: make(map[string]*throttleKey)}
	t.check, _ = a.(checker)
	return t
}

// do runs fn now, or schedules it (replacing what was scheduled) if key
// acted less than every ago. check, if not nil, runs first either way.
func (t *throttle) do(key string, every time.Duration, check func(checker) error, fn func() error) error {
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
	t.Throttled.Add(1)
	if !k.armed {
		k.armed = true
		t.clock.AfterFunc(wait, func() { t.fire(key) })
	}
	t.mu.Unlock()
	return &luaapi.Deferred{In: wait}
}

// pending tells whether an action on key waits for its interval to end.
func (t *throttle) pending(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.keys[key]
	return k != nil && k.pending != nil
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
	if fn == nil {
		return
	}
	if err := fn(); err != nil {
		t.log.Error("throttled action failed", "key", key, "err", err)
		return
	}
	t.log.Info("throttled action done", "key", key)
}

func (t *throttle) SetExportPolicy(peer, policy string) error {
	return t.do("export-policy "+peer, time.Duration(t.opts.Policy), func(c checker) error { return c.checkPolicy(policy) },
		func() error { return t.Actions.SetExportPolicy(peer, policy) })
}

func (t *throttle) SetImportPolicy(peer, policy string) error {
	return t.do("import-policy "+peer, time.Duration(t.opts.Policy), func(c checker) error { return c.checkPolicy(policy) },
		func() error { return t.Actions.SetImportPolicy(peer, policy) })
}

func (t *throttle) ResetPeer(address, how string) error {
	return t.do("reset "+address, time.Duration(t.opts.Reset), func(c checker) error { return c.checkPeer(address) },
		func() error { return t.Actions.ResetPeer(address, how) })
}

func (t *throttle) SetPeerEnabled(address string, enabled bool) error {
	return t.do("admin "+address, time.Duration(t.opts.Reset), func(c checker) error { return c.checkPeer(address) },
		func() error { return t.Actions.SetPeerEnabled(address, enabled) })
}

func (t *throttle) Announce(script string, r luaapi.Route) error {
	return t.do(fmt.Sprintf("route %s %s", script, r.Prefix), time.Duration(t.opts.Route), func(c checker) error { return c.checkRoute(r) },
		func() error { return t.Actions.Announce(script, r) })
}

func (t *throttle) Withdraw(script, prefix string) error {
	key := fmt.Sprintf("route %s %s", script, prefix)
	return t.do(key, time.Duration(t.opts.Route), func(c checker) error {
		if t.pending(key) {
			return nil // an announcement waits: the withdrawal replaces it
		}
		return c.checkWithdraw(script, prefix)
	}, func() error { return t.Actions.Withdraw(script, prefix) })
}
