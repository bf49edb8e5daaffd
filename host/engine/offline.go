package engine

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/host/event"
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

// OfflineOptions are what the daemon's config says of scripts, for an
// offline run under the same rules: limits, sandbox grants and the
// notify allow-lists. The zero value: defaults, no grants, notify
// unchecked.
type OfflineOptions struct {
	Limits      *Limits                                          // nil: DefaultLimits
	Sandbox     func(name string) Sandbox                        // nil: nothing granted
	CheckNotify func(script string, n luaapi.Notification) error // nil: every notification recorded as sent
}

// NewOffline loads the script at path. The clock starts at start.
func NewOffline(path string, start time.Time, o OfflineOptions, log *slog.Logger) (*Offline, error) {
	run := &Offline{Clock: NewFakeClock(start), Actions: &luaapi.Recorder{CheckNotify: o.CheckNotify}}
	limits := DefaultLimits
	if o.Limits != nil {
		limits = *o.Limits
	}
	run.set = NewScriptSet(filepath.Dir(path), run.Actions, limits, log)
	run.set.SetClock(run.Clock)
	if o.Sandbox != nil {
		run.set.SetGrants(o.Sandbox)
	}
	name := filepath.Base(path)
	run.set.sync(name)
	run.script = run.set.Script(name)
	if run.script == nil || run.script.Version() == "" {
		run.set.Close()
		return nil, fmt.Errorf("%s did not load (see the log above)", path)
	}
	return run, nil
}

// Feed hands one line of an events file to the script and returns when
// it has been handled: an event, whose timestamp first moves the clock
// forward (firing the timers due by then), or a move of the clock.
func (o *Offline) Feed(l event.Line) {
	if l.Advance > 0 {
		o.Clock.AdvanceTo(o.Clock.Now().Add(l.Advance), o.script.Sync)
		return
	}
	if at := l.Time(); !at.IsZero() {
		o.Clock.AdvanceTo(at, o.script.Sync)
	}
	o.Actions.Observe(l.Event)
	o.script.Push(l.Event)
	o.script.Sync()
}

// Close unloads the script (on_unload runs).
func (o *Offline) Close() { o.set.Close() }
