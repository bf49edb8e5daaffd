package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// watchScript takes only the sentinel: GoBGP converts every best path for
// the watcher and edbgpd filters them in Go, but no Lua runs per event.
func watchScript(v6 bool) string {
	return fmt.Sprintf(`local bgp = require("bgp")
bgp.subscribe { prefixes = { %q }, peer_state = false }
function on_best_path(ev)
  if not ev.withdrawal then bgp.log("warn", "bench-loaded") end
end
`, sentinel(v6).String())
}

// policyTrigger is the prefix whose announcement makes policyScript take
// the whole table away from the receiver.
const policyTrigger = "192.0.2.253/32"

// policyScript waits for the table, then for the trigger, and sets the
// receiver's export policy to default-only: what the policy change costs
// at a full table, and how long the script waited for it.
func policyScript(v6 bool) string {
	return fmt.Sprintf(`local bgp = require("bgp")
bgp.subscribe { prefixes = { %q, %q }, peer_state = false }
function on_best_path(ev)
  if ev.withdrawal then return end
  if ev.prefix == %q then bgp.log("warn", "bench-loaded") return end
  local t0 = bgp.now()
  bgp.set_export_policy("127.0.0.3", "default-only")
  bgp.log("warn", "bench-policy", string.format("held_ms=%%.3f", (bgp.now() - t0) * 1000))
end
`, sentinel(v6).String(), policyTrigger, sentinel(v6).String())
}

// benchScript reads prefix, AS path and communities of every best path
// and counts; it logs markers the bench waits for. Churn updates (AS path
// 65002 64999) carry their send time in MED; 192.0.2.255/32 asks for the
// churn report. pad adds lines (the reload test's 200-line version).
func benchScript(n int, version string, pad int, v6 bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `local bgp = require("bgp")
local N, VERSION, SENTINEL = %d, %q, %q
local loaded, withdrawn, hops, comms, first = 0, 0, 0, 0, true
local lat = {}
local function report()
  table.sort(lat)
  local n = #lat
  local p50 = n > 0 and lat[math.max(1, math.floor(n * 0.5))] or -1
  local p99 = n > 0 and lat[math.max(1, math.floor(n * 0.99))] or -1
  bgp.log("warn", "bench-churn", n, p50, p99)
  lat = {}
end
function on_best_path(ev)
  if first and VERSION ~= "v1" then first = false; bgp.log("warn", "bench-" .. VERSION) end
  local p = ev.prefix
  if p == "192.0.2.255/32" then
    if not ev.withdrawal then report() end
    return
  end
  if ev.withdrawal then
    withdrawn = withdrawn + 1
    if withdrawn == N + 1 then bgp.log("warn", "bench-withdrawn") end
    return
  end
  if p == SENTINEL then
    bgp.log("warn", "bench-loaded", loaded == N, hops, comms)
    return
  end
  local path = ev.as_path
  hops = hops + #path
  comms = comms + #ev.communities
  if path[2] == 64999 then
    local now = math.floor(bgp.now() * 1000000) %% 1000000000
    lat[#lat + 1] = ((now - ev.med) %% 1000000000) / 1000
    return
  end
  loaded = loaded + 1
end
`, n, version, sentinel(v6).String())
	for i := 0; i < pad; i++ {
		fmt.Fprintf(&b, "local function pad%d(x) return x + %d end\n", i, i)
	}
	return b.String()
}

func sutConfig(port int, scripts, source string, v6, edbgpd bool) string {
	c := fmt.Sprintf(`[global.config]
  as = 65001
  router-id = "127.0.0.1"
  port = %d
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65002
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`, port)
	if v6 {
		c += `  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`
	}
	if !edbgpd {
		return c // the stock gobgpd knows no [edbgpd]
	}
	c += "[edbgpd]\n"
	if scripts != "" {
		c += fmt.Sprintf("  scripts = %q\n", scripts)
	}
	if source != "" {
		c += fmt.Sprintf("  event-source = %q\n", source)
	}
	if gcPercent != 0 {
		c += fmt.Sprintf("  gc-percent = %d\n", gcPercent)
	}
	if memoryLimit != "" {
		c += fmt.Sprintf("  memory-limit = %q\n", memoryLimit)
	}
	return c
}

// The collector settings every configuration but (e) runs with (flags).
var (
	gcPercent   int
	memoryLimit string
)

func runConfig(name string, tbl *table, o *options) (*result, error) {
	dir, err := os.MkdirTemp("", "edbgpd-bench-"+name)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	scripts := filepath.Join(dir, "scripts")
	os.Mkdir(scripts, 0o755)
	nScripts := map[string]int{"c": 1, "d": 4}[name]
	for i := 1; i <= nScripts; i++ {
		os.WriteFile(filepath.Join(scripts, fmt.Sprintf("bench%d.lua", i)), []byte(benchScript(len(tbl.prefixes), "v1", 0, o.v6)), 0o644)
	}
	if name == "w" || name == "n" {
		os.WriteFile(filepath.Join(scripts, "watch.lua"), []byte(watchScript(o.v6)), 0o644)
	}
	if name == "p" {
		os.WriteFile(filepath.Join(scripts, "policy.lua"), []byte(policyScript(o.v6)), 0o644)
	}
	port, apiPort := freePort(), freePort()
	cfgPath := filepath.Join(dir, "bgp.toml")
	withScripts := ""
	if name == "b" || name == "c" || name == "d" || name == "w" || name == "n" || name == "p" {
		withScripts = scripts
	}
	source := ""
	if name == "w" {
		source = "watch-event" // the public stream's floor, whatever the default
	}
	cfg := sutConfig(port, withScripts, source, o.v6, name != "e")
	if name == "p" { // a second peer, the one whose policy changes
		cfg = strings.Replace(cfg, "[edbgpd]\n", `[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.3"
    peer-as = 65003
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    idle-hold-time-after-reset = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
[edbgpd]
`, 1)
	}
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", apiPort)
	var cmd *exec.Cmd
	pprofAddr := ""
	switch name {
	case "a":
		self, _ := os.Executable()
		cmd = exec.Command(self, "gobgp-alone", "-f", cfgPath, "-api-hosts", apiAddr)
	case "e":
		bin, err := exec.LookPath(o.gobgpd)
		if err != nil {
			return nil, fmt.Errorf("no stock gobgpd (%s): go install github.com/osrg/gobgp/v3/cmd/gobgpd@v3.37.0", o.gobgpd)
		}
		cmd = exec.Command(bin, "-f", cfgPath, "--api-hosts", apiAddr, "--pprof-disable", "-l", "warn")
	case "b", "c", "d", "w", "n", "p":
		cmd = exec.Command(o.edbgpd, "-f", cfgPath, "--api-hosts", apiAddr, "-l", "warn")
		if o.profile != "" {
			pprofAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
			cmd.Args = append(cmd.Args, "--pprof-host", pprofAddr)
		}
	default:
		return nil, fmt.Errorf("unknown configuration %q (a, e, b, c, d, w, n, p)", name)
	}
	s := &sut{cmd: cmd, marks: map[string]int{}, seen: map[string]time.Time{}}
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go s.scan(stderr)
	s.conn, err = grpc.Dial(apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	s.api = api.NewGobgpApiClient(s.conn)
	defer s.stop()
	if !waitUntil(20*time.Second, func() bool {
		_, err := s.api.GetBgp(context.Background(), &api.GetBgpRequest{})
		return err == nil
	}) {
		return nil, fmt.Errorf("did not start: %v", s.stderr)
	}
	pid := cmd.Process.Pid
	n := len(tbl.prefixes)
	r := &result{Config: name, Prefixes: n}
	var rc *receiver
	if name == "p" {
		rc = &receiver{prefixes: map[string]bool{}}
		peer, err := dialPeer(fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.3", 65003, o.v6, rc.read)
		if err != nil {
			return nil, err
		}
		defer peer.close()
	}
	f, err := dialFeeder(fmt.Sprintf("127.0.0.1:%d", port), o.v6)
	if err != nil {
		return nil, err
	}
	defer f.close()
	cpu0 := cpuSeconds(pid)
	start := time.Now()
	go f.write(tbl.updates)
	if pprofAddr != "" {
		go saveProfile(pprofAddr, filepath.Join(o.profile, name+".pprof"))
	}
	loaded := func() bool {
		if nScripts > 0 || name == "w" || name == "n" || name == "p" {
			return s.marked("bench-loaded", max(nScripts, 1))
		}
		return s.has(sentinel(o.v6))
	}
	if !waitUntil(30*time.Minute, loaded) {
		return nil, fmt.Errorf("table not loaded")
	}
	r.LoadSeconds = time.Since(start).Seconds()
	r.PrefixesPerS = float64(n) / r.LoadSeconds
	r.CPUSeconds = cpuSeconds(pid) - cpu0
	r.PeakRSSMB = peakRSSMB(pid)

	if name == "c" && o.churnFor > 0 {
		churn(s, f, tbl, o, r, scripts, n)
	}
	if rc != nil {
		if err := policyChange(s, f, rc, r, n); err != nil {
			return nil, err
		}
	}

	start = time.Now()
	f.close() // the peer goes down: every prefix is withdrawn
	withdrawn := func() bool {
		if nScripts > 0 {
			return s.marked("bench-withdrawn", nScripts)
		}
		// GetTable walks the table; a peer down is one long operation in
		// GoBGP's main loop, and this call waits behind it anyway.
		time.Sleep(200 * time.Millisecond)
		return s.rib(o.v6) == 0
	}
	if !waitUntil(30*time.Minute, withdrawn) {
		return nil, fmt.Errorf("table not withdrawn")
	}
	r.WithdrawSecs = time.Since(start).Seconds()
	r.WithdrawPerS = float64(n) / r.WithdrawSecs
	r.LoadSeconds = round(r.LoadSeconds, 3)
	r.WithdrawSecs = round(r.WithdrawSecs, 3)
	r.CPUSeconds = round(r.CPUSeconds, 2)
	r.PeakRSSMB = round(r.PeakRSSMB, 1)
	r.PrefixesPerS = round(r.PrefixesPerS, 0)
	r.WithdrawPerS = round(r.WithdrawPerS, 0)
	return r, nil
}

// churn sends o.churnRate updates/s for o.churnFor and reads the script's
// latency report; then, with churn still running, saves a 200-line new
// version of the script and times until it handles an event.
// policyChange waits for the receiver to have the table, announces the
// trigger, and times until the receiver has nothing left (withdrawn, or
// its session reset: more than 5,000 prefixes go at once).
func policyChange(s *sut, f *feeder, rc *receiver, r *result, n int) error {
	if !waitUntil(30*time.Minute, func() bool { c, _ := rc.count(); return c >= n }) {
		c, down := rc.count()
		return fmt.Errorf("the receiver has %d of %d prefixes (down %v)", c, n, down)
	}
	start := time.Now()
	if err := f.write(updateFor(attrSet{asPath: []uint32{65002}}, []netip.Prefix{netip.MustParsePrefix(policyTrigger)}, false)); err != nil {
		return err
	}
	if !waitUntil(30*time.Minute, func() bool { c, down := rc.count(); return c == 0 || down }) {
		return fmt.Errorf("the receiver kept its routes")
	}
	r.PolicySeconds = round(time.Since(start).Seconds(), 3)
	_, r.PolicyReset = rc.count()
	if !waitUntil(time.Minute, func() bool { return s.marked("bench-policy", 1) }) {
		return fmt.Errorf("the script did not report its call")
	}
	s.mu.Lock()
	for _, l := range s.lines {
		if i := strings.Index(l, "held_ms="); i >= 0 && strings.Contains(l, "bench-policy") {
			r.PolicyHeldMS, _ = strconv.ParseFloat(strings.Trim(strings.Fields(l[i+len("held_ms="):])[0], `"`), 64)
		}
	}
	s.mu.Unlock()
	return nil
}

func churn(s *sut, f *feeder, tbl *table, o *options, r *result, scripts string, n int) {
	rnd := rand.New(rand.NewSource(2))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		per := max(1, o.churnRate/1000)
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				us := uint32(time.Now().UnixMicro() % 1000000000)
				var buf []byte
				for i := 0; i < per; i++ {
					buf = append(buf, churnUpdate(tbl.prefixes[rnd.Intn(n)], us)...)
				}
				if f.write(buf) != nil {
					return
				}
			}
		}
	}()
	time.Sleep(o.churnFor)
	ask := func(announce bool) {
		p := netip.MustParsePrefix("192.0.2.255/32")
		b := churnUpdate(p, 0)
		if !announce {
			b = withdrawUpdate(p)
		}
		f.write(b)
	}
	ask(true)
	if waitUntil(10*time.Second, func() bool { return s.marked("bench-churn", 1) }) {
		s.mu.Lock()
		for _, l := range s.lines {
			if i := strings.Index(l, "bench-churn"); i >= 0 {
				fs := strings.Fields(strings.Trim(l[i:], `"`))
				if len(fs) >= 4 {
					r.ChurnEvents, _ = strconv.Atoi(fs[1])
					p50, _ := strconv.ParseFloat(strings.Trim(fs[2], `"`), 64)
					p99, _ := strconv.ParseFloat(strings.Trim(fs[3], `"`), 64)
					r.ChurnP50ms, r.ChurnP99ms = p50, p99
				}
			}
		}
		s.mu.Unlock()
	}
	ask(false)
	// Reload: save a 200-line version while events flow.
	saved := time.Now()
	os.WriteFile(filepath.Join(scripts, "bench1.lua"), []byte(benchScript(n, "v2", 160, o.v6)), 0o644)
	if waitUntil(10*time.Second, func() bool { return s.marked("bench-v2", 1) }) {
		t, _ := s.firstSeen("bench-v2")
		r.ReloadMS = round(float64(t.Sub(saved).Microseconds())/1000, 1)
	}
	close(stop)
	<-done

}

// saveProfile fetches a 10 s CPU profile from an edbgpd --pprof-host.
func saveProfile(addr, path string) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=10")
	if err != nil {
		fmt.Println("  profile:", err)
		return
	}
	defer resp.Body.Close()
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}
