package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// Clock is where scripts get time and timers: the wall clock in the
// daemon, a fake one in the offline runner.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) interface{ Stop() bool }
}

type wallClock struct{}

// WallClock is the real time.
func WallClock() Clock { return wallClock{} }

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	return time.AfterFunc(d, f)
}

// timerFire is queued with the events when a timer is due, so that the
// callback runs on the script's goroutine, in order with events.
type timerFire struct {
	v  *version
	id int
}

func (e *timerFire) run(s *Script) {
	if v := s.cur; e.v == v {
		v.module.SetCause(0)
		v.rt.fire(e.id)
		s.maybeSave(v)
	}
}

type timer struct {
	fn     *lua.LFunction
	period time.Duration
	stop   interface{ Stop() bool }
}

// runtime implements luaapi.Runtime for one version of a script. Its
// timer map is touched by the script goroutine only; the clock's
// callbacks only queue a timerFire.
type runtime struct {
	s      *Script
	v      *version
	mu     sync.Mutex // guards timers against Stop from closeVersion
	timers map[int]*timer
	nextID int
}

var _ luaapi.Runtime = (*runtime)(nil)

func (r *runtime) Now() time.Time { return r.s.clock.Now() }

// callbackFire carries a notification's result back to the script.
type callbackFire struct {
	v      *version
	fn     *lua.LFunction
	result map[string]any
}

func (e *callbackFire) run(s *Script) {
	v := s.cur
	if e.v != v {
		return
	}
	v.module.SetCause(0)
	err := s.guard.call(v, s.limits.CallTimeout, e.fn, luaapi.FromGo(v.L, e.result))
	s.called(v, e.fn, time.Now(), err, "notification callback failed", "version", v.hash)
}

// walkChunk is queued for each chunk of a bgp.walk, so that events are
// handled between chunks.
type walkChunk struct {
	v        *version
	w        luaapi.WalkRequest
	prefixes []string
	next     int
	count    int
}

// Outside runs fn with the call deadline stopped (see callGuard.outside).
func (r *runtime) Outside(fn func()) { r.s.guard.outside(fn) }

// Walk lists the prefixes in the background and then queues the first
// chunk: listing a full table from GoBGP takes seconds (about 6 µs a
// prefix), which must not hold up the script, let alone cut off the
// handler that asked.
func (r *runtime) Walk(w luaapi.WalkRequest) error {
	if err := event.CheckFamily(w.Family); err != nil {
		return fmt.Errorf("family %q: %w", w.Family, err)
	}
	s, v := r.s, r.v
	s.listing.Add(1)
	go func() {
		defer s.listing.Add(-1)
		prefixes, err := s.actions.RIBPrefixes(w.Family)
		switch {
		case v.ctx.Err() != nil: // replaced or removed meanwhile
		case err != nil:
			s.log.Error("bgp.walk stopped", "family", w.Family, "err", err)
		default:
			s.pushTask(&walkChunk{v: v, w: w, prefixes: prefixes})
		}
	}()
	return nil
}

// run runs one chunk of a walk on the script goroutine and queues the
// next.
func (c *walkChunk) run(s *Script) {
	if c.v != s.cur || c.v.ctx.Err() != nil {
		return
	}
	end := min(c.next+c.w.Chunk, len(c.prefixes))
	paths, err := s.actions.BestPaths(c.prefixes[c.next:end])
	if err != nil {
		s.log.Error("bgp.walk stopped", "err", err)
		return
	}
	for _, p := range paths {
		if c.v.ctx.Err() != nil {
			return
		}
		c.count++
		s.call(c.v, "bgp.walk fn", c.w.Fn, c.v.tables.BestPathEvent(c.v.L, p, luaapi.Delivery{}), 0)
	}
	c.next = end
	if c.next < len(c.prefixes) {
		s.pushTask(c)
		return
	}
	if c.w.Done != nil {
		s.call(c.v, "bgp.walk done", c.w.Done, lua.LNumber(c.count), 0)
	}
}

// Subscribe records what the loading version wants; it takes effect when
// the version goes live.
func (r *runtime) Subscribe(sub *luaapi.Subscription) error {
	if r.s.loading != r.v {
		return errors.New("bgp.subscribe works only while the script loads (at top level or in on_load)")
	}
	for f := range sub.Families {
		// Events name families as GoBGP does; a name it does not know
		// would match nothing, silently.
		if err := event.CheckFamily(f); err != nil {
			return fmt.Errorf("families: %w", err)
		}
	}
	r.v.sub = sub
	return nil
}

func (r *runtime) Callback(fn *lua.LFunction, result map[string]any) {
	if r.v.ctx.Err() == nil {
		r.s.pushTask(&callbackFire{v: r.v, fn: fn, result: result})
	}
}

// maxTimers bounds the timers one script version may have running: each
// is a Go timer and a function kept alive outside the script's state.
const maxTimers = 10_000

func (r *runtime) StartTimer(delay, period time.Duration, fn *lua.LFunction) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.timers) >= maxTimers {
		return 0, fmt.Errorf("%d timers already running (the most a script may have)", maxTimers)
	}
	r.nextID++
	id := r.nextID
	t := &timer{fn: fn, period: period}
	r.timers[id] = t
	r.arm(id, t, delay)
	return id, nil
}

// arm schedules the next firing of t. Caller holds mu.
func (r *runtime) arm(id int, t *timer, d time.Duration) {
	v, s := r.v, r.s
	t.stop = s.clock.AfterFunc(d, func() {
		if v.ctx.Err() == nil {
			s.pushTask(&timerFire{v: v, id: id})
		}
	})
}

func (r *runtime) CancelTimer(id int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.timers[id]
	if ok {
		t.stop.Stop()
		delete(r.timers, id)
	}
	return ok
}

// fire runs a due timer's callback; periodic timers are re-armed first.
func (r *runtime) fire(id int) {
	r.mu.Lock()
	t, ok := r.timers[id]
	if ok {
		if t.period > 0 {
			r.arm(id, t, t.period)
		} else {
			delete(r.timers, id)
		}
	}
	r.mu.Unlock()
	if !ok {
		return // cancelled after it was queued
	}
	err := r.s.guard.call(r.v, r.s.limits.CallTimeout, t.fn)
	// A script may grow, or fail, on timers alone.
	r.s.called(r.v, t.fn, time.Now(), err, "timer callback failed", "version", r.v.hash)
}

// roots are the Lua values the runtime holds for the script outside its
// state: timer callbacks, with what their upvalues keep.
func (r *runtime) roots() []lua.LValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := make([]lua.LValue, 0, len(r.timers))
	for _, t := range r.timers {
		l = append(l, t.fn)
	}
	return l
}

func (r *runtime) stopTimers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, t := range r.timers {
		t.stop.Stop()
		delete(r.timers, id)
	}
}

// PersistState turns saving of bgp.state to the data folder on or off.
// Turning it on for the first time in this daemon's life merges the saved
// state into bgp.state (keys the script has set already win).
func (r *runtime) PersistState(on bool) error {
	s := r.s
	if !on {
		s.persist = false
		return nil
	}
	if s.dataDir == "" {
		return errors.New("no data folder configured ([edbgpd] data)")
	}
	s.persist = true
	if s.restored {
		return nil
	}
	s.restored = true
	saved, err := s.readState()
	if err != nil || saved == nil {
		return err
	}
	state := r.v.module.State()
	saved.ForEach(func(k, v lua.LValue) {
		if state.RawGet(k) == lua.LNil {
			state.RawSet(k, v)
		}
	})
	return nil
}

func (s *Script) statePath() string { return filepath.Join(s.dataDir, s.Name+".state.json") }

// readState loads the saved state into the running version's Lua state. A
// file that does not parse is set aside (renamed) and reported.
func (s *Script) readState() (*lua.LTable, error) {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := luaapi.DecodeJSON(s.cur0().L, b)
	t, ok := v.(*lua.LTable)
	if err != nil || !ok {
		aside := fmt.Sprintf("%s.corrupt-%d", s.statePath(), time.Now().Unix())
		os.Rename(s.statePath(), aside)
		s.log.Error("saved script state is corrupt; set aside, starting empty", "file", s.statePath(), "moved_to", aside, "err", err)
		return nil, nil
	}
	return t, nil
}

// saveState writes bgp.state atomically (temp file, fsync, rename), if
// persistence is on and it changed since the last save.
func (s *Script) saveState(v *version) {
	if !s.persist || v == nil {
		return
	}
	s.lastSave = time.Now()
	b, err := luaapi.EncodeJSON(v.module.State())
	if err != nil {
		s.log.Error("cannot save script state", "err", err)
		return
	}
	if string(b) == s.lastSaved {
		return
	}
	if err := writeAtomic(s.statePath(), b); err != nil {
		s.log.Error("cannot save script state", "err", err)
		return
	}
	s.lastSaved = string(b)
}

// writeAtomic replaces path with data so that a crash leaves the old or
// the new content, never a mix.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
