package host_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edbgpd/edbgpd/host/metrics"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

const failsOnOne = `local bgp = require("bgp")
function on_load() -- the second is held back by the throttle
  bgp.set_export_policy("127.0.0.9", "full")
  bgp.set_export_policy("127.0.0.9", "none")
end
function on_best_path(ev)
  if ev.prefix == "198.18.7.0/24" then
    error("boom on " .. ev.prefix)
  end
end
`

// scrape reads /metrics into name -> families.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the sample of name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAndStatus: after real BGP traffic, /metrics and /status show
// the numbers that happened.
func TestMetricsAndStatus(t *testing.T) {
	const table = 50
	scripts := t.TempDir()
	src := filepath.Join(scripts, "count.lua")
	os.WriteFile(src, []byte(failsOnOne), 0o644)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	port := bgptest.FreePort(t)
	d := startDaemon(t, edbgpdConfig(port, scripts, "127.0.0.2"))
	m, err := d.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	addr := m.Addr.String()
	r.Connect(port)
	r.WaitEstablished()
	for i := range table {
		r.Announce(fmt.Sprintf("198.18.%d.0/24", i))
	}
	script := map[string]string{"script": "count.lua"}
	// The default route and the table, each handled once.
	bgptest.WaitFor(t, 10*time.Second, func() bool {
		v, _ := value(scrape(t, addr), "edbgpd_script_events_total", script)
		return v == table+1
	}, "every best path counted")
	fams := scrape(t, addr)
	peer := map[string]string{"peer": "127.0.0.2", "family": "ipv4-unicast"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"edbgpd_script_errors_total", script, 1},
		{"edbgpd_script_cutoffs_total", script, 0},
		{"edbgpd_script_handler_duration_seconds", script, table + 1},
		{"edbgpd_script_queue_depth", script, 0},
		{"edbgpd_script_reloads_total", map[string]string{"script": "count.lua", "result": "ok"}, 1},
		{"edbgpd_script_reloads_total", map[string]string{"script": "count.lua", "result": "failed"}, 0},
		{"edbgpd_script_quarantined", script, 0},
		{"edbgpd_best_path_events_total", nil, table + 1},
		{"edbgpd_peer_up", map[string]string{"peer": "127.0.0.2"}, 1},
		{"edbgpd_peer_state", map[string]string{"peer": "127.0.0.2", "state": "established"}, 1},
		{"edbgpd_peer_received_prefixes", peer, table},
		{"edbgpd_peer_accepted_prefixes", peer, table},
		{"edbgpd_peer_advertised_prefixes", peer, 1},
		{"edbgpd_event_conversion_seconds", nil, table + 1},
		{"edbgpd_actions_throttled_total", nil, 1},
		{"edbgpd_event_source", map[string]string{"source": "native"}, 1},
	} {
		if got, ok := value(fams, tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (found: %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if e := status(t, addr).Scripts[0].LastError; e == nil || e.File != src || e.Line != 8 {
		t.Errorf("last error %+v, want the error() at %s line 8", e, src)
	}

	// A broken save: counted as a failed reload, shown as the last error.
	os.WriteFile(src, []byte("function on_best_path(ev)\n  return (\nend\n"), 0o644)
	bgptest.WaitFor(t, 5*time.Second, func() bool {
		v, _ := value(scrape(t, addr), "edbgpd_script_reloads_total", map[string]string{"script": "count.lua", "result": "failed"})
		return v == 1
	}, "the failed reload counted")

	st := status(t, addr)
	if len(st.Scripts) != 1 {
		t.Fatalf("status lists %d scripts, want 1: %+v", len(st.Scripts), st)
	}
	s := st.Scripts[0]
	if s.Name != "count.lua" || s.File != src || !s.Loaded || len(s.Version) != 12 || s.LoadedAt == nil || s.Delivered != table+1 || s.Errors != 1 {
		t.Errorf("status: %+v", s)
	}
	if e := s.LastError; e == nil || e.File != src || e.Line != 3 {
		t.Errorf("last error %+v, want the syntax error at %s line 3", e, src)
	}
	if st.RouterID != "127.0.0.1" || st.Events.BestPaths != table+1 || st.Events.PeerStates == 0 || st.Events.Source != "native" {
		t.Errorf("status: %+v", st)
	}
}

func status(t *testing.T, addr string) metrics.Status {
	t.Helper()
	res, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st metrics.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Scripts) == 0 {
		t.Fatalf("status lists no script: %+v", st)
	}
	return st
}
