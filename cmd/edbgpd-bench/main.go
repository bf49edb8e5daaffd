// Command edbgpd-bench feeds a synthetic full table to GoBGP alone, stock
// gobgpd and edbgpd with 0, 1 and 4 scripts over a real BGP session on
// loopback, and reports time, rate, CPU and peak memory of each (make bench).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"

	"github.com/edbgpd/edbgpd/host"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gobgp-alone" {
		os.Exit(gobgpAlone(os.Args[2:]))
	}
	os.Exit(run())
}

// gobgpAlone is configuration (a): GoBGP embedded as edbgpd embeds it
// (host.Start: same logger, same settings) with no event watch at all.
func gobgpAlone(args []string) int {
	fs := flag.NewFlagSet("gobgp-alone", flag.ExitOnError)
	cfg := fs.String("f", "", "config file")
	api := fs.String("api-hosts", "", "gRPC address")
	fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := host.Start(host.Settings{ConfigFile: *cfg, APIHosts: *api, Logger: log, GoBGPLogLevel: slog.LevelWarn, NoEvents: true})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	d.Stop()
	return 0
}

type options struct {
	n         int
	v6        bool
	configs   string
	edbgpd    string
	gobgpd    string
	churnRate int
	churnFor  time.Duration
	jsonOut   string
	profile   string
}

// result is one line of the report.
type result struct {
	Config       string  `json:"config"`
	Prefixes     int     `json:"prefixes"`
	LoadSeconds  float64 `json:"load_seconds"`
	PrefixesPerS float64 `json:"prefixes_per_second"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	WithdrawSecs float64 `json:"withdraw_seconds"`
	WithdrawPerS float64 `json:"withdrawals_per_second"`
	TimeVsA      float64 `json:"time_vs_a,omitempty"`
	TimeVsE      float64 `json:"time_vs_e,omitempty"`
	RSSVsA       float64 `json:"rss_vs_a,omitempty"`
	ChurnP50ms   float64 `json:"churn_p50_ms,omitempty"`
	ChurnP99ms   float64 `json:"churn_p99_ms,omitempty"`
	ChurnEvents  int     `json:"churn_events,omitempty"`
	ReloadMS     float64 `json:"reload_ms,omitempty"`
	// PolicySeconds: from the trigger to the receiver having nothing left
	// (p); PolicyReset: by a session reset; PolicyHeldMS: how long the
	// script's set_export_policy call took.
	PolicySeconds float64 `json:"policy_seconds,omitempty"`
	PolicyReset   bool    `json:"policy_reset,omitempty"`
	PolicyHeldMS  float64 `json:"policy_held_ms,omitempty"`
	Skipped       string  `json:"skipped,omitempty"`
}

var descriptions = map[string]string{
	"a": "GoBGP alone, embedded as in edbgpd, no watcher",
	"e": "stock gobgpd v3 binary",
	"b": "edbgpd, no scripts",
	"c": "edbgpd, 1 script (prefix, AS path, communities)",
	"d": "edbgpd, 4 such scripts",
	"w": "edbgpd on GoBGP's public WatchEvent, 1 script subscribed to the last prefix only: the stream and edbgpd's dispatch, no Lua per event",
	"p": "edbgpd, 1 script that sets a second peer's export policy to default-only once both have the table",
	"n": "edbgpd on GoBGP's own watcher (native), 1 script subscribed to the last prefix only: the stream and edbgpd's dispatch, no Lua per event",
}

func run() int {
	var o options
	flag.IntVar(&o.n, "n", 1000000, "prefixes in the table")
	flag.BoolVar(&o.v6, "v6", false, "an IPv6 table instead of IPv4")
	flag.StringVar(&o.configs, "configs", "a,e,b,c,d", "configurations to run, in order")
	flag.StringVar(&o.edbgpd, "edbgpd", "bin/edbgpd", "the edbgpd binary")
	flag.StringVar(&o.gobgpd, "gobgpd", "gobgpd", "the stock gobgpd binary (configuration e)")
	flag.IntVar(&o.churnRate, "churn-rate", 10000, "updates per second in the churn test (configuration c)")
	flag.DurationVar(&o.churnFor, "churn-for", 30*time.Second, "length of the churn test; 0 skips churn and reload")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON lines to this file")
	flag.StringVar(&o.profile, "profile", "", "write a 10 s CPU profile of each edbgpd run (b, c, d, w) during the load to this folder")
	flag.IntVar(&gcPercent, "gc-percent", 0, "[edbgpd] gc-percent for every configuration but (e) (0: Go's default)")
	flag.StringVar(&memoryLimit, "memory-limit", "", "[edbgpd] memory-limit for every configuration but (e), e.g. 2GiB")
	flag.Parse()

	fmt.Printf("edbgpd-bench: %d %s prefixes; %s, %d CPUs\n", o.n, map[bool]string{false: "IPv4", true: "IPv6"}[o.v6], runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	t0 := time.Now()
	tbl := genTable(o.n, o.v6, 1)
	fmt.Printf("table: %d UPDATE messages, %.1f MB, generated in %v\n", tbl.messages, float64(len(tbl.updates))/1e6, time.Since(tbl0(t0)).Round(time.Millisecond))
	if rate, err := feederSpeed(tbl, o.v6); err == nil {
		fmt.Printf("feeder: %.0f prefixes/s into a receiver that discards (the ceiling of every measurement below)\n", rate)
	} else {
		fmt.Println("feeder speed:", err)
	}
	var results []*result
	byName := map[string]*result{}
	for _, c := range strings.Split(o.configs, ",") {
		c = strings.TrimSpace(c)
		fmt.Printf("running (%s) %s ...\n", c, descriptions[c])
		r, err := runConfig(c, tbl, &o)
		if err != nil {
			fmt.Printf("  (%s) failed: %v\n", c, err)
			r = &result{Config: c, Skipped: err.Error()}
		}
		results = append(results, r)
		byName[c] = r
	}
	for _, r := range results {
		if a := byName["a"]; a != nil && a.LoadSeconds > 0 && r.LoadSeconds > 0 {
			r.TimeVsA = round(r.LoadSeconds/a.LoadSeconds, 2)
			r.RSSVsA = round(r.PeakRSSMB/a.PeakRSSMB, 2)
		}
		if e := byName["e"]; e != nil && e.LoadSeconds > 0 && r.LoadSeconds > 0 {
			r.TimeVsE = round(r.LoadSeconds/e.LoadSeconds, 2)
		}
	}
	report(os.Stdout, results)
	if o.jsonOut != "" {
		f, err := os.Create(o.jsonOut)
		if err == nil {
			for _, r := range results {
				b, _ := json.Marshal(r)
				f.Write(append(b, '\n'))
			}
			f.Close()
		}
	}
	for _, r := range results {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	return 0
}

func tbl0(t time.Time) time.Time { return t }

func round(x float64, d int) float64 {
	p := 1.0
	for i := 0; i < d; i++ {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

func report(w io.Writer, results []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tload s\tprefixes/s\tCPU s\tpeak RSS MB\tx time (a)\tx time (e)\tx RSS (a)\twithdraw s\twithdrawals/s\t")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "(%s)\tskipped: %s\t\t\t\t\t\t\t\t\t\n", r.Config, r.Skipped)
			continue
		}
		fmt.Fprintf(tw, "(%s)\t%.2f\t%.0f\t%.1f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t\n", r.Config, r.LoadSeconds, r.PrefixesPerS,
			r.CPUSeconds, r.PeakRSSMB, r.TimeVsA, r.TimeVsE, r.RSSVsA, r.WithdrawSecs, r.WithdrawPerS)
	}
	tw.Flush()
	for _, r := range results {
		if r.ChurnEvents > 0 {
			fmt.Fprintf(w, "churn (%s): %d events, event-to-handler p50 %.2f ms, p99 %.2f ms\n", r.Config, r.ChurnEvents, r.ChurnP50ms, r.ChurnP99ms)
		}
		if r.PolicySeconds > 0 {
			how := "withdrawn"
			if r.PolicyReset {
				how = "session reset"
			}
			fmt.Fprintf(w, "policy change (%s): the peer had nothing left %.2f s after the trigger (%s); the script's call took %.3f ms\n", r.Config, r.PolicySeconds, how, r.PolicyHeldMS)
		}
		if r.ReloadMS > 0 {
			fmt.Fprintf(w, "reload (%s): %.1f ms from save to the new 200-line version handling events\n", r.Config, r.ReloadMS)
		}
	}
}

// feederSpeed times writing the whole table into a receiver that drops it.
func feederSpeed(t *table, v6 bool) (float64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go discardPeer(l)
	f, err := dialFeeder(l.Addr().String(), v6)
	if err != nil {
		return 0, err
	}
	defer f.close()
	start := time.Now()
	if err := f.write(t.updates); err != nil {
		return 0, err
	}
	return float64(len(t.prefixes)) / time.Since(start).Seconds(), nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sut is a system under test: a process and what it logs.
type sut struct {
	cmd    *exec.Cmd
	api    api.GobgpApiClient
	conn   *grpc.ClientConn
	mu     sync.Mutex
	marks  map[string]int       // "bench-..." marker -> count seen
	seen   map[string]time.Time // marker -> first seen
	lines  []string             // other bench lines (churn report)
	stderr []string
}

func (s *sut) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		s.mu.Lock()
		if i := strings.Index(line, "bench-"); i >= 0 {
			word := strings.Fields(strings.Trim(line[i:], `"`))[0]
			word = strings.Trim(word, `"`)
			s.marks[word]++
			if _, ok := s.seen[word]; !ok {
				s.seen[word] = now
			}
			s.lines = append(s.lines, line)
		} else if len(s.stderr) < 50 {
			s.stderr = append(s.stderr, line)
		}
		s.mu.Unlock()
	}
}

func (s *sut) marked(word string, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[word] >= n
}

func (s *sut) firstSeen(word string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.seen[word]
	return t, ok
}

func (s *sut) rib(v6 bool) uint64 {
	f := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if v6 {
		f.Afi = api.Family_AFI_IP6
	}
	r, err := s.api.GetTable(context.Background(), &api.GetTableRequest{TableType: api.TableType_GLOBAL, Family: f})
	if err != nil {
		return 0
	}
	return r.NumDestination
}

// has tells whether prefix is in the RIB: an exact lookup, cheap, unlike
// counting the table (GoBGP's GetTable walks every destination).
func (s *sut) has(p netip.Prefix) bool {
	f := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Addr().Is6() {
		f.Afi = api.Family_AFI_IP6
	}
	stream, err := s.api.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f,
		Prefixes: []*api.TableLookupPrefix{{Prefix: p.String(), Type: api.TableLookupPrefix_EXACT}}})
	if err != nil {
		return false
	}
	_, err = stream.Recv()
	return err == nil
}

func (s *sut) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.conn.Close()
}

// cpuSeconds is user+system CPU of pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // clock ticks (USER_HZ 100)
}

// peakRSSMB is the high-water mark of pid's resident memory.
func peakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
