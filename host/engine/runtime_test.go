package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// counter counts best paths in bgp.state and reports the count as
// set_export_policy(tag, n).
func counter(tag, extra string) string {
	return `local bgp = require("bgp")
` + extra + `
function on_best_path(ev)
  bgp.state.n = (bgp.state.n or 0) + 1
  bgp.set_export_policy("` + tag + `", tostring(bgp.state.n))
end
`
}

func (e *scriptEnv) event() {
	e.set.Dispatch(event.Of(&event.BestPath{Prefix: "192.0.2.0/24"}))
}

func (e *scriptEnv) waitCall(call string) {
	e.t.Helper()
	bgptest.WaitFor(e.t, 3*time.Second, func() bool { return e.rec.has(call) }, call)
}

func TestStateSurvivesReload(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("c.lua", counter("v1", ""))
	e.set.LoadAll()
	e.set.Watch()
	e.event()
	e.event()
	e.waitCall("v1 2")
	e.write("c.lua", counter("v2", "-- saved again"))
	bgptest.WaitFor(t, 3*time.Second, func() bool { return e.set.Script("c.lua").Stats.Reloads.Load() == 2 }, "the reload")
	e.event()
	e.waitCall("v2 3")
}

func TestTimers(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("t.lua", `local bgp = require("bgp")
local ticks = 0
function on_load()
  bgp.after(0.05, function() bgp.set_export_policy("after", "fired") end)
  local c = bgp.after(0.05, function() bgp.set_export_policy("cancelled", "fired") end)
  assert(bgp.cancel(c) == true and bgp.cancel(c) == false)
  bgp.every(0.02, function()
    ticks = ticks + 1
    bgp.set_export_policy("every", tostring(ticks))
    if ticks == 2 then error("a failing tick does not stop the timer") end
  end)
end
`)
	e.set.LoadAll()
	e.waitCall("after fired")
	e.waitCall("every 4")
	if e.rec.has("cancelled fired") {
		t.Error("a cancelled timer fired")
	}
	if !strings.Contains(e.logs.String(), "timer callback failed") {
		t.Error("the failing tick was not logged")
	}
	// Replacing the version stops its timers.
	e.set.Watch()
	e.write("t.lua", `-- no timers`)
	bgptest.WaitFor(t, 3*time.Second, func() bool { return e.set.Script("t.lua").Stats.Reloads.Load() == 2 }, "the reload")
	n := e.rec.count()
	time.Sleep(100 * time.Millisecond)
	if got := e.rec.count(); got != n {
		t.Errorf("the old version's timer still fires: %d more calls", got-n)
	}
}

func TestPersistedState(t *testing.T) {
	data := t.TempDir()
	scripts := t.TempDir()
	src := counter("p", "bgp.persist_state(true)")
	os.WriteFile(filepath.Join(scripts, "p.lua"), []byte(src), 0o644)
	run := func(want string) *scriptEnv {
		e := newScriptEnv(t, engine.DefaultLimits)
		e.dir = scripts
		e.set = engine.NewScriptSet(scripts, e.rec, engine.DefaultLimits, testLogger(t))
		e.set.SetDataDir(data)
		e.set.LoadAll()
		e.event()
		e.waitCall(want)
		e.set.Close() // daemon stop: state saved
		return e
	}
	run("p 1")
	run("p 2") // a restart keeps the count

	// A corrupt file is set aside, not fatal.
	os.WriteFile(filepath.Join(data, "p.lua.state.json"), []byte("{not json"), 0o644)
	run("p 1")
	matches, _ := filepath.Glob(filepath.Join(data, "p.lua.state.json.corrupt-*"))
	if len(matches) != 1 {
		t.Errorf("corrupt state file not set aside: %v", matches)
	}
}

// TestKonamiSurvivesReloadMidSequence: konami keeps its history in
// bgp.state, so saving the file in the middle of the code loses nothing.
func TestKonamiSurvivesReloadMidSequence(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	src, err := os.ReadFile("../../scripts/konami.lua")
	if err != nil {
		t.Fatal(err)
	}
	e.write("konami.lua", string(src))
	e.set.LoadAll()
	e.set.Watch()
	peer := event.Peer{Address: "192.0.2.2", ASN: 65002}
	send := func(steps []string) {
		for _, s := range steps {
			ev := &event.BestPath{Prefix: "10.0.0.0/8", Peer: peer, Withdrawal: s == ""}
			if s != "" {
				ev.WithAttributes(event.Attributes{Communities: []string{s}})
			}
			e.set.Dispatch(event.Of(ev))
		}
		e.set.Script("konami.lua").Sync()
	}
	e.set.Dispatch(event.OfPeer(&event.PeerState{Peer: peer, State: "established", OldState: "openconfirm"}))
	send(bgptest.KonamiCode[:6])
	e.write("konami.lua", string(src)+"\n-- saved mid-sequence\n")
	bgptest.WaitFor(t, 3*time.Second, func() bool { return e.set.Script("konami.lua").Stats.Reloads.Load() == 2 }, "the reload")
	send(bgptest.KonamiCode[6:])
	e.set.Dispatch(event.OfPeer(&event.PeerState{Peer: peer, State: "idle", OldState: "established"}))
	e.waitCall("192.0.2.2 full")
}

// TestStopWhileBusy: stopping a script that is busy with a backlog gives
// the running handler its time, runs on_unload, saves the state, and
// returns promptly: queued events are dropped, not worked through.
func TestStopWhileBusy(t *testing.T) {
	data := t.TempDir()
	limits := engine.DefaultLimits
	limits.CallTimeout = 300 * time.Millisecond
	e := newScriptEnv(t, limits)
	e.set.SetDataDir(data)
	e.write("busy.lua", `local bgp = require("bgp")
bgp.persist_state(true)
function on_best_path(ev)
  bgp.state.n = (bgp.state.n or 0) + 1
  local t = os.clock() + 0.05
  while os.clock() < t do end -- 50 ms of work per event
end
function on_unload() bgp.set_export_policy("unload", tostring(bgp.state.n)) end
`)
	e.set.LoadAll()
	e.event()
	time.Sleep(10 * time.Millisecond) // the first event is being handled
	for i := 0; i < 1000; i++ {
		e.event()
	}
	time.Sleep(30 * time.Millisecond)
	if s := e.set.Script("busy.lua"); s.Queued() < 900 || s.QueueAge() < 20*time.Millisecond {
		t.Errorf("backlog %d, oldest %v: want the 1000 waiting and their age", s.Queued(), s.QueueAge())
	}
	start := time.Now()
	e.set.Close()
	if d := time.Since(start); d > limits.CallTimeout+500*time.Millisecond {
		t.Errorf("stopping took %v with a backlog", d)
	}
	if e.rec.count() != 1 || !strings.HasPrefix(e.rec.calls[0], "unload ") {
		t.Errorf("on_unload: %v", e.rec.calls)
	}
	b, err := os.ReadFile(filepath.Join(data, "busy.lua.state.json"))
	if err != nil || !strings.Contains(string(b), `"n":`) {
		t.Errorf("state not saved: %s %v", b, err)
	}
	if !strings.Contains(e.logs.String(), "events still queued") {
		t.Errorf("dropped backlog not logged:\n%s", e.logs.String())
	}
}

// TestUnboundedGrowth: a script that keeps everything forever is stopped
// at its bound instead of eating the daemon's memory.
func TestUnboundedGrowth(t *testing.T) {
	limits := engine.DefaultLimits
	limits.MaxEntries = 200_000
	e := newScriptEnv(t, limits)
	e.write("hog.lua", `local keep = {}
function on_best_path(ev)
  for i = 1, 50000 do keep[#keep + 1] = ev.prefix .. i end
end`)
	e.set.LoadAll()
	s := e.set.Script("hog.lua")
	bgptest.WaitFor(t, 20*time.Second, func() bool {
		e.event()
		s.Sync()
		return s.Stats.Quarantines.Load() == 1
	}, "the hog to be quarantined")
	if s.Version() != "" || !strings.Contains(e.logs.String(), "more Lua table entries than allowed") {
		t.Errorf("version %q; log:\n%s", s.Version(), e.logs.String())
	}
}

// TestQuarantine: a script failing on every event is unloaded after
// quarantine-after failures in a row and stays out, SIGHUP (a rescan of
// the folder) included, until its file is saved again.
func TestQuarantine(t *testing.T) {
	limits := engine.DefaultLimits
	limits.QuarantineAfter = 3
	e := newScriptEnv(t, limits)
	src := `local bgp = require("bgp")
function on_best_path(ev) error("broken on " .. ev.prefix) end
function on_unload() bgp.set_export_policy("unloaded", "x") end
`
	e.write("bad.lua", src)
	e.set.LoadAll()
	if err := e.set.Watch(); err != nil {
		t.Fatal(err)
	}
	s := e.set.Script("bad.lua")
	for i := 0; i < 3; i++ {
		e.event()
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { return s.Stats.Quarantines.Load() == 1 }, "the quarantine")
	e.waitCall("unloaded x")
	if s.Version() != "" || s.Stats.Errors.Load() != 3 || !strings.Contains(e.logs.String(), "SCRIPT QUARANTINED") {
		t.Fatalf("version %q, errors %d; log:\n%s", s.Version(), s.Stats.Errors.Load(), e.logs.String())
	}
	e.event()
	s.Sync()
	if s.Stats.Errors.Load() != 3 {
		t.Errorf("a quarantined script got an event")
	}
	e.set.LoadAll() // what SIGHUP does
	if s.Version() != "" {
		t.Fatal("a rescan of the folder loaded the quarantined script again")
	}
	e.write("bad.lua", src) // saved, unchanged: the operator asks again
	bgptest.WaitFor(t, 5*time.Second, func() bool { return s.Version() != "" }, "the saved script to load")
}

// TestQuarantineCountsEveryCall: timers and callbacks fail in a row as
// handlers do, and in turn with them: quarantine-after counts them all.
func TestQuarantineCountsEveryCall(t *testing.T) {
	limits := engine.DefaultLimits
	limits.QuarantineAfter = 4
	for _, tc := range []struct{ name, src string }{{
		name: "a timer failing forever",
		src: `local bgp = require("bgp")
local T = {}
bgp.every(0.02, function() T[#T + 1] = string.rep("x", 2^27) .. #T end)
`,
	}, {
		name: "a timer and a handler failing in turn",
		src: `local bgp = require("bgp")
local n = 0
function on_best_path(ev) error("handler " .. n) end
bgp.every(0.02, function() n = n + 1; error("tick " .. n) end)
`,
	}, {
		name: "a callback failing",
		src: `local bgp = require("bgp")
for i = 1, 10 do bgp.exec("/bin/true", nil, function(r) error("callback " .. i) end) end
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newScriptEnv(t, limits)
			e.write("bad.lua", tc.src)
			e.set.LoadAll()
			s := e.set.Script("bad.lua")
			bgptest.WaitFor(t, 10*time.Second, func() bool {
				e.event()
				return s.Stats.Quarantines.Load() == 1
			}, "the quarantine")
			if s.Version() != "" || s.Stats.Errors.Load() != 4 || !strings.Contains(e.logs.String(), "SCRIPT QUARANTINED: 4 calls in a row failed") {
				t.Fatalf("version %q; log:\n%s", s.Version(), e.logs.String())
			}
		})
	}
	// A success in between starts the count again.
	e := newScriptEnv(t, limits)
	e.write("flaky.lua", `local bgp = require("bgp")
local n = 0
bgp.every(0.01, function()
  n = n + 1
  if n % 3 ~= 0 then error("tick " .. n) end
  if n == 30 then bgp.set_export_policy("ticks", "30") end
end)
`)
	e.set.LoadAll()
	e.waitCall("ticks 30")
	if s := e.set.Script("flaky.lua"); s.Stats.Quarantines.Load() != 0 || s.Stats.Errors.Load() < 19 {
		t.Fatalf("quarantines %d, errors %d", s.Stats.Quarantines.Load(), s.Stats.Errors.Load())
	}
}

// TestTimerCap: a script may have 10,000 timers; the next is refused
// with nil, reason.
func TestTimerCap(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("timers.lua", `local bgp = require("bgp")
function on_load()
  for i = 1, 10001 do
    local ok, why = bgp.after(3600, function() end)
    if not ok then bgp.set_export_policy("192.0.2.1", why .. " at " .. i) return end
  end
end`)
	e.set.LoadAll()
	e.waitCall("192.0.2.1 10000 timers already running (the most a script may have) at 10001")
}

// TestMemoryCutBlamesTheRunaway: while one script's call allocates
// without end, another script's calls overlap it; only the runaway is
// cut and quarantined, though the process's allocations count for both.
func TestMemoryCutBlamesTheRunaway(t *testing.T) {
	limits := engine.DefaultLimits
	limits.MaxMemory = 64 << 20
	limits.CallTimeout = 10 * time.Second
	e := newScriptEnv(t, limits)
	// A table's array grows by doubling, in large objects no string
	// builder sees.
	e.write("a.lua", `function on_best_path(ev)
  local t = {}
  for i = 1, 1e9 do t[i] = i end
end`)
	e.write("b.lua", `function on_best_path(ev)
  local x = 0
  for i = 1, 3e4 do x = x + i end
end`)
	e.set.LoadAll()
	a, b := e.set.Script("a.lua"), e.set.Script("b.lua")
	bgptest.WaitFor(t, 60*time.Second, func() bool {
		e.event() // b keeps handling events while a allocates
		return a.Stats.Quarantines.Load() == 1
	}, "the runaway quarantined")
	b.Sync()
	if b.Stats.Quarantines.Load() != 0 || b.Version() == "" {
		t.Fatalf("the bystander was quarantined:\n%s", e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "allocated in large objects") {
		t.Errorf("the runaway was not cut for memory:\n%s", e.logs.String())
	}
}
