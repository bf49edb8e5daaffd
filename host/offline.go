package host

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

// FakeClock is a Clock that moves only when told: the offline runner's.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *FakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// NewFakeClock starts a clock at start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// AdvanceTo moves the clock to t, firing due timers in time order; after
// each, settle waits until its effects are done (they may set new timers).
func (c *FakeClock) AdvanceTo(t time.Time, settle func()) {
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for len(c.timers) > 0 {
			x := c.timers[0]
			if x.stopped {
				c.timers = c.timers[1:]
				continue
			}
			if !x.at.After(t) {
				next = x
				c.timers = c.timers[1:]
				if x.at.After(c.now) {
					c.now = x.at
				}
			}
			break
		}
		if next == nil {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.mu.Unlock()
		next.f()
		settle()
	}
}

// Offline runs one script outside the daemon, in the same runtime, with a
// fake clock and a recorder in place of BGP: `edbgpd test`.
type Offline struct {
	Clock   *FakeClock
	Actions *luaapi.Recorder
	set     *ScriptSet
	script  *Script
}

// NewOffline loads the script at path. The clock starts at start. opts,
// if not nil, is the [edbgpd] section of the daemon's config: its limits,
// sandbox grants and notify allow-lists then apply as in the daemon.
func NewOffline(path string, start time.Time, opts *Options, log *slog.Logger) (*Offline, error) {
	o := &Offline{Clock: NewFakeClock(start), Actions: &luaapi.Recorder{}}
	limits := DefaultLimits
	if opts != nil {
		limits = opts.Limits()
		o.Actions.CheckNotify = func(script string, n luaapi.Notification) error {
			return allowed(opts.grantFor(script), script, n)
		}
	}
	o.set = NewScriptSet(filepath.Dir(path), o.Actions, limits, log)
	o.set.SetClock(o.Clock)
	if opts != nil {
		o.set.SetGrants(opts.grantFor)
	}
	name := filepath.Base(path)
	o.set.sync(name)
	o.script = o.set.Script(name)
	if o.script == nil || o.script.Version() == "" {
		o.set.Close()
		return nil, fmt.Errorf("%s did not load (see the log above)", path)
	}
	return o, nil
}

// Feed hands one event (or luaapi.Advance) to the script and returns when
// it has been handled. An event's timestamp moves the clock forward first,
// firing the timers due by then.
func (o *Offline) Feed(ev any) {
	var at time.Time
	switch e := ev.(type) {
	case luaapi.Advance:
		o.Clock.AdvanceTo(o.Clock.Now().Add(e.By), o.script.Sync)
		return
	case *luaapi.BestPath:
		at = e.Timestamp
	case *luaapi.PeerState:
		at = e.Timestamp
	}
	if !at.IsZero() {
		o.Clock.AdvanceTo(at, o.script.Sync)
	}
	o.Actions.Observe(ev)
	o.script.push(ev)
	o.script.Sync()
}

// Close unloads the script (on_unload runs).
func (o *Offline) Close() { o.set.Close() }
