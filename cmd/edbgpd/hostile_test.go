package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// hostile is the edbgpd binary with a router peer whose hold time is
// 9 s and a witness script that logs every best path: what a hostile
// script must not disturb.
type hostile struct {
	t        *testing.T
	cmd      *exec.Cmd
	logs     *bgptest.Buffer
	exited   chan error
	router   *bgptest.Router
	notes    *bgptest.Notes
	scripts  string
	config   string
	metrics  string
	up       time.Time
	prefixes int
}

const witness = `local bgp = require("bgp")
function on_best_path(ev) bgp.log("info", "WITNESS " .. ev.prefix) end
`

// startHostile starts the daemon with options added to [edbgpd] and the
// files in its scripts folder, and waits for the session.
func startHostile(t *testing.T, options string, files map[string]string) *hostile {
	dir := t.TempDir()
	h := &hostile{t: t, logs: &bgptest.Buffer{}, exited: make(chan error, 1), notes: &bgptest.Notes{},
		scripts: filepath.Join(dir, "scripts"), config: filepath.Join(dir, "edbgpd.toml")}
	os.Mkdir(h.scripts, 0o755)
	files["witness.lua"] = witness
	for name, src := range files {
		h.save(name, src)
	}
	port := bgptest.FreePort(t)
	h.metrics = fmt.Sprintf("127.0.0.1:%d", bgptest.FreePort(t))
	options = strings.ReplaceAll(options, "{tmp}", dir)
	cfg := strings.Replace(bgptest.Config(port, h.scripts, "127.0.0.2"), "[edbgpd]\n", "[edbgpd]\n"+options, 1)
	os.WriteFile(h.config, []byte(cfg), 0o644)
	h.router = bgptest.NewRouter(t, 65002, "127.0.0.2", h.notes)
	h.router.HoldTime = 9
	// Under a 6 GB address-space limit, as a container or a unit's
	// memory bound would set: a runaway allocation there kills the
	// process instead of swapping.
	h.cmd = exec.Command("/bin/sh", "-c", `ulimit -v 6291456 && exec "$0" "$@"`,
		binary, "-f", h.config, "--api-hosts", "", "--metrics-addr", h.metrics)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.exited <- h.cmd.Wait() }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	h.router.Connect(port)
	h.router.WaitEstablished()
	h.up = h.router.Uptime()
	return h
}

func (h *hostile) save(name, src string) {
	if err := os.WriteFile(filepath.Join(h.scripts, name), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// waitLog waits for a log line holding every one of parts.
func (h *hostile) waitLog(timeout time.Duration, parts ...string) {
	h.t.Helper()
	bgptest.WaitFor(h.t, timeout, func() bool {
		for _, l := range strings.Split(h.logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				return true
			}
		}
		return false
	}, fmt.Sprintf("a log line with %q", parts))
}

// announce sends one more prefix from the router.
func (h *hostile) announce() string {
	h.prefixes++
	p := fmt.Sprintf("198.18.%d.0/24", h.prefixes)
	h.router.Announce(p)
	return p
}

// alive checks what no script may take away: the process runs, the
// session has stayed up since it started (no NOTIFICATION, same
// uptime), and the other script still gets events.
func (h *hostile) alive() {
	h.t.Helper()
	select {
	case err := <-h.exited:
		h.t.Fatalf("edbgpd exited: %v", err)
	default:
	}
	p := h.announce()
	h.waitLog(10*time.Second, "WITNESS "+p)
	if st := h.router.State(); st != "ESTABLISHED" || !h.router.Uptime().Equal(h.up) || h.notes.Count() != 0 {
		h.t.Fatalf("session %s, up since %v (was %v), %d notifications", st, h.router.Uptime(), h.up, h.notes.Count())
	}
}

// stop sends SIGTERM: the daemon exits 0 within its bound and the router
// gets a Cease, whatever the scripts are doing.
func (h *hostile) stop() {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.exited:
		if err != nil {
			h.t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Fatal("no exit 15 s after SIGTERM")
	}
	bgptest.WaitFor(h.t, 5*time.Second, func() bool { return h.notes.Received("6/3") }, "Cease at the router")
}

// status is the script's entry in /status.
func (h *hostile) status(name string) map[string]any {
	resp, err := http.Get("http://" + h.metrics + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Scripts []map[string]any `json:"scripts"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	for _, s := range st.Scripts {
		if s["name"] == name {
			return s
		}
	}
	return nil
}

// peakRSS is the daemon's peak resident memory (VmHWM), in bytes.
func (h *hostile) peakRSS() int64 { return h.procStatus("VmHWM:") }

// rss is the daemon's resident memory now (VmRSS), in bytes.
func (h *hostile) rss() int64 { return h.procStatus("VmRSS:") }

func (h *hostile) procStatus(key string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == key {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// memoryBound checks what a memory case must leave: the peak under the
// 256 MiB bound plus margin over the daemon's baseline, and the resident
// memory back near that baseline once the script is gone.
func (h *hostile) memoryBound(base int64) {
	h.t.Helper()
	const bound, margin = 256 << 20, 1 << 30
	peak := h.peakRSS()
	h.t.Logf("RSS: baseline %d MiB, peak %d MiB", base>>20, peak>>20)
	if peak > base+bound+margin {
		h.t.Errorf("peak RSS %d MiB: past the baseline %d MiB + the 256 MiB bound + %d MiB", peak>>20, base>>20, margin>>20)
	}
	bgptest.WaitFor(h.t, 30*time.Second, func() bool { return h.rss() < base+128<<20 }, fmt.Sprintf("RSS back near its baseline of %d MiB", base>>20))
}

// TestHostileScripts: what a hostile script author tried against the
// daemon's process, one case per attack. In each the daemon lives on,
// its session (hold time 9 s) stays up, the witness script keeps getting
// events, the log names the offending file and line, and SIGTERM still
// ends it cleanly with a Cease.
func TestHostileScripts(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "escaped")
	for _, tc := range []struct {
		name    string
		options string
		files   map[string]string
		run     func(h *hostile)
	}{{
		// The full os library stayed in package.loaded.
		name: "sandbox escape",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local tries = {
  function() require("os").execute("touch ` + marker + `") end,
  function() package.loaded.os.execute("touch ` + marker + `") end,
  function() loadstring('module("os"); return execute')()("touch ` + marker + `") end,
  function() require("io").open("` + marker + `", "w") end,
}
local failed = 0
for _, f in ipairs(tries) do if not pcall(f) then failed = failed + 1 end end
bgp.log("info", "ESCAPES FAILED " .. failed)
`},
		run: func(h *hostile) {
			h.waitLog(10*time.Second, "ESCAPES FAILED 4")
			if _, err := os.Stat(marker); err == nil {
				h.t.Fatal("a script ran a shell command")
			}
		},
	}, {
		// Strings were outside the memory bound: one 128 MiB string every
		// 0.2 s ended in "fatal error: out of memory". Now each `..` is
		// checked against the budget before it builds.
		name:    "strings past the memory bound",
		options: "  max-memory = \"256MiB\"\n",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local s, keep = ("x"):rep(2^24), {}
bgp.every(0.2, function()
  keep[#keep + 1] = s .. s .. #keep
end)
`},
		run: func(h *hostile) {
			h.waitLog(30*time.Second, "SCRIPT QUARANTINED", "hostile.lua:4: '..': 32 MiB more would pass max-memory (256 MiB", "hostile.lua:3")
			peak := h.peakRSS()
			h.t.Logf("peak RSS %d MiB", peak>>20)
			if peak > 2<<30 {
				h.t.Errorf("peak RSS %d MiB, over the 256 MiB bound plus 1.75 GiB of margin", peak>>20)
			}
		},
	}, {
		// The compiler recursed on Go's stack: "goroutine stack exceeds
		// 1000000000-byte limit".
		name: "loadstring nested a million deep",
		files: map[string]string{"hostile.lua": `function on_best_path(ev)
  local f, err = loadstring("return " .. ("{"):rep(1e6) .. "1" .. ("}"):rep(1e6))
  error(err)
end
`},
		run: func(h *hostile) {
			h.announce()
			h.waitLog(20*time.Second, "handler failed", "hostile.lua:3", "nested deeper than 200 levels")
		},
	}, {
		// The same as a 2 MB file in the folder: the daemon crashed at
		// every start while the file was there.
		name:  "script file nested a million deep",
		files: map[string]string{"hostile.lua": "X = " + strings.Repeat("{", 1e6) + "1" + strings.Repeat("}", 1e6) + "\n"},
		run: func(h *hostile) {
			h.waitLog(10*time.Second, "hostile.lua:1: nested deeper than 200 levels")
			h.save("hostile.lua", "\n"+strings.Repeat("(", 1e6)+"\n")
			h.waitLog(10*time.Second, "script not loaded", "hostile.lua:2: nested deeper than 200 levels")
		},
	}, {
		// The memory check walked tables recursively: a chain 4e6 deep
		// overflowed Go's stack. The chain lives in a timer's upvalue,
		// where only the timer holds it.
		name: "a table chain four million deep",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local chain, n = {}, 0
bgp.every(0.05, function()
  if n >= 4e6 then return end
  for i = 1, 2e5 do chain = {chain} end
  n = n + 2e5
  if n >= 4e6 then bgp.log("info", "CHAIN BUILT") end
end)
`},
		run: func(h *hostile) {
			h.waitLog(60*time.Second, "CHAIN BUILT")
			bgptest.WaitFor(h.t, 60*time.Second, func() bool {
				st := h.status("hostile.lua")
				n, _ := st["held_entries"].(float64)
				return n >= 4e6
			}, "a memory check that counted the whole chain")
		},
	}, {
		// bgp.state holding a small DAG: reload's copy, persistence and
		// json_encode walked it exponentially, out of memory.
		name:    "a shared-table DAG in bgp.state",
		options: "  data = \"{tmp}\"\n",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
bgp.persist_state(true)
local t = {}
for i = 1, 40 do t = {a = t, b = t} end
bgp.state.dag = t
local ok, why = bgp.json_encode(bgp.state)
bgp.log("info", "ENCODED " .. tostring(ok) .. " " .. tostring(why))
function on_best_path(ev) end
`},
		run: func(h *hostile) {
			h.waitLog(10*time.Second, "ENCODED nil", "more than")
			h.announce() // a handler call: bgp.state is saved after it
			h.waitLog(10*time.Second, "cannot save script state", "more than")
			// A save of the file copies bgp.state into the new version.
			src, _ := os.ReadFile(filepath.Join(h.scripts, "hostile.lua"))
			h.save("hostile.lua", string(src)+"-- saved again\n")
			h.waitLog(10*time.Second, "script loaded", "hostile.lua", "replaced=true")
		},
	}, {
		// Issue 19: a `..` doubling to 4 GiB in on_load killed the
		// daemon ("cannot allocate 2147483648-byte block") before the
		// watchdog could cut it: the join is refused before it is built.
		name: "a concat doubling to 4 GiB",
		files: map[string]string{"hostile.lua": `function on_load()
  local s = string.rep("x", 2^20)
  for i = 1, 12 do s = s .. s end
end
`},
		run: func(h *hostile) {
			base := h.rss()
			h.waitLog(30*time.Second, "script not loaded", "hostile.lua:3: '..': result of 134217728 bytes or more is over the 64 MiB a string may have")
			h.memoryBound(base)
			// The same in a handler: the call fails, the script goes on.
			h.save("hostile.lua", `local bgp = require("bgp")
function on_best_path(ev)
  local s = string.rep("x", 2^20)
  for i = 1, 12 do s = s .. s end
end
bgp.every(0.1, function() bgp.log("info", "STILL " .. "HERE") end)
`)
			h.waitLog(10*time.Second, "STILL HERE")
			h.announce()
			h.waitLog(30*time.Second, "handler failed", "hostile.lua:4: '..': result of 134217728 bytes")
		},
	}, {
		// Issue 19: a timer failing on every call was never quarantined
		// (109 failures in a row in 22 s, forever).
		name: "a timer failing forever",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local T = {}
bgp.every(0.2, function() T[#T + 1] = string.rep("x", 2^27) .. #T end)
`},
		run: func(h *hostile) {
			h.waitLog(30*time.Second, "SCRIPT QUARANTINED: 20 calls in a row failed", "hostile.lua:3", "string.rep")
		},
	}, {
		// Issue 13: a table filled in one long call.
		name:    "a table filled in one call",
		options: "  max-memory = \"256MiB\"\n  call-timeout = \"10s\"\n",
		files: map[string]string{"hostile.lua": `function on_best_path(ev)
  local t = {}
  for i = 1, 1e9 do t[i] = {i} end
end
`},
		run: func(h *hostile) {
			base := h.rss()
			h.announce()
			h.waitLog(30*time.Second, "SCRIPT QUARANTINED", "max-memory", "hostile.lua:3")
			h.memoryBound(base)
		},
	}, {
		// Issue 13: string builders keep big strings across calls; each
		// is refused the moment it would pass the bound.
		name:    "string builders past the bound",
		options: "  max-memory = \"256MiB\"\n",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local keep = {}
bgp.every(0.05, function()
  keep[#keep + 1] = ("y"):rep(2^25)
end)
`},
		run: func(h *hostile) {
			base := h.rss()
			h.waitLog(30*time.Second, "SCRIPT QUARANTINED", "string.rep", "would pass max-memory (256 MiB", "hostile.lua:4")
			h.memoryBound(base)
		},
	}, {
		// Issue 13: recursion without end.
		name: "endless recursion",
		files: map[string]string{"hostile.lua": `local function f(n) return f(n + 1) + 1 end
function on_best_path(ev) f(1) end
`},
		run: func(h *hostile) {
			h.announce()
			h.waitLog(10*time.Second, "handler failed", "hostile.lua:1", "stack overflow")
		},
	}, {
		// Issue 13: a timer at 1 ms runs at the 10 ms floor, and the
		// script spends its time alone.
		name: "a 1 ms timer",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local fires = 0
bgp.every(0.001, function()
  fires = fires + 1
  local x = 0
  for i = 1, 2e5 do x = x + i end
  if fires == 200 then bgp.log("info", "FIRED 200") end
end)
`},
		run: func(h *hostile) {
			h.waitLog(30*time.Second, "FIRED 200")
		},
	}, {
		// Issue 13: a loop of 100,000 announcements stops at the most a
		// script may have; peers never get the flood.
		name: "100,000 announcements",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
function on_load()
  local refused
  for i = 0, 99999 do
    local ok, why = bgp.announce{prefix = string.format("100.%d.%d.0/24", 64 + math.floor(i / 256), i % 256)}
    if not ok then refused = why break end
  end
  bgp.log("info", "REFUSED", refused)
end
`},
		run: func(h *hostile) {
			h.waitLog(60*time.Second, "REFUSED", "10000 routes announced, the most it may have (max-routes 10000)")
			bgptest.WaitFor(h.t, 30*time.Second, func() bool { return len(h.router.Received()) == 10001 }, "the 10,000 routes and the default at the router")
		},
	}, {
		// Issue 19: the 10,000 routes a script were fixed. max-routes
		// bounds every script, a grant lifts it for one, a SIGHUP changes
		// both, and a bound lowered below what a script has takes none
		// of its routes away.
		name:    "max-routes and a grant",
		options: "  max-routes = 300\n",
		files: map[string]string{
			"small.lua": `local bgp = require("bgp")
function on_load()
  for i = 0, 399 do
    local ok, why = bgp.announce{prefix = string.format("100.64.%d.%d/32", math.floor(i / 256), i % 256)}
    if not ok then bgp.log("info", "SMALL REFUSED " .. why) return end
  end
end
`,
			"big.lua": `local bgp = require("bgp")
local n, done = 0, false
bgp.every(0.05, function()
  while n < 1500 do
    if not bgp.announce{prefix = string.format("100.80.%d.%d/32", math.floor(n / 256), n % 256)} then return end
    n = n + 1
  end
  if not done then done = true bgp.log("info", "BIG DONE") end
end)
`},
		run: func(h *hostile) {
			h.waitLog(20*time.Second, "SMALL REFUSED small.lua has 300 routes announced, the most it may have (max-routes 300)")
			received := func(n int) func() bool { return func() bool { return len(h.router.Received()) == n } }
			bgptest.WaitFor(h.t, 30*time.Second, received(1+300+300), "300 routes of each script and the default")
			cfg, _ := os.ReadFile(h.config)
			grant := "\n[edbgpd.grants.\"big.lua\"]\n  max-routes = -1\n"
			os.WriteFile(h.config, append(cfg, grant...), 0o644)
			h.cmd.Process.Signal(syscall.SIGHUP)
			h.waitLog(30*time.Second, "BIG DONE")
			bgptest.WaitFor(h.t, 30*time.Second, received(1+300+1500), fmt.Sprintf("the big script's 1,500 routes (%d routes at the router)", len(h.router.Received())))
			lowered := strings.Replace(string(cfg), "max-routes = 300", "max-routes = 100", 1) + grant
			os.WriteFile(h.config, []byte(lowered), 0o644)
			h.cmd.Process.Signal(syscall.SIGHUP)
			h.waitLog(10*time.Second, "config reloaded")
			h.alive()
			if n := len(h.router.Received()); n != 1+300+1500 {
				h.t.Fatalf("the router has %d routes after max-routes went down, want %d", n, 1+300+1500)
			}
		},
	}, {
		// A backtracking string.find ran for minutes inside Go: never cut
		// off, a fixed version never loaded, SIGTERM hung with no Cease.
		name:    "a backtracking pattern",
		options: "  quarantine-after = -1\n",
		files: map[string]string{"hostile.lua": `local s = ("a"):rep(1e5)
function on_best_path(ev) string.find(s, ".-.-.-.-b") end
`},
		run: func(h *hostile) {
			for range 3 {
				h.announce()
			}
			h.waitLog(20*time.Second, "cut off", "hostile.lua:2")
			h.save("hostile.lua", "function on_best_path(ev) end\n")
			h.waitLog(10*time.Second, "script loaded", "hostile.lua", "replaced=true")
			h.alive()
			// Hostile again, busy on a backlog when SIGTERM comes.
			h.save("hostile.lua", "local s = (\"a\"):rep(1e5)\nfunction on_best_path(ev) string.find(s, \".-.-.-.-b\") end\nrequire(\"bgp\").log(\"info\", \"HOSTILE AGAIN\")\n")
			h.waitLog(10*time.Second, "HOSTILE AGAIN")
			for range 5 {
				h.announce()
			}
			bgptest.WaitFor(h.t, 10*time.Second, func() bool {
				q, _ := h.status("hostile.lua")["queued"].(float64)
				return q > 0
			}, "a backlog at the hostile script")
		},
	}, {
		// The entry count ran only after handler calls: a script growing
		// on a timer was never checked (28M entries, 2.8 GiB).
		name:    "growth on a timer alone",
		options: "  max-table-entries = 2000000\n",
		files: map[string]string{"hostile.lua": `local bgp = require("bgp")
local keep = {}
bgp.every(0.1, function()
  for i = 1, 2e5 do keep[#keep + 1] = i end
end)
`},
		run: func(h *hostile) {
			h.waitLog(30*time.Second, "SCRIPT QUARANTINED", "max-table-entries 2000000", "hostile.lua:3")
		},
	}, {
		// An empty (cut-short) file was applied on SIGHUP, deleting every
		// neighbour; a TOML error gave no line.
		name:  "an empty config on SIGHUP",
		files: map[string]string{},
		run: func(h *hostile) {
			good, _ := os.ReadFile(h.config)
			os.WriteFile(h.config, nil, 0o644)
			h.cmd.Process.Signal(syscall.SIGHUP)
			h.waitLog(5*time.Second, "config not reloaded", "no global section")
			h.alive()
			os.WriteFile(h.config, []byte(strings.Replace(string(good), `router-id = "127.0.0.1"`, "router-id = \"127.0.0.1\n", 1)), 0o644)
			h.cmd.Process.Signal(syscall.SIGHUP)
			h.waitLog(5*time.Second, "config not reloaded", "line 3 column")
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHostile(t, tc.options, tc.files)
			tc.run(h)
			h.alive()
			h.stop()
		})
	}
}
