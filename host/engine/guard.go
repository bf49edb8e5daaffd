package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// callGuard bounds every call into a script's state. gopher-lua can only be
// stopped through the context set on the state, so the state keeps one
// cancelable context; a watchdog goroutine cancels it when a call runs past
// its deadline, and the next call gets a fresh one. That costs a lock and a
// clock read per call instead of a timer per call.
type callGuard struct {
	mu       sync.Mutex
	v        *version
	ctx      context.Context
	cancel   context.CancelFunc
	busy     bool
	deadline time.Time
	// calls numbers the calls, so the watchdog knows a new one; maxGrowth
	// (0: none) is how much the live heap may grow during one call, and
	// grew what it grew when the watchdog cut the call for it.
	calls     uint64
	maxGrowth int64
	grew      int64
	alone     bool // no other script's call ran when this one was cut
	// since is when the running call started (UnixNano), 0 between calls;
	// cutting is set while a call cut for memory has not ended yet: both
	// read by other scripts' watchdogs without the lock.
	since   atomic.Int64
	cutting atomic.Bool
}

// memEpoch is the large-allocation count at the last call cut for
// memory: what was allocated before it is that call's, not the others'.
var memEpoch atomic.Int64

// guards are every script's guard, for the watchdogs to compare calls.
var guards struct {
	sync.Mutex
	all map[*callGuard]bool
}

func (g *callGuard) register(on bool) {
	guards.Lock()
	defer guards.Unlock()
	if guards.all == nil {
		guards.all = make(map[*callGuard]bool)
	}
	if on {
		guards.all[g] = true
	} else {
		delete(guards.all, g)
	}
}

// olderCall tells whether another script's call, running now, started
// before g's: what the process allocates is everyone's, and the call
// that has run the longest is the one a runaway allocation is in (the
// others' calls, however short, can straddle the stall it causes).
func (g *callGuard) olderCall() bool {
	mine := g.since.Load()
	guards.Lock()
	defer guards.Unlock()
	for o := range guards.all {
		// A call already cut is out of the running: its goroutine may be
		// stalled in the very allocation that is being blamed.
		if t := o.since.Load(); o != g && t != 0 && t < mine && !o.cutting.Load() {
			return true
		}
	}
	return false
}

// otherCall tells whether another script's call is running now.
func (g *callGuard) otherCall() bool {
	guards.Lock()
	defer guards.Unlock()
	for o := range guards.all {
		if o != g && o.since.Load() != 0 {
			return true
		}
	}
	return false
}

// memoryError reports a call stopped because the process allocated more
// than max-memory in large objects while it ran: what one call allocates
// in Go (a `..` chain, a table filled in a loop) is seen nowhere else in
// time.
type memoryError struct {
	grew, limit int64
	where       string
	alone       bool // no other script's call was running: the blame is sure
}

func (e *memoryError) Error() string {
	return fmt.Sprintf("%s: cut off: %d MiB allocated in large objects during the call, more than max-memory (%d MiB)",
		e.where, e.grew>>20, e.limit>>20)
}

// cutOffError reports a call stopped by its deadline.
type cutOffError struct {
	limit time.Duration
	where string
}

func (e *cutOffError) Error() string {
	return fmt.Sprintf("%s: cut off after %v (call deadline)", e.where, e.limit)
}

// attach points the guard at a version's state (nil detaches).
func (g *callGuard) attach(v *version) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.v = v
	g.renew()
}

// renew gives the attached state a fresh call context. Caller holds mu.
func (g *callGuard) renew() {
	if g.cancel != nil {
		g.cancel()
	}
	g.ctx, g.cancel = nil, nil
	if g.v == nil {
		return
	}
	g.ctx, g.cancel = context.WithCancel(g.v.ctx)
	g.v.L.SetContext(g.ctx)
}

// call runs fn(args...) in v's state, protected, within limit. It must run
// on the goroutine that owns v and v must be attached.
func (g *callGuard) call(v *version, limit time.Duration, fn *lua.LFunction, args ...lua.LValue) error {
	return g.callFrom(time.Now(), v, limit, fn, args...)
}

// callFrom is call for a caller that has just read the clock.
func (g *callGuard) callFrom(now time.Time, v *version, limit time.Duration, fn *lua.LFunction, args ...lua.LValue) error {
	g.mu.Lock()
	g.busy = true
	g.calls++
	g.deadline = now.Add(limit)
	g.since.Store(now.UnixNano())
	g.mu.Unlock()

	err := v.L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, args...)

	g.mu.Lock()
	g.busy = false
	g.since.Store(0)
	g.cutting.Store(false)
	cut := g.ctx != nil && g.ctx.Err() != nil
	if cut {
		g.renew()
	}
	grew, alone := g.grew, g.alone
	g.grew = 0
	g.mu.Unlock()
	if cut && v.ctx.Err() == nil {
		if grew > 0 {
			return &memoryError{grew: grew, limit: g.maxGrowth, where: errWhere(err), alone: alone}
		}
		return &cutOffError{limit: limit, where: errWhere(err)}
	}
	return luaError(err)
}

// outside runs fn, a Go call made by the running Lua call, with the
// deadline stopped: the time fn takes is added to it.
func (g *callGuard) outside(fn func()) {
	g.mu.Lock()
	wasBusy := g.busy
	g.busy = false
	g.mu.Unlock()
	start := time.Now()
	defer func() {
		g.mu.Lock()
		g.busy = wasBusy
		g.deadline = g.deadline.Add(time.Since(start))
		g.mu.Unlock()
	}()
	fn()
}

// watch cancels calls that overrun their deadline, or during which the
// process allocates more than maxGrowth, until done is closed. The count
// is read (about 0.2 µs) only while a call runs.
func (g *callGuard) watch(done <-chan struct{}) {
	g.register(true)
	defer g.register(false)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var big largeAllocs
	var call uint64
	var start int64
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			g.mu.Lock()
			if g.busy && g.cancel != nil {
				if now.After(g.deadline) {
					g.cancel()
				} else if g.maxGrowth > 0 {
					n := big.read()
					switch {
					case g.calls != call:
						call, start = g.calls, n
					case n-max(start, memEpoch.Load()) > g.maxGrowth && !g.olderCall():
						g.grew = n - max(start, memEpoch.Load())
						g.alone = !g.otherCall()
						memEpoch.Store(n)
						g.cutting.Store(true)
						g.cancel()
					}
				}
			}
			g.mu.Unlock()
		}
	}
}

// luaError turns a gopher-lua error into one line that starts with
// file:line, whatever value the script raised.
func luaError(err error) error {
	if err == nil {
		return nil
	}
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		if ae.Cause != nil {
			return ae.Cause
		}
		if ae.Object != nil {
			return errors.New(ae.Object.String())
		}
	}
	return err
}

// errWhere extracts "file:line" from a Lua runtime error message.
func errWhere(err error) string {
	msg := luaError(err)
	if msg == nil {
		return "script"
	}
	s := msg.Error()
	// "path/x.lua:12: context canceled" -> "path/x.lua:12"
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ':' && i+1 < len(s) && s[i+1] == ' ' {
			head := s[:i]
			if j := lastColonDigits(head); j > 0 {
				return head
			}
		}
	}
	return s
}

// lastColonDigits reports whether s ends in ":<digits>".
func lastColonDigits(s string) int {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i < len(s) && i > 0 && s[i-1] == ':' {
		return i
	}
	return 0
}

// largeAllocs counts the bytes the process allocated in objects over 32
// KiB (Go's large objects), live or not. The live heap is known only when
// a collection ends, too late for a `..` chain that doubles a string per
// instruction (each such allocation stalls the whole process while it is
// made); and GoBGP allocates small objects by the gigabyte while it loads
// a table, so all allocations together would blame a script for them. A
// script that grows fast grows by large objects: strings, table arrays.
type largeAllocs struct{ s []metrics.Sample }

func (l *largeAllocs) read() int64 {
	if l.s == nil {
		l.s = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs-by-size:bytes"}}
	}
	metrics.Read(l.s)
	total := int64(l.s[0].Value.Uint64())
	h := l.s[1].Value.Float64Histogram()
	var small int64
	for i, c := range h.Counts {
		if up := h.Buckets[i+1]; up <= 32<<10 {
			small += int64(c) * int64(up) // an upper bound: the large part is not overstated
		}
	}
	return max(total-small, 0)
}
