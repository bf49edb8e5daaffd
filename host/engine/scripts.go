package engine

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// DefaultDebounce is how long the folder must be quiet after a change to
// a file before that file is (re)loaded: editors save in several steps.
const DefaultDebounce = 20 * time.Millisecond

// ScriptSet is the folder of scripts: it loads every *.lua file, reloads a
// file when it is saved, unloads it when it goes, and fans events out to
// the loaded scripts.
type ScriptSet struct {
	dir      string
	actions  luaapi.Actions
	limits   Limits
	log      *slog.Logger
	debounce time.Duration
	clock    Clock
	dataDir  string
	grants   func(name string) Sandbox // nil: no grants

	syncMu  sync.Mutex // serialises sync of files
	mu      sync.Mutex
	scripts map[string]*Script
	timers  map[string]*time.Timer
	live    atomic.Pointer[[]*Script] // loaded scripts, read lock-free by Dispatch
	room    chan struct{}             // a script's queue made room (Dispatch waits on it)
	watcher *fsnotify.Watcher
	closed  bool
	// unreadable: the folder's permissions shut edbgpd out (last seen).
	unreadable bool
	// onActive is called when the first script appears (the daemon then
	// starts watching GoBGP's events). Called with mu held: must not call
	// back into the set.
	onActive  func()
	activated bool
}

// NewScriptSet prepares the scripts of dir. Nothing is loaded until LoadAll.
func NewScriptSet(dir string, actions luaapi.Actions, limits Limits, log *slog.Logger) *ScriptSet {
	m := &ScriptSet{
		dir:      dir,
		actions:  actions,
		limits:   limits,
		log:      log,
		debounce: DefaultDebounce,
		clock:    wallClock{},
		room:     make(chan struct{}, 1),
		scripts:  make(map[string]*Script),
		timers:   make(map[string]*time.Timer),
	}
	m.live.Store(&[]*Script{})
	watchHeap()
	return m
}

// SetDataDir sets where scripts that ask for it keep bgp.state across
// restarts. Call before LoadAll.
func (m *ScriptSet) SetDataDir(dir string) { m.dataDir = dir }

// SetGrants sets where a script's grants come from (the config in force),
// read at each load. Call before LoadAll.
func (m *ScriptSet) SetGrants(f func(name string) Sandbox) { m.grants = f }

// SetClock replaces the wall clock (the offline runner's fake clock).
// Call before LoadAll.
func (m *ScriptSet) SetClock(c Clock) { m.clock = c }

// isScript tells whether a file name in the folder is a script.
func isScript(name string) bool {
	return strings.HasSuffix(name, ".lua") && !strings.HasPrefix(name, ".")
}

// LoadAll loads every script in the folder, in name order, and returns when
// each has run its on_load (or failed to load: that is logged).
func (m *ScriptSet) LoadAll() error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isScript(e.Name()) {
			m.rescan(e.Name())
		}
	}
	return nil
}

// OnActive sets f to be called once, when the first script appears (the
// daemon then starts watching GoBGP's events). f is called with the set's
// lock held: it must not call back into the set. Call before LoadAll.
func (m *ScriptSet) OnActive(f func()) { m.onActive = f }

// Active tells whether any script is there to take events; safe from any
// goroutine, cheap enough for every event.
func (m *ScriptSet) Active() bool { return len(*m.live.Load()) > 0 }

// Watch starts reloading scripts on changes in the folder.
func (m *ScriptSet) Watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	// Watch the folder, not the files: editors replace files on save.
	if err := w.Add(m.dir); err != nil {
		w.Close()
		return err
	}
	m.mu.Lock()
	m.watcher = w
	m.mu.Unlock()
	go m.watchLoop(w)
	return nil
}

func (m *ScriptSet) watchLoop(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == filepath.Clean(m.dir) {
				switch {
				case ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0:
					m.log.Error("scripts folder removed; loaded scripts keep running; watching for it to come back", "dir", m.dir)
					go m.awaitFolder(w)
				case ev.Op&fsnotify.Chmod != 0:
					m.checkReadable()
				}
				continue
			}
			name := filepath.Base(ev.Name)
			if !isScript(name) || ev.Op == fsnotify.Chmod {
				continue
			}
			m.schedule(name)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			m.log.Error("watching scripts folder", "dir", m.dir, "err", err)
		}
	}
}

// checkReadable follows the folder's permissions: when it becomes
// unreadable, what runs keeps running; when it is readable again, its
// files are read again.
func (m *ScriptSet) checkReadable() {
	_, err := os.ReadDir(m.dir)
	m.mu.Lock()
	was := m.unreadable
	m.unreadable = err != nil
	m.mu.Unlock()
	switch {
	case err != nil && !was:
		m.log.Error("scripts folder unreadable; loaded scripts keep running", "dir", m.dir, "err", err)
	case err == nil && was:
		m.log.Info("scripts folder readable again; reading it", "dir", m.dir)
		m.LoadAll()
		for _, s := range m.Scripts() {
			m.rescan(s.Name)
		}
	}
}

// awaitFolder polls for the scripts folder to come back, then watches it
// again and loads what it holds.
func (m *ScriptSet) awaitFolder(w *fsnotify.Watcher) {
	for {
		time.Sleep(time.Second)
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return
		}
		if fi, err := os.Stat(m.dir); err == nil && fi.IsDir() {
			if err := w.Add(m.dir); err != nil {
				m.log.Error("watching scripts folder again", "dir", m.dir, "err", err)
				continue
			}
			m.log.Info("scripts folder is back; watching it again", "dir", m.dir)
			m.LoadAll()
			// Scripts whose files did not come back are unloaded now.
			for _, s := range m.Scripts() {
				m.rescan(s.Name)
			}
			return
		}
	}
}

// schedule syncs name once the folder has been quiet for the debounce time.
func (m *ScriptSet) schedule(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if t, ok := m.timers[name]; ok {
		t.Reset(m.debounce)
		return
	}
	m.timers[name] = time.AfterFunc(m.debounce, func() {
		m.mu.Lock()
		delete(m.timers, name)
		m.mu.Unlock()
		m.sync(name)
	})
}

// sync makes the running state of name match the file: load, reload, or
// unload it.
func (m *ScriptSet) sync(name string) { m.syncFile(name, false) }

// rescan is sync for a folder read again (LoadAll): a quarantined script
// whose file did not change stays out.
func (m *ScriptSet) rescan(name string) { m.syncFile(name, true) }

func (m *ScriptSet) syncFile(name string, rescan bool) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	path := filepath.Join(m.dir, name)
	fi, err := os.Stat(path) // follows symlinks, as deployed by config tools
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	s := m.scripts[name]
	if err != nil && !errors.Is(err, fs.ErrNotExist) && s != nil {
		// Unreadable (permissions), not gone: keep what runs.
		m.mu.Unlock()
		m.log.Error("cannot read script; the loaded version keeps running", "file", path, "err", err)
		return
	}
	if err != nil || !fi.Mode().IsRegular() {
		if _, derr := os.Stat(m.dir); derr != nil && s != nil {
			// The whole folder is gone (or unreadable): keep what runs.
			m.mu.Unlock()
			return
		}
		if s != nil {
			delete(m.scripts, name)
			m.publish()
		}
		m.mu.Unlock()
		if s != nil {
			s.Stop()
		}
		return
	}
	if s == nil {
		s = newScript(path, name, m.actions, m.limits, m.clock, m.dataDir, m.room, m.log)
		if m.grants != nil {
			s.grant = func() Sandbox { return m.grants(name) }
		}
		m.scripts[name] = s
		m.publish()
	}
	m.mu.Unlock()

	switch err := s.reload(rescan); {
	case err == nil, errors.Is(err, ErrUnchanged):
	default:
		// Logged before it is counted: whoever sees the count finds the
		// log line.
		if s.Version() != "" {
			m.log.Error("script not reloaded; keeping previous version", "script", name, "version", s.Version(), "err", err)
		} else {
			m.log.Error("script not loaded", "script", name, "err", err)
		}
		s.health.noteError(err)
		s.Stats.Failed.Add(1)
	}
	m.mu.Lock()
	m.publish()
	m.mu.Unlock()
}

// publish refreshes the list Dispatch reads: every script, loading ones
// included, so that none misses events from the moment its file appears.
// Caller holds mu.
func (m *ScriptSet) publish() {
	live := make([]*Script, 0, len(m.scripts))
	for _, s := range m.scripts {
		live = append(live, s)
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Name < live[j].Name })
	m.live.Store(&live)
	if len(live) > 0 && !m.activated && m.onActive != nil {
		m.activated = true
		m.onActive()
	}
}

// Dispatch queues ev for every script that wants it (its subscription is
// checked here, in Go). A script that is behind gets its best paths
// coalesced per prefix (see eventQueue) and holds back no one. Only when
// every script that wants ev is behind does Dispatch wait for one to make
// room: GoBGP's watcher queue then takes up the slack, as references to
// paths GoBGP keeps anyway, and BGP itself goes on.
func (m *ScriptSet) Dispatch(ev event.Event) {
	// Subscriptions are checked once per event; the list stays on the stack.
	var buf [16]*Script
	wanted := buf[:0]
	for _, s := range *m.live.Load() {
		if sub := s.sub.Load(); sub != nil && !sub.Match(ev) {
			continue
		}
		wanted = append(wanted, s)
	}
	for allBehind(wanted) {
		// A script that goes away closes its queue, which is then not
		// behind; the timeout only bounds a missed wake-up.
		select {
		case <-m.room:
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, s := range wanted {
		s.Push(ev)
	}
}

// allBehind reports whether there are scripts and every one is behind.
func allBehind(scripts []*Script) bool {
	for _, s := range scripts {
		if !s.queue.behind() {
			return false
		}
	}
	return len(scripts) > 0
}

// Scripts lists every known script (loaded or failed), by name.
func (m *ScriptSet) Scripts() []*Script {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := make([]*Script, 0, len(m.scripts))
	for _, s := range m.scripts {
		l = append(l, s)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

// Script returns the script of that file name, or nil.
func (m *ScriptSet) Script(name string) *Script {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scripts[name]
}

// Close stops watching and unloads every script (on_unload runs).
func (m *ScriptSet) Close() {
	m.mu.Lock()
	m.closed = true
	for _, t := range m.timers {
		t.Stop()
	}
	w := m.watcher
	scripts := m.scripts
	m.scripts = map[string]*Script{}
	m.publish()
	m.mu.Unlock()
	if w != nil {
		w.Close()
	}
	m.syncMu.Lock() // wait for a sync in flight
	m.syncMu.Unlock()
	// In parallel: each Stop is bounded, and so is their sum.
	var wg sync.WaitGroup
	for _, s := range scripts {
		wg.Go(s.Stop)
	}
	wg.Wait()
}
