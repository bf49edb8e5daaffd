package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/sandbox"
	"github.com/edbgpd/edbgpd/luaapi"
)

// Sandbox is what the config lets into a script's sandbox beyond the
// default ([edbgpd.sandbox] and the script's grants).
type Sandbox struct {
	Allow        []string // of sandbox.Grantable
	RequirePaths []string // folders require searches after lib/
}

// Key tells whether two grants build the same sandbox: a script whose
// key changed is reloaded even if its file did not.
func (b Sandbox) Key() string {
	allow := slices.Clone(b.Allow)
	slices.Sort(allow)
	return strings.Join(allow, ",") + "|" + strings.Join(b.RequirePaths, ":")
}

// Limits bound what one script may cost.
type Limits struct {
	// CallTimeout cuts off one handler call (on_best_path, on_peer_state,
	// on_unload). Keep it well under the BGP hold time.
	CallTimeout time.Duration
	// LoadTimeout bounds running the chunk and on_load.
	LoadTimeout time.Duration
	// QuarantineAfter unloads a script after this many calls in a row
	// failed (error or cut-off; handlers, timers and callbacks alike),
	// until its file is saved again; 0 never.
	QuarantineAfter int
	// MaxEntries bounds the Lua table entries a script may hold. Past it
	// the script is quarantined. 0: no bound.
	MaxEntries int
	// MaxMemory bounds what a script holds, in bytes: its strings plus
	// sandbox.EntryBytes a table entry (sandbox.Usage). Past it the script
	// is quarantined. 0: no bound.
	MaxMemory int64
	// QueueLimit is how many events may wait in order before a script is
	// behind and its best paths are coalesced per prefix. 0: the default.
	QueueLimit int
}

// The memory of a script is measured after a call (handler, timer,
// callback, walk, on_load) at most every memoryCheckEvery, and sooner,
// down to memoryCheckSoon, when the process heap grew (heapGrowth): a
// script's tables can only grow while it runs. A check costs a walk of
// what the script holds, so checks are spaced at least 20 walks apart.
const (
	memoryCheckEvery = 2 * time.Second
	memoryCheckSoon  = 100 * time.Millisecond
)

// memoryStrikes: a script whose calls are cut for memory twice within
// this is quarantined.
const memoryStrikes = 30 * time.Second

// DefaultLimits are used where the config says nothing.
var DefaultLimits = Limits{CallTimeout: time.Second, LoadTimeout: 5 * time.Second, QuarantineAfter: 20,
	MaxEntries: 10_000_000, MaxMemory: 1 << 30}

// ScriptStats are counters of one script, safe to read from any goroutine.
type ScriptStats struct {
	Delivered   atomic.Uint64 // events handed to a handler
	Errors      atomic.Uint64 // handler calls that raised an error
	CutOffs     atomic.Uint64 // handler calls stopped by the deadline
	Reloads     atomic.Uint64 // versions loaded
	Failed      atomic.Uint64 // loads that failed (previous version kept)
	Quarantines atomic.Uint64 // times the script was unloaded for failing
	// What the script held at its last memory check (sandbox.Usage).
	HeldEntries atomic.Int64
	HeldBytes   atomic.Int64
}

// Script is one Lua file and the goroutine that owns its state. Every
// touch of a *lua.LState happens on that goroutine: events, reloads and
// stop are messages to it.
type Script struct {
	Name string // file name, e.g. "konami.lua"
	Path string

	log     *slog.Logger
	actions luaapi.Actions
	limits  Limits
	queue   *eventQueue
	ctl     chan control
	done    chan struct{}
	guard   callGuard
	Stats   ScriptStats
	health  *scriptHealth

	clock   Clock
	dataDir string         // where persisted state goes; "" for none
	grant   func() Sandbox // what the sandbox lets in; nil: nothing more

	// Owned by the goroutine:
	cur       *version
	loading   *version // the version being loaded, for PersistState
	persist   bool
	restored  bool
	lastSave  time.Time
	lastSaved string
	prev      map[string]*event.BestPath // last best path per subscribed prefix, for `previous`
	failures  int                        // handler calls in a row that failed
	unhandled int                        // rest of the batch when a control message came
	lastCheck time.Time                  // of MaxEntries and MaxMemory
	memStrike time.Time                  // the last call cut for memory
	lastWalk  time.Duration              // what that check cost
	heapSeen  uint64                     // heapGrowth at that check
	skipUntil uint64                     // best paths up to this seq are in a replay already
	// quarantined is the version (hash|sandbox) last quarantined, kept
	// out of rescans until a save.
	quarantined string

	// inBatch is what is left of the batch being handled: taken from the
	// queue, not handled yet.
	inBatch atomic.Int64
	// listing counts bgp.walk prefix lists being fetched in the background.
	listing atomic.Int32
	// sub is the running version's subscription, read by Dispatch.
	sub atomic.Pointer[luaapi.Subscription]
	// version is the hash of the running version, for status and tests.
	version atomic.Value
}

type control struct {
	stop bool
	// rescan: the folder is read again (SIGHUP), not this file saved; a
	// quarantined version stays out.
	rescan bool
	result chan error
}

// version is one loaded revision of the file.
type version struct {
	L        *lua.LState
	hash     string
	sandbox  string // Sandbox.Key it was built with
	ctx      context.Context
	cancel   context.CancelFunc
	onBest   *lua.LFunction
	onPeer   *lua.LFunction
	onUnload *lua.LFunction
	tables   *luaapi.EventTables
	module   *luaapi.Module
	rt       *runtime
	sub      *luaapi.Subscription // nil: everything
	budget   *sandbox.Budget      // what its string builders may allocate
}

// ErrUnchanged is returned by Reload when the file's content is the version
// already running.
var ErrUnchanged = errors.New("unchanged")

// room, if not nil, is told whenever the script's queue makes room.
func newScript(path, name string, actions luaapi.Actions, limits Limits, clock Clock, dataDir string, room chan<- struct{}, log *slog.Logger) *Script {
	s := &Script{
		Name:    name,
		Path:    path,
		clock:   clock,
		dataDir: dataDir,
		log:     log.With("script", name),
		actions: actions,
		limits:  limits,
		ctl:     make(chan control),
		done:    make(chan struct{}),
	}
	s.queue = newEventQueue(s.log, limits.QueueLimit, room)
	s.health = newScriptHealth()
	s.version.Store("")
	s.guard.maxGrowth = limits.MaxMemory
	go s.run()
	go s.guard.watch(s.done)
	return s
}

// Version is the short hash of the running version, "" if none loaded.
func (s *Script) Version() string { return s.version.Load().(string) }

// Queued is the number of events waiting for the script.
func (s *Script) Queued() int { return s.queue.depth() + int(s.inBatch.Load()) }

// QueueAge is how long the oldest waiting event has waited.
func (s *Script) QueueAge() time.Duration { return s.queue.age() }

// Reload reads the file and, if it compiles and loads, replaces the running
// version. On error the running version (if any) keeps running.
func (s *Script) Reload() error { return s.reload(false) }

func (s *Script) reload(rescan bool) error {
	c := control{rescan: rescan, result: make(chan error, 1)}
	// The goroutine takes control messages between calls, and calls end
	// at their deadline: past this it is stuck in a Go call.
	t := time.NewTimer(s.limits.LoadTimeout + 2*s.limits.CallTimeout + stopGrace)
	defer t.Stop()
	select {
	case s.ctl <- c:
		return <-c.result
	case <-s.done:
		return errors.New("script stopped")
	case <-t.C:
		return errors.New("the script's goroutine is busy past its call deadline; not reloaded")
	}
}

// stopGrace is what Stop waits beyond the two call deadlines it allows
// (the current call, on_unload) before it gives up on the goroutine.
const stopGrace = 2 * time.Second

// Stop runs on_unload, closes the state and ends the goroutine. Events
// still queued are discarded (logged with their count). It waits for the
// current call and on_unload, each bounded by call-timeout; a goroutine
// stuck past that in a Go call is left behind, logged, so that shutdown
// goes on.
func (s *Script) Stop() {
	c := control{stop: true, result: make(chan error, 1)}
	bound := 2*s.limits.CallTimeout + stopGrace
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case s.ctl <- c:
		select {
		case <-c.result:
			return
		case <-t.C:
		}
	case <-s.done:
		return
	case <-t.C:
	}
	s.log.Error("script did not stop in time; left behind", "waited", bound)
}

// Push queues an event for the script.
func (s *Script) Push(ev event.Event) { s.queue.push(item{ev: ev}) }

// pushTask queues a task of the script's own, in order with events.
func (s *Script) pushTask(t task) { s.queue.push(item{task: t}) }

// syncMarker is queued by Sync; running it closes the channel.
type syncMarker chan struct{}

func (m syncMarker) run(*Script) { close(m) }

// Sync returns when the queue is empty: everything queued before it has
// been handled, and what that queued in turn (callbacks).
func (s *Script) Sync() {
	for {
		m := make(syncMarker)
		s.pushTask(m)
		select {
		case <-m:
		case <-s.done:
			return
		}
		if s.listing.Load() > 0 {
			time.Sleep(time.Millisecond) // a walk's first chunk is on its way
			continue
		}
		if s.queue.depth() == 0 {
			return
		}
	}
}

func (s *Script) run() {
	defer close(s.done)
	defer s.queue.close()
	for {
		// Control messages go first so a reload is not stuck behind a backlog.
		select {
		case c := <-s.ctl:
			if s.control(c) {
				return
			}
			continue
		default:
		}
		select {
		case c := <-s.ctl:
			if s.control(c) {
				return
			}
		case <-s.queue.ready:
			batch := s.queue.take()
			s.inBatch.Store(int64(len(batch)))
			for i, ev := range batch {
				s.deliver(ev)
				s.inBatch.Add(-1)
				// A reload or stop does not wait for the backlog.
				select {
				case c := <-s.ctl:
					s.unhandled = len(batch) - i - 1
					if s.control(c) {
						return
					}
					s.unhandled = 0
				default:
				}
			}
			s.queue.caughtUp()
		}
	}
}

// control handles one message; it reports whether the goroutine must end.
func (s *Script) control(c control) bool {
	if c.stop {
		if n := s.queue.depth() + s.unhandled; n > 0 {
			s.log.Warn("script stopped with events still queued", "discarded", n)
		}
		s.unload()
		c.result <- nil
		return true
	}
	c.result <- s.load(c.rescan)
	return false
}

func (s *Script) load(rescan bool) error {
	if fi, err := os.Stat(s.Path); err == nil && fi.Size() > sandbox.MaxSource {
		return fmt.Errorf("%s is %d bytes, more than the %d MiB a script may have", s.Path, fi.Size(), sandbox.MaxSource>>20)
	}
	src, err := os.ReadFile(s.Path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(src)
	hash := hex.EncodeToString(sum[:6])
	var grant Sandbox
	if s.grant != nil {
		grant = s.grant()
	}
	box := grant.Key()
	if s.cur != nil && s.cur.hash == hash && s.cur.sandbox == box {
		return ErrUnchanged
	}
	if rescan && s.cur == nil && s.quarantined == hash+"|"+box {
		return ErrUnchanged // quarantined until the file is saved
	}
	proto, err := sandbox.Compile(src, s.Path)
	if err != nil {
		return fmt.Errorf("syntax error: %s", strings.TrimSpace(err.Error()))
	}
	log := s.log.With("version", hash)
	libDirs := append([]string{filepath.Join(filepath.Dir(s.Path), "lib")}, grant.RequirePaths...)
	v := &version{hash: hash, sandbox: box, budget: &sandbox.Budget{Max: s.limits.MaxMemory}}
	v.L = sandbox.New(log, libDirs, grant.Allow, v.budget)
	v.tables = luaapi.NewEventTables(v.L)
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.rt = &runtime{s: s, v: v, timers: make(map[int]*timer)}
	var state *lua.LTable
	if s.cur != nil {
		// bgp.state lives on across versions: copy it into the new state.
		var skipped int
		state, skipped = luaapi.CopyTable(v.L, s.cur.module.State())
		if skipped > 0 {
			log.Warn("bgp.state values that cannot cross a reload (functions, userdata, deep nesting) were dropped", "count", skipped)
		}
	}
	v.module = luaapi.NewModule(luaapi.Options{Script: s.Name, Actions: s.actions, Runtime: v.rt, Log: log, State: state})
	v.module.Preload(v.L)
	s.loading = v
	defer func() { s.loading = nil }()
	s.guard.attach(v)
	ok := false
	defer func() {
		if !ok {
			s.closeVersion(v)
			s.guard.attach(s.cur)
		}
	}()
	if err := s.guard.call(v, s.limits.LoadTimeout, v.L.NewFunctionFromProto(proto)); err != nil {
		return err
	}
	if v.onBest, err = handler(v.L, "on_best_path"); err != nil {
		return err
	}
	if v.onPeer, err = handler(v.L, "on_peer_state"); err != nil {
		return err
	}
	if v.onUnload, err = handler(v.L, "on_unload"); err != nil {
		return err
	}
	onLoad, err := handler(v.L, "on_load")
	if err != nil {
		return err
	}
	if onLoad != nil {
		if err := s.guard.call(v, s.limits.LoadTimeout, onLoad); err != nil {
			return fmt.Errorf("on_load: %w", err)
		}
	}
	if err := s.overMemory(v, time.Now(), true); err != nil {
		return err
	}
	ok = true
	old := s.cur
	s.cur = v
	if old != nil {
		// The new version is live; the old one says goodbye last.
		s.guard.attach(old)
		s.callUnload(old)
		s.closeVersion(old)
		s.guard.attach(v)
	}
	s.version.Store(hash)
	s.sub.Store(v.sub)
	s.prev = nil
	s.Stats.Reloads.Add(1)
	s.health.noteLoaded()
	log.Info("script loaded", "replaced", old != nil)
	if v.sub != nil && v.sub.Replay {
		s.replay(v)
	}
	return nil
}

// replay hands the version the current table as events (field replay =
// true), then skips queued best paths that the replay already covers.
func (s *Script) replay(v *version) {
	var families []string
	for f := range v.sub.Families {
		families = append(families, f)
	}
	var paths []*event.BestPath
	seq, err := s.actions.Replay(families, func(p *event.BestPath) {
		if v.sub.Match(event.Of(p)) {
			paths = append(paths, p)
		}
	})
	if err != nil {
		s.log.Error("table replay failed", "err", err)
		return
	}
	s.skipUntil = seq
	for _, p := range paths {
		s.deliverBestPath(v, p, true, 0)
	}
	s.log.Info("table replayed to script", "paths", len(paths))
}

func (s *Script) unload() {
	if s.cur == nil {
		return
	}
	s.callUnload(s.cur)
	s.saveState(s.cur)
	s.closeVersion(s.cur)
	s.cur = nil
	s.version.Store("")
	s.log.Info("script unloaded")
}

func (s *Script) callUnload(v *version) {
	if v.onUnload == nil {
		return
	}
	if err := s.guard.call(v, s.limits.CallTimeout, v.onUnload); err != nil {
		s.health.noteError(err)
		s.log.Error("on_unload failed", "err", err)
	}
}

func (s *Script) closeVersion(v *version) {
	v.cancel()
	v.rt.stopTimers()
	v.L.Close()
}

// cur0 is the version bound functions run in: the one being loaded, else
// the running one.
func (s *Script) cur0() *version {
	if s.loading != nil {
		return s.loading
	}
	return s.cur
}

// handler returns the global function name, nil if it is not defined, or
// an error if it is defined as something else.
func handler(L *lua.LState, name string) (*lua.LFunction, error) {
	switch f := L.GetGlobal(name).(type) {
	case *lua.LNilType:
		return nil, nil
	case *lua.LFunction:
		return f, nil
	default:
		return nil, fmt.Errorf("%s is a %s, want a function", name, f.Type())
	}
}

// deliver runs one item: a task, or the handler for an event if the
// running version has one and wants the event.
func (s *Script) deliver(it item) {
	if it.task != nil {
		it.task.run(s)
		return
	}
	v := s.cur
	if v == nil {
		return
	}
	if e := it.ev.BestPath; e != nil {
		if v.sub != nil && !v.sub.Match(it.ev) {
			return // queued for a version that wanted more
		}
		if e.Seq != 0 && e.Seq <= s.skipUntil {
			return // older than the replay this version started from
		}
		s.deliverBestPath(v, e, false, it.skipped)
		return
	}
	if e := it.ev.PeerState; e != nil {
		if v.sub != nil && !v.sub.Match(it.ev) {
			return
		}
		if v.onPeer != nil {
			s.call(v, "on_peer_state", v.onPeer, v.tables.PeerState(v.L, e), e.Seq)
		}
	}
}

// call runs a handler for an event, counted and bounded.
func (s *Script) call(v *version, name string, fn *lua.LFunction, arg lua.LValue, seq uint64) {
	s.Stats.Delivered.Add(1)
	v.module.SetCause(seq)
	defer s.maybeSave(v)
	start := time.Now()
	err := s.guard.callFrom(start, v, s.limits.CallTimeout, fn, arg)
	end := time.Now()
	s.health.handler.Observe(end.Sub(start).Seconds())
	s.called(v, fn, end, err, "handler failed", "handler", name)
}

// called settles a call into v that ended at end with err (nil: it
// succeeded): the memory check first, then the failure, logged as msg
// with attrs and counted. Handlers, timers and callbacks count alike
// towards quarantine-after: a script whose calls fail in turn is failing
// in a row. It reports whether v was quarantined.
func (s *Script) called(v *version, fn *lua.LFunction, end time.Time, err error, msg string, attrs ...any) bool {
	if s.checkMemory(v, fn, end, err) {
		return true
	}
	if err == nil {
		s.failures = 0
		return false
	}
	var cut *cutOffError
	if errors.As(err, &cut) {
		s.Stats.CutOffs.Add(1)
	} else {
		s.Stats.Errors.Add(1)
	}
	s.health.noteError(err)
	s.log.Error(msg, append(attrs, "err", err)...)
	s.failures++
	if q := s.limits.QuarantineAfter; q > 0 && s.failures >= q && s.cur == v {
		s.quarantine(v, fmt.Sprintf("%d calls in a row failed (handlers, timers, callbacks; quarantine-after %d)", s.failures, q), fn, err)
		return true
	}
	return false
}

// quarantine unloads v for why, until its file is saved again; fn is the
// function that ran last and err its error (nil: none), both logged.
func (s *Script) quarantine(v *version, why string, fn *lua.LFunction, err error) {
	s.Stats.Quarantines.Add(1)
	s.health.noteQuarantined()
	attrs := []any{"at", funcWhere(fn)}
	if err != nil {
		s.health.noteError(err)
		attrs = append(attrs, "last_err", err)
	}
	s.log.Error("SCRIPT QUARANTINED: "+why+"; save the file to load it again", attrs...)
	s.quarantined = v.hash + "|" + v.sandbox
	s.failures = 0
	s.unload()
	// What it held is garbage now: give it back to the system at once
	// rather than at the scavenger's pace.
	go debug.FreeOSMemory()
}

// checkMemory measures what v holds, when a check is due (see
// memoryCheckEvery), and quarantines the script if that is over its
// limits; fn is the function that ran last, named in the log. It reports
// whether the script was quarantined. Script goroutine only, between calls.
//
// A call whose string builders were refused for max-memory quarantines
// the script at once; a call that err says was cut for the heap's growth
// does at once when it ran alone, else the second time within
// memoryStrikes.
func (s *Script) checkMemory(v *version, fn *lua.LFunction, now time.Time, callErr error) bool {
	err := s.overMemory(v, now, false)
	var grew *memoryError
	switch {
	case errors.As(callErr, &grew) && !grew.alone && now.Sub(s.memStrike) > memoryStrikes:
		// What a process allocates is every script's: the blame goes to
		// the call that ran longest, which can be a bystander starved of
		// CPU while a runaway allocates. A runaway does it again. A call
		// cut while no other script's ran is surely the one: quarantined
		// at once (a second round of gigabytes could stall BGP).
		s.memStrike = now
		s.log.Error("call cut for memory; the script is quarantined if it happens again within "+memoryStrikes.String(),
			"err", callErr, "at", funcWhere(fn))
	case errors.As(callErr, &grew):
		err = grew
	case v.budget.Over:
		err = callErr
		if err == nil {
			err = errors.New("its string builders were refused for max-memory")
		}
	}
	if err != nil && s.cur == v {
		s.quarantine(v, err.Error(), fn, nil)
		return true
	}
	return false
}

// overMemory says how v is over its limits, nil if not or if no check is
// due (force: check now).
func (s *Script) overMemory(v *version, now time.Time, force bool) error {
	l := s.limits
	if l.MaxEntries <= 0 && l.MaxMemory <= 0 {
		return nil
	}
	since := now.Sub(s.lastCheck)
	grew := heapGrowth.Load()
	if !force && since < memoryCheckEvery && (grew == s.heapSeen || since < max(memoryCheckSoon, 20*s.lastWalk)) {
		return nil
	}
	s.lastCheck, s.heapSeen = now, grew
	u := sandbox.Measure(v.L, l.MaxEntries, l.MaxMemory, v.rt.roots()...)
	s.lastWalk = time.Since(now)
	v.budget.Measured(u.Bytes())
	s.Stats.HeldEntries.Store(int64(u.Entries))
	s.Stats.HeldBytes.Store(u.Bytes())
	switch {
	case l.MaxEntries > 0 && u.Entries > l.MaxEntries:
		return fmt.Errorf("it holds more Lua table entries than allowed (max-table-entries %d)", l.MaxEntries)
	case l.MaxMemory > 0 && u.Bytes() > l.MaxMemory:
		return fmt.Errorf("it holds more memory than allowed (%d MiB or more of strings and tables; max-memory %d MiB)", u.Bytes()>>20, l.MaxMemory>>20)
	}
	return nil
}

// funcWhere is "file:line" where fn is defined, for the log.
func funcWhere(fn *lua.LFunction) string {
	if fn == nil || fn.Proto == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}

// stateSaveInterval bounds how often a persisted bgp.state is written
// while a script runs (it is always written on unload and shutdown).
const stateSaveInterval = 5 * time.Second

func (s *Script) maybeSave(v *version) {
	if s.persist && time.Since(s.lastSave) >= stateSaveInterval {
		s.saveState(v)
	}
}

// deliverBestPath calls on_best_path, with `previous` for scripts that
// subscribed to prefixes, `replay` for replayed paths, and `coalesced` and
// `skipped` when older states of the prefix were coalesced away.
func (s *Script) deliverBestPath(v *version, e *event.BestPath, replay bool, skipped int) {
	var prev *event.BestPath
	if v.sub != nil && v.sub.WantsPrevious() {
		if s.prev == nil {
			s.prev = make(map[string]*event.BestPath)
		}
		prev = s.prev[e.Prefix]
		if e.Withdrawal {
			delete(s.prev, e.Prefix)
		} else {
			s.prev[e.Prefix] = e
		}
	}
	if v.onBest == nil {
		return
	}
	ev := v.tables.BestPathEvent(v.L, e, luaapi.Delivery{Previous: prev, Replay: replay, Skipped: skipped})
	s.call(v, "on_best_path", v.onBest, ev, e.Seq)
}
