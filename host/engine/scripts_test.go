package engine_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/internal/bgptest"
	"github.com/edbgpd/edbgpd/luaapi"
)

// recorder is a fake daemon: it records what scripts ask of it.
type recorder struct {
	luaapi.Recorder
	mu    sync.Mutex
	calls []string
}

func (r *recorder) SetExportPolicy(peer, policy string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, peer+" "+policy)
	return nil
}
func (r *recorder) SetDefaultExportPolicy(policy string) error {
	return r.SetExportPolicy("default", policy)
}
func (r *recorder) Peers() ([]luaapi.PeerStatus, error) { return nil, nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) has(call string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c == call {
			return true
		}
	}
	return false
}

// handlerScript answers each best path with set_export_policy(tag, prefix).
func handlerScript(tag string) string {
	return `local bgp = require("bgp")
function on_best_path(ev)
  bgp.set_export_policy("` + tag + `", ev.prefix)
end
function on_unload()
  bgp.set_export_policy("` + tag + `", "unloaded")
end
`
}

type scriptEnv struct {
	t    *testing.T
	dir  string
	rec  *recorder
	logs *bgptest.Buffer
	set  *engine.ScriptSet
	n    int
}

// testLogger logs to the test output when -v, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newScriptEnv(t *testing.T, limits engine.Limits) *scriptEnv {
	e := &scriptEnv{t: t, dir: t.TempDir(), rec: &recorder{}, logs: &bgptest.Buffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.set = engine.NewScriptSet(e.dir, e.rec, limits, log)
	t.Cleanup(e.set.Close)
	return e
}

func (e *scriptEnv) write(name, src string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// handledBy sends events until the script tagged tag answers one.
func (e *scriptEnv) handledBy(tag string) {
	e.t.Helper()
	bgptest.WaitFor(e.t, 5*time.Second, func() bool {
		e.n++
		prefix := "10." + strconv.Itoa(e.n%256) + ".0.0/16"
		e.set.Dispatch(event.Of(&event.BestPath{Prefix: prefix, Family: "ipv4-unicast"}))
		time.Sleep(5 * time.Millisecond)
		return e.rec.has(tag + " " + prefix)
	}, "an event handled by "+tag)
}

func TestReloadOnSave(t *testing.T) {
	for _, tc := range []struct {
		name string
		save func(e *scriptEnv, name, src string)
	}{
		{"write in place", func(e *scriptEnv, name, src string) { e.write(name, src) }},
		{"write temp and rename", func(e *scriptEnv, name, src string) {
			e.write(".tmp-"+name+".swp", src)
			if err := os.Rename(filepath.Join(e.dir, ".tmp-"+name+".swp"), filepath.Join(e.dir, name)); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete and create", func(e *scriptEnv, name, src string) {
			if err := os.Remove(filepath.Join(e.dir, name)); err != nil {
				t.Fatal(err)
			}
			e.write(name, src)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newScriptEnv(t, engine.DefaultLimits)
			e.write("a.lua", handlerScript("v1"))
			if err := e.set.LoadAll(); err != nil {
				t.Fatal(err)
			}
			if err := e.set.Watch(); err != nil {
				t.Fatal(err)
			}
			e.handledBy("v1")
			tc.save(e, "a.lua", handlerScript("v2"))
			e.handledBy("v2")
			bgptest.WaitFor(t, 2*time.Second, func() bool { return e.rec.has("v1 unloaded") }, "on_unload of v1")
			// One save, one reload: the first load plus this one.
			time.Sleep(100 * time.Millisecond)
			if got := e.set.Script("a.lua").Stats.Reloads.Load(); got != 2 {
				t.Errorf("loads = %d, want 2 (one per save)", got)
			}
		})
	}
}

func TestNewAndRemovedScripts(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	if err := e.set.Watch(); err != nil {
		t.Fatal(err)
	}
	e.write("new.lua", handlerScript("new"))
	e.handledBy("new")
	if err := os.Remove(filepath.Join(e.dir, "new.lua")); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 2*time.Second, func() bool { return e.rec.has("new unloaded") && e.set.Script("new.lua") == nil }, "unload on remove")
	e.write("notes.txt", "not a script")
	time.Sleep(100 * time.Millisecond)
	if len(e.set.Scripts()) != 0 {
		t.Errorf("scripts = %v, want none", e.set.Scripts())
	}
}

func TestBadVersionKeepsPrevious(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want string // in the log: file and line
	}{
		{"syntax error", "function on_best_path(ev)\n  if then\nend\n", "a.lua line:2"},
		{"runtime error in chunk", "local x = nil\nx.y = 1\n", "a.lua:2:"},
		{"on_load error", "function on_load()\n  error('no thanks')\nend\n", "a.lua:2: no thanks"},
		{"handler not a function", "on_best_path = 42\n", "on_best_path is a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newScriptEnv(t, engine.DefaultLimits)
			e.write("a.lua", handlerScript("good"))
			e.set.LoadAll()
			if err := e.set.Watch(); err != nil {
				t.Fatal(err)
			}
			e.handledBy("good")
			e.write("a.lua", tc.src)
			s := e.set.Script("a.lua")
			bgptest.WaitFor(t, 2*time.Second, func() bool { return s.Stats.Failed.Load() == 1 }, "the failed load")
			if !strings.Contains(e.logs.String(), tc.want) || !strings.Contains(e.logs.String(), "keeping previous version") {
				t.Errorf("log lacks %q and 'keeping previous version':\n%s", tc.want, e.logs.String())
			}
			e.handledBy("good")
		})
	}
}

func TestHandlerErrorsDoNotStopEvents(t *testing.T) {
	e := newScriptEnv(t, engine.Limits{CallTimeout: 100 * time.Millisecond, LoadTimeout: time.Second})
	e.write("a.lua", `local bgp = require("bgp")
function on_best_path(ev)
  if ev.prefix == "192.0.2.0/24" then
    error({code = 1}) -- not even a string
  elseif ev.prefix == "198.51.100.0/24" then
    while true do end
  end
  bgp.set_export_policy("ok", ev.prefix)
end
`)
	if err := e.set.LoadAll(); err != nil {
		t.Fatal(err)
	}
	s := e.set.Script("a.lua")
	e.set.Dispatch(event.Of(&event.BestPath{Prefix: "192.0.2.0/24"}))
	e.set.Dispatch(event.Of(&event.BestPath{Prefix: "198.51.100.0/24"}))
	e.handledBy("ok")
	if s.Stats.Errors.Load() != 1 || s.Stats.CutOffs.Load() != 1 {
		t.Errorf("errors=%d cutoffs=%d, want 1 and 1", s.Stats.Errors.Load(), s.Stats.CutOffs.Load())
	}
	if logs := e.logs.String(); !strings.Contains(logs, "a.lua:6") || !strings.Contains(logs, "cut off after 100ms") {
		t.Errorf("log does not name the looping line a.lua:6 and the cut-off:\n%s", logs)
	}
}

// TestScriptsAreIsolated: one script cannot see or change another's
// globals, bgp.state or module.
func TestScriptsAreIsolated(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("a.lua", `local bgp = require("bgp")
SECRET = "a"; bgp.state.secret = "a"; bgp.injected = "a"; string.upper = function() return "hijacked" end`)
	e.write("b.lua", `local bgp = require("bgp")
function on_best_path(ev)
  bgp.set_export_policy("b", tostring(SECRET) .. tostring(bgp.state.secret) .. tostring(bgp.injected) .. string.upper("x"))
end`)
	e.set.LoadAll()
	e.event()
	e.waitCall("b nilnilnilX")
}

// TestUnloadErrors: an error in on_unload is reported, the new version
// still takes over.
func TestUnloadErrors(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("u.lua", handlerScript("old")+"\nfunction on_unload() error({}) end\n")
	e.set.LoadAll()
	e.set.Watch()
	e.write("u.lua", handlerScript("new"))
	e.handledBy("new")
	if !strings.Contains(e.logs.String(), "on_unload failed") {
		t.Errorf("on_unload error not logged:\n%s", e.logs.String())
	}
}

func TestRunawayRecursion(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("r.lua", `local bgp = require("bgp")
local function f(n) return f(n + 1) + 1 end
function on_best_path(ev)
  if ev.prefix == "192.0.2.0/24" then f(1) end
  bgp.set_export_policy("r", ev.prefix)
end`)
	e.set.LoadAll()
	e.event() // 192.0.2.0/24: recurses
	e.handledBy("r")
	if !strings.Contains(e.logs.String(), "stack overflow") {
		t.Errorf("no stack overflow in the log:\n%s", e.logs.String())
	}
}
