package host

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are read at scrape time from the counters the daemon keeps
// anyway; only the two histograms cost anything per event.
var (
	descScriptEvents      = prometheus.NewDesc("edbgpd_script_events_total", "Events handed to the script's handlers.", []string{"script"}, nil)
	descScriptErrors      = prometheus.NewDesc("edbgpd_script_errors_total", "Handler, timer and callback calls that raised an error.", []string{"script"}, nil)
	descScriptCutOffs     = prometheus.NewDesc("edbgpd_script_cutoffs_total", "Handler calls stopped at call-timeout.", []string{"script"}, nil)
	descScriptCoalesced   = prometheus.NewDesc("edbgpd_script_coalesced_total", "Best paths replaced by a newer one of the same prefix while the script was behind.", []string{"script"}, nil)
	descScriptQueue       = prometheus.NewDesc("edbgpd_script_queue_depth", "Events waiting for the script.", []string{"script"}, nil)
	descScriptQueueAge    = prometheus.NewDesc("edbgpd_script_queue_oldest_seconds", "How long the oldest waiting event has waited.", []string{"script"}, nil)
	descScriptReloads     = prometheus.NewDesc("edbgpd_script_reloads_total", "Loads of the script's file, by result.", []string{"script", "result"}, nil)
	descScriptQuarantined = prometheus.NewDesc("edbgpd_script_quarantined", "1 while the script is quarantined (unloaded until its file is saved).", []string{"script"}, nil)
	descScriptQuarantines = prometheus.NewDesc("edbgpd_script_quarantines_total", "Times the script was quarantined.", []string{"script"}, nil)
	descScriptHeld        = prometheus.NewDesc("edbgpd_script_held_bytes", "What the script holds at its last memory check: strings plus 64 bytes a table entry (bounded by max-memory).", []string{"script"}, nil)
	descScriptLoaded      = prometheus.NewDesc("edbgpd_script_loaded", "1 while a version of the script runs.", []string{"script", "version"}, nil)

	descPeerState      = prometheus.NewDesc("edbgpd_peer_state", "1 for the session's current state.", []string{"peer", "state"}, nil)
	descPeerUp         = prometheus.NewDesc("edbgpd_peer_up", "1 while the session is established.", []string{"peer"}, nil)
	descPeerReceived   = prometheus.NewDesc("edbgpd_peer_received_prefixes", "Prefixes received from the peer.", []string{"peer", "family"}, nil)
	descPeerAccepted   = prometheus.NewDesc("edbgpd_peer_accepted_prefixes", "Prefixes accepted from the peer by import policy.", []string{"peer", "family"}, nil)
	descPeerAdvertised = prometheus.NewDesc("edbgpd_peer_advertised_prefixes", "Prefixes advertised to the peer.", []string{"peer", "family"}, nil)

	descBestPaths  = prometheus.NewDesc("edbgpd_best_path_events_total", "Best-path changes seen (rate() gives events per second).", nil, nil)
	descPeerEvents = prometheus.NewDesc("edbgpd_peer_state_events_total", "Peer state changes seen.", nil, nil)
	descKafka      = prometheus.NewDesc("edbgpd_kafka_messages_total", "Events offered to the Kafka stream, by what became of them.", []string{"result"}, nil)
	descThrottled  = prometheus.NewDesc("edbgpd_actions_throttled_total", "Script actions held back by [edbgpd.throttle] (done when the interval ends, the last one only).", nil, nil)
)

type collector struct{ d *Daemon }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if d.Scripts != nil {
		for _, s := range d.Scripts.Scripts() {
			st := s.Status()
			counter(descScriptEvents, st.Delivered, st.Name)
			counter(descScriptErrors, st.Errors, st.Name)
			counter(descScriptCutOffs, st.CutOffs, st.Name)
			counter(descScriptCoalesced, st.Coalesced, st.Name)
			gauge(descScriptQueue, float64(st.Queued), st.Name)
			gauge(descScriptQueueAge, st.OldestQueued, st.Name)
			counter(descScriptReloads, st.Reloads, st.Name, "ok")
			counter(descScriptReloads, st.FailedReloads, st.Name, "failed")
			gauge(descScriptQuarantined, flag(st.Quarantined), st.Name)
			counter(descScriptQuarantines, st.Quarantines, st.Name)
			gauge(descScriptHeld, float64(st.HeldBytes), st.Name)
			if st.Loaded {
				gauge(descScriptLoaded, 1, st.Name, st.Version)
			}
			ch <- labelled{s.health.handler, st.Name}
		}
	}
	counter(descBestPaths, d.conv.bestPaths.Load())
	counter(descPeerEvents, d.conv.peerEvents.Load())
	ch <- d.conv.convTime
	if d.Throttle != nil {
		counter(descThrottled, d.Throttle.Throttled.Load())
	}
	if k := d.KafkaStats(); k != nil {
		counter(descKafka, k.Delivered.Load(), "delivered")
		counter(descKafka, k.Dropped.Load(), "dropped")
		counter(descKafka, k.Failed.Load(), "failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Server.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		addr := p.GetState().GetNeighborAddress()
		if addr == "" {
			addr = p.GetConf().GetNeighborAddress()
		}
		state := sessionStates[p.GetState().GetSessionState()]
		gauge(descPeerState, 1, addr, state)
		gauge(descPeerUp, flag(state == "established"), addr)
		for _, af := range p.GetAfiSafis() {
			st := af.GetState()
			if st == nil || st.Family == nil {
				continue
			}
			fam := apiutil.ToRouteFamily(st.Family).String()
			gauge(descPeerReceived, float64(st.Received), addr, fam)
			gauge(descPeerAccepted, float64(st.Accepted), addr, fam)
			gauge(descPeerAdvertised, float64(st.Advertised), addr, fam)
		}
	})
}

// labelled adds the script label to a script's own histogram.
type labelled struct {
	prometheus.Histogram
	script string
}

func (l labelled) Desc() *prometheus.Desc { return descHandlerDuration }

func (l labelled) Write(m *dto.Metric) error {
	if err := l.Histogram.Write(m); err != nil {
		return err
	}
	name, value := "script", l.script
	m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &value})
	return nil
}

var descHandlerDuration = prometheus.NewDesc("edbgpd_script_handler_duration_seconds", "Duration of handler calls (on_best_path, on_peer_state).", []string{"script"}, nil)

// MetricsServer serves /metrics (Prometheus) and /status (JSON).
type MetricsServer struct {
	srv  *http.Server
	Addr net.Addr
}

// ServeMetrics starts the metrics and status endpoint on addr.
func (d *Daemon) ServeMetrics(addr string) (*MetricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{d}}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d.Status())
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &MetricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, Addr: l.Addr()}
	go func() {
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	d.log.Info("metrics and status endpoint", "addr", m.Addr.String())
	return m, nil
}

// Close stops serving.
func (m *MetricsServer) Close() { m.srv.Close() }

type slogPrinter struct{ d *Daemon }

func (p slogPrinter) Println(v ...any) { p.d.log.Error("metrics", "err", v) }

// Status is the daemon as `edbgpd status` shows it.
type Status struct {
	RouterID string         `json:"router_id"`
	Scripts  []ScriptStatus `json:"scripts"`
	Events   struct {
		BestPaths  uint64 `json:"best_paths"`
		PeerStates uint64 `json:"peer_states"`
		LastSeq    uint64 `json:"last_seq"`
	} `json:"events"`
}

// Status reports every script and the event counters.
func (d *Daemon) Status() Status {
	st := Status{RouterID: d.routerID, Scripts: []ScriptStatus{}}
	if d.Scripts != nil {
		for _, s := range d.Scripts.Scripts() {
			st.Scripts = append(st.Scripts, s.Status())
		}
	}
	st.Events.BestPaths = d.conv.bestPaths.Load()
	st.Events.PeerStates = d.conv.peerEvents.Load()
	st.Events.LastSeq = d.conv.lastSeq()
	return st
}
