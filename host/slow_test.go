package host_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
	"github.com/edbgpd/edbgpd/luaapi"
)

const slowScript = `local bgp = require("bgp")
local final, events, coalesced = {}, 0, 0
function on_best_path(ev)
  events = events + 1
  if ev.coalesced then coalesced = coalesced + 1 end
  local t = os.clock() + 0.002
  while os.clock() < t do end
  final[ev.prefix] = ev.communities[1]
  if ev.prefix == "192.0.2.254/32" then
    local last = 0
    for _, c in pairs(final) do if c == "65000:3" then last = last + 1 end end
    bgp.log("info", "SLOW events=" .. events .. " coalesced=" .. coalesced .. " last=" .. last)
  end
end
`

const fastScript = `local bgp = require("bgp")
local events = 0
function on_best_path(ev)
  events = events + 1
  if ev.prefix == "192.0.2.254/32" then
    bgp.log("info", "FAST events=" .. events .. " coalesced=" .. tostring(ev.coalesced))
  end
end
`

// TestSlowScriptHoldsBackNoOne: a script far behind gets its best paths
// coalesced per prefix, ends with the latest state of every prefix, and
// the script next to it sees every event without waiting for it.
func TestSlowScriptHoldsBackNoOne(t *testing.T) {
	const table, rounds = 1000, 3
	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "fast.lua"), []byte(fastScript), 0o644)
	os.WriteFile(filepath.Join(scripts, "slow.lua"), []byte(slowScript), 0o644)
	cfg := strings.Replace(edbgpdConfig(bgptest.FreePort(t), scripts), "[edbgpd]\n", "[edbgpd]\n  queue-limit = 50\n", 1)
	d, logs := startDaemonLogs(t, cfg)
	for round := 1; round <= rounds; round++ {
		for i := range table {
			p := luaapi.Route{Prefix: fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), Nexthop: "127.0.0.1", Communities: []string{fmt.Sprint("65000:", round)}}
			if err := d.Speaker().Announce("test", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	sentinel := luaapi.Route{Prefix: "192.0.2.254/32", Nexthop: "127.0.0.1", Communities: []string{"65000:3"}}
	if err := d.Speaker().Announce("test", sentinel); err != nil {
		t.Fatal(err)
	}

	bgptest.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(logs.String(), "FAST events=") }, "the fast script to see the sentinel")
	if strings.Contains(logs.String(), "SLOW events=") {
		t.Fatal("the slow script finished first: the fast one was held back")
	}
	// The default route from config plus every state of every prefix.
	if want := fmt.Sprintf("FAST events=%d coalesced=nil", 1+table*rounds+1); !strings.Contains(logs.String(), want) {
		t.Errorf("fast script: want %q in\n%s", want, logs)
	}
	bgptest.WaitFor(t, 60*time.Second, func() bool { return strings.Contains(logs.String(), "SLOW events=") }, "the slow script to catch up")
	m := regexp.MustCompile(`SLOW events=(\d+) coalesced=(\d+) last=(\d+)`).FindStringSubmatch(logs.String())
	events, _ := strconv.Atoi(m[1])
	coalesced, _ := strconv.Atoi(m[2])
	last, _ := strconv.Atoi(m[3])
	if last != table+1 {
		t.Errorf("slow script has the last state of %d prefixes, want %d", last, table+1)
	}
	if coalesced == 0 || events >= 1+table*rounds+1 {
		t.Errorf("slow script saw %d events, %d coalesced: nothing was coalesced", events, coalesced)
	}
}
