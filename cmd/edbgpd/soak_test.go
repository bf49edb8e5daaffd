package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// hostileKinds are the soak's hostile scripts, one of each kind the
// failure modes list, with what the log says when edbgpd stops it.
var hostileKinds = []struct{ name, src, stopped string }{
	{"concat", "function on_best_path(ev)\n  local s = (\"x\"):rep(2^20)\n  for i = 1, 14 do s = s .. s end\nend\n", "SCRIPT QUARANTINED"},
	{"fill", "function on_best_path(ev)\n  local t = {}\n  for i = 1, 1e9 do t[i] = {i} end\nend\n", "SCRIPT QUARANTINED"},
	{"builders", "local bgp = require(\"bgp\")\nlocal keep = {}\nbgp.every(0.05, function() keep[#keep + 1] = (\"y\"):rep(2^25) end)\n", "SCRIPT QUARANTINED"},
	{"entries", "local bgp = require(\"bgp\")\nlocal keep = {}\nbgp.every(0.1, function() for i = 1, 2e5 do keep[#keep + 1] = i end end)\n", "SCRIPT QUARANTINED"},
	{"pattern", "local s = (\"a\"):rep(1e5)\nfunction on_best_path(ev) string.find(s, \".-.-.-.-b\") end\n", "SCRIPT QUARANTINED"},
	{"recursion", "local function f(n) return f(n + 1) + 1 end\nfunction on_best_path(ev) f(1) end\n", "SCRIPT QUARANTINED"},
	{"nesting", "X = " + strings.Repeat("{", 1e5) + "1" + strings.Repeat("}", 1e5) + "\n", "nested deeper than 200"},
	{"announce", "local bgp = require(\"bgp\")\nfunction on_load()\n  for i = 0, 99999 do\n    if not bgp.announce{prefix = string.format(\"100.%d.%d.0/24\", 64 + math.floor(i / 256), i % 256)} then break end\n  end\n  error(\"flooded\")\nend\n",
		// Refused at the cap ("flooded"), or, on a loaded machine, cut by
		// the load deadline first: either way not loaded.
		`msg="script not loaded" script=hostile.lua`},
}

// TestSoak: a churning 100k-prefix table for EDBGPD_SOAK_FOR (10 minutes
// by default), a script saved every few seconds, and one hostile script
// of each kind loaded and stopped in turn. The session stays up and the
// daemon's goroutines, file descriptors and resident memory end where
// they started. EDBGPD_SOAK=1 runs it; make test does not.
func TestSoak(t *testing.T) {
	if os.Getenv("EDBGPD_SOAK") == "" {
		t.Skip("EDBGPD_SOAK=1 runs the soak")
	}
	length := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("EDBGPD_SOAK_FOR")); err == nil {
		length = d
	}
	const table = 100_000
	h := startHostile(t, "  max-memory = \"256MiB\"\n  quarantine-after = 3\n", map[string]string{})
	for i := range table {
		h.router.Announce(soakPrefix(i), "65000:1")
	}
	bgptest.WaitFor(t, 5*time.Minute, func() bool { return h.bestPaths() >= table }, "the table at edbgpd")
	settle()
	base := h.usage()
	t.Logf("baseline: %+v", base)

	stop := make(chan struct{})
	churned := make(chan int)
	go func() { // about 1,000 updates a second
		rnd, n := rand.New(rand.NewSource(1)), 0
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				churned <- n
				return
			case <-tick.C:
				for range 100 {
					i := rnd.Intn(table)
					h.router.Announce(soakPrefix(i), fmt.Sprintf("65000:%d", rnd.Intn(1000)))
					n++
				}
			}
		}
	}()
	end := time.Now().Add(length)
	saves, kinds := 0, 0
	for time.Now().Before(end) {
		k := hostileKinds[kinds%len(hostileKinds)]
		kinds++
		h.save("hostile.lua", k.src+fmt.Sprintf("-- round %d\n", kinds))
		h.announce() // an event for the handlers
		bgptest.WaitFor(t, 60*time.Second, func() bool { return h.logCount(k.stopped) >= h.seen(k.stopped)+1 }, "the "+k.name+" script stopped")
		h.markSeen(k.stopped)
		os.Remove(filepath.Join(h.scripts, "hostile.lua"))
		for range 3 { // a well-behaved script saved every few seconds
			saves++
			h.save("counter.lua", fmt.Sprintf("local n = 0\nfunction on_best_path(ev) n = n + 1 end\n-- save %d\n", saves))
			time.Sleep(2 * time.Second)
		}
	}
	close(stop)
	t.Logf("%d hostile scripts stopped, %d saves, %d churn updates", kinds, saves, <-churned)
	os.Remove(filepath.Join(h.scripts, "counter.lua"))
	settle()
	h.alive()
	// The Go runtime hands freed memory back to the system over minutes.
	back := func(u usage) bool {
		return u.goroutines <= base.goroutines+10 && u.fds <= base.fds+5 && u.rss <= base.rss+base.rss/4+64<<20
	}
	after := h.usage()
	for deadline := time.Now().Add(3 * time.Minute); !back(after); after = h.usage() {
		if time.Now().After(deadline) {
			t.Fatalf("3 min after the soak: %+v; baseline %+v (allowed: goroutines +10, fds +5, RSS +25%% +64 MiB)", after, base)
		}
		time.Sleep(time.Second) // polling the daemon's own numbers
	}
	t.Logf("after: %+v", after)
	h.stop()
}

// soakPrefix is the i-th prefix of the soak's table.
func soakPrefix(i int) string { return fmt.Sprintf("%d.%d.%d.0/24", 10+i/65536, (i/256)%256, i%256) }

// settle lets the churn's last updates through.
func settle() { time.Sleep(3 * time.Second) }

type usage struct{ goroutines, fds, rss int64 }

// usage reads the daemon's goroutines (from /metrics), open files and
// resident memory.
func (h *hostile) usage() usage {
	u := usage{rss: h.rss()}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.cmd.Process.Pid)); err == nil {
		u.fds = int64(len(fds))
	}
	u.goroutines = int64(h.metric("go_goroutines"))
	return u
}

// metric reads one unlabelled metric of /metrics.
func (h *hostile) metric(name string) float64 {
	resp, err := http.Get("http://" + h.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// bestPaths is how many best-path events edbgpd has made.
func (h *hostile) bestPaths() int {
	return int(h.metric("edbgpd_best_path_events_total"))
}

// logCount counts log lines holding s; seen and markSeen remember the
// count at the last hostile script, so each waits for a new line.
func (h *hostile) logCount(s string) int { return strings.Count(h.logs.String(), s) }

var seenCounts = map[string]int{}

func (h *hostile) seen(s string) int { return seenCounts[s] }

func (h *hostile) markSeen(s string) { seenCounts[s] = h.logCount(s) }
