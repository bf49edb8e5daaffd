package host_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

func TestReplayOnLoad(t *testing.T) {
	scripts := t.TempDir()
	d, logs := startDaemonLogs(t, edbgpdConfig(bgptest.FreePort(t), scripts))
	addTable(t, d, 300) // 172.16.0.0/24 .. 172.17.43.0/24
	os.WriteFile(filepath.Join(scripts, "r.lua"), []byte(`local bgp = require("bgp")
bgp.subscribe{covered_by = {"172.16.0.0/16"}, replay = true}
local n, live = 0, 0
function on_best_path(ev)
  if ev.replay then n = n + 1 else live = live + 1 end
end
function on_load() bgp.after(0.3, function() bgp.log("info", "REPLAYED", n, "LIVE", live) end) end
`), 0o644)
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "REPLAYED") }, "the replay report")
	if !strings.Contains(logs.String(), `"REPLAYED 256 LIVE 0"`) {
		t.Errorf("want 256 replayed paths and no live ones:\n%s", logs.String())
	}
}

// TestWalk: bgp.walk visits every best path, a chunk at a time.
func TestWalk(t *testing.T) {
	scripts := t.TempDir()
	d, logs := startDaemonLogs(t, edbgpdConfig(bgptest.FreePort(t), scripts))
	addTable(t, d, 2500)
	os.WriteFile(filepath.Join(scripts, "w.lua"), []byte(`local bgp = require("bgp")
bgp.subscribe{peer_state = false, prefixes = {"192.0.2.0/24"}}
local seen = 0
function on_load()
  assert(bgp.walk{chunk = 1000, fn = function(p)
    seen = seen + 1
    if p.prefix == "" or p.nexthop == nil then error("bad path") end
  end, done = function(n) bgp.log("info", "WALKED", n, seen) end})
end
`), 0o644)
	bgptest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "WALKED") }, "the walk to finish")
	if !strings.Contains(logs.String(), `"WALKED 2501 2501"`) {
		t.Errorf("want 2,501 best paths (table and default route):\n%s", logs.String())
	}
}

// TestWalkDoesNotBlock: the prefix list of a walk is taken in the
// background, so a walk of a big table started from a timer (bound by
// call-timeout) is not cut off, and a bad family is refused at once.
func TestWalkDoesNotBlock(t *testing.T) {
	const table = 20000 // listing it takes longer than the 50ms call-timeout
	scripts := t.TempDir()
	cfg := strings.Replace(edbgpdConfig(bgptest.FreePort(t), scripts), "[edbgpd]\n", "[edbgpd]\n  call-timeout = \"50ms\"\n", 1)
	d, logs := startDaemonLogs(t, cfg)
	addTable(t, d, table)
	os.WriteFile(filepath.Join(scripts, "w.lua"), []byte(`local bgp = require("bgp")
bgp.subscribe{peer_state = false, prefixes = {"192.0.2.0/24"}}
bgp.after(0.01, function()
  bgp.log("info", "BAD FAMILY", bgp.walk{family = "ipv4", fn = print})
  assert(bgp.walk{chunk = 5000, fn = function(p) end, done = function(n) bgp.log("info", "WALKED", n) end})
end)
`), 0o644)
	bgptest.WaitFor(t, 60*time.Second, func() bool { return strings.Contains(logs.String(), "WALKED") }, "the walk to finish")
	for _, want := range []string{fmt.Sprintf(`"WALKED %d"`, table+1), `"BAD FAMILY nil family \"ipv4\"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs.String(), "cut off") {
		t.Errorf("the timer that started the walk was cut off:\n%s", logs.String())
	}
}

// TestSubscribeFamilies: a family GoBGP does not know would match nothing;
// it is refused instead.
func TestSubscribeFamilies(t *testing.T) {
	for _, tc := range []struct {
		families string
		want     string
	}{
		{`{"ipv4-unicast", "ipv6-unicast"}`, "true"},
		{`{"l3vpn-ipv4-unicast"}`, "true"},
		{`{"ipv4"}`, `unknown family "ipv4"`},
		{`{"ipv4-unicast", "ipv6"}`, `unknown family "ipv6"`},
	} {
		t.Run(tc.families, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.lua")
			os.WriteFile(path, []byte(`local bgp = require("bgp")
local ok, why = bgp.subscribe{families = `+tc.families+`}
bgp.set_export_policy("192.0.2.1", tostring(ok or why))
`), 0o644)
			run, err := engine.NewOffline(path, time.Unix(1700000000, 0), engine.OfflineOptions{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			run.Close()
			calls := run.Actions.Calls()
			if len(calls) != 1 || !strings.Contains(calls[0].Args["policy"].(string), tc.want) {
				t.Errorf("calls %v, want a policy with %q", calls, tc.want)
			}
		})
	}
}
