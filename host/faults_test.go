package host_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// peerLogger logs every peer state change and counts withdrawals.
const peerLogger = `local bgp = require("bgp")
local withdrawn = 0
function on_peer_state(ev) bgp.log("info", "STATE", ev.peer.address, tostring(ev.old_state), ev.state) end
function on_best_path(ev)
  if ev.withdrawal and ev.peer.address == "127.0.0.3" then
    withdrawn = withdrawn + 1
    if withdrawn % 500 == 0 then bgp.log("info", "WITHDRAWN", withdrawn) end
  end
end
`

// TestPeerFlaps: every state change of a flapping peer reaches scripts in
// order, konami keeps it on default-only, and nothing leaks. Three flaps
// here (GoBGP waits 5 s before it takes a flapped peer back);
// EDBGPD_SOAK=1 makes it fifty.
func TestPeerFlaps(t *testing.T) {
	flaps := 3
	if os.Getenv("EDBGPD_SOAK") != "" {
		flaps = 50
	}
	scripts := t.TempDir()
	installKonami(t, scripts)
	os.WriteFile(filepath.Join(scripts, "states.lua"), []byte(peerLogger), 0o644)
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d, logs := startDaemonLogs(t, edbgpdConfig(port, scripts, "127.0.0.2"))
	addTable(t, d, 50)
	r.Connect(port)
	r.WaitEstablished()
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 0; i < flaps; i++ {
		resetAndWait(t, r)
	}
	expectDefaultOnly(t, r)
	// In order: each session ends (established -> idle) before the next
	// one comes up (openconfirm -> established).
	var seq []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if i := strings.Index(l, "STATE 127.0.0.2 "); i >= 0 {
			f := strings.Fields(strings.Trim(l[i:], `"`))
			seq = append(seq, f[2]+">"+strings.TrimSuffix(f[3], `"`))
		}
	}
	ups, downs := 0, 0
	for _, s := range seq {
		switch s {
		case "openconfirm>established":
			if ups != downs {
				t.Fatalf("two ups in a row: %v", seq)
			}
			ups++
		case "established>idle":
			if downs != ups-1 {
				t.Fatalf("a down without an up: %v", seq)
			}
			downs++
		}
	}
	if ups != flaps+1 || downs != flaps {
		t.Errorf("%d ups and %d downs, want %d and %d: %v", ups, downs, flaps+1, flaps, seq)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { runtime.GC(); return runtime.NumGoroutine() <= before+3 },
		fmt.Sprintf("goroutines back to about %d", before))
}

// TestFullTableDrop: a peer sends a table and drops; every withdrawal
// reaches the scripts and the other peers lose the routes.
func TestFullTableDrop(t *testing.T) {
	const table = 2000
	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "states.lua"), []byte(peerLogger), 0o644)
	port := bgptest.FreePort(t)
	customer := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	upstream := bgptest.NewRouter(t, 65003, "127.0.0.3", bgptest.Quiet{})
	_, logs := startDaemonLogs(t, edbgpdConfig(port, scripts, "127.0.0.2", "127.0.0.3"))
	customer.Connect(port)
	upstream.Connect(port)
	customer.WaitEstablished()
	upstream.WaitEstablished()
	for i := 0; i < table; i++ {
		upstream.Announce(fmt.Sprintf("198.18.%d.%d/32", i/256, i%256))
	}
	expectExactly(t, customer, table+1)
	upstream.Stop() // the peer drops
	bgptest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "WITHDRAWN "+strconv.Itoa(table)) },
		"all withdrawals at the script")
	bgptest.WaitFor(t, 10*time.Second, func() bool { return len(customer.Received()) == 1 }, "the customer to lose the dropped routes")
}

// TestDaemonRestart: edbgpd restarted under a running router: the session
// comes back, scripts load again, persisted state is restored.
func TestDaemonRestart(t *testing.T) {
	scripts, data := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(scripts, "count.lua"), []byte(`local bgp = require("bgp")
bgp.persist_state(true)
function on_peer_state(ev)
  if ev.state == "established" then
    bgp.state.ups = (bgp.state.ups or 0) + 1
    bgp.log("info", "UPS", bgp.state.ups)
  end
end
`), 0o644)
	port := bgptest.FreePort(t)
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	cfg := strings.Replace(edbgpdConfig(port, scripts, "127.0.0.2"), "[edbgpd]\n", "[edbgpd]\n  data = \""+data+"\"\n", 1)
	os.WriteFile(path, []byte(cfg), 0o644)
	start := func(logs *bgptest.Buffer) *host.Daemon {
		d, err := host.Start(host.Settings{ConfigFile: path, Logger: slogTo(logs)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	logs1 := &bgptest.Buffer{}
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d1 := start(logs1)
	r.Connect(port)
	r.WaitEstablished()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs1.String(), `"UPS 1"`) }, "the first session counted")
	d1.Stop()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" && len(r.Received()) == 0 }, "the session to close")
	// The second daemon's StartBgp writes GoBGP's package globals: the
	// router must be idle by now (see bgptest.NewRouter).
	logs2 := &bgptest.Buffer{}
	d2 := start(logs2)
	t.Cleanup(d2.Stop)
	r.WaitEstablished()
	bgptest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs2.String(), `"UPS 2"`) }, "the count to carry over the restart")
	expectExactly(t, r, 1)
}
