// Package metrics serves edbgpd's Prometheus /metrics and its JSON
// /status, read at request time from the Stats each part keeps anyway.
package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/sink"
	"github.com/edbgpd/edbgpd/host/speaker"
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
	descSource     = prometheus.NewDesc("edbgpd_event_source", "1 for where events come from: native (GoBGP's own watcher) or watch-event (its public WatchEvent, the fallback).", []string{"source"}, nil)
	descThrottled  = prometheus.NewDesc("edbgpd_actions_throttled_total", "Script actions held back by [edbgpd.throttle] (done when the interval ends, the last one only).", nil, nil)
)

// Sources are the parts whose counters are served. Scripts, Throttle and
// Kafka may be nil (no scripts folder, no Kafka).
type Sources struct {
	RouterID string
	Speaker  *speaker.Speaker
	Scripts  *engine.ScriptSet
	Throttle *engine.Throttle
	Kafka    *sink.Kafka
	Log      *slog.Logger
}

type collector struct{ src Sources }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	src := c.src
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
	if src.Scripts != nil {
		for _, s := range src.Scripts.Scripts() {
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
			ch <- labelled{s.HandlerDuration(), st.Name}
		}
	}
	ev := src.Speaker.Stats()
	counter(descBestPaths, ev.BestPaths)
	counter(descPeerEvents, ev.PeerStates)
	gauge(descSource, 1, ev.Source)
	ch <- ev.Conversion
	if src.Throttle != nil {
		counter(descThrottled, src.Throttle.Throttled())
	}
	if src.Kafka != nil {
		k := src.Kafka.Stats()
		counter(descKafka, k.Delivered, "delivered")
		counter(descKafka, k.Dropped, "dropped")
		counter(descKafka, k.Failed, "failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range src.Speaker.PeerCounts(ctx) {
		gauge(descPeerState, 1, p.Address, p.State)
		gauge(descPeerUp, flag(p.State == "established"), p.Address)
		for _, f := range p.Families {
			gauge(descPeerReceived, float64(f.Received), p.Address, f.Family)
			gauge(descPeerAccepted, float64(f.Accepted), p.Address, f.Family)
			gauge(descPeerAdvertised, float64(f.Advertised), p.Address, f.Family)
		}
	}
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

// Server serves /metrics (Prometheus) and /status (JSON).
type Server struct {
	srv  *http.Server
	Addr net.Addr
}

// Serve starts the metrics and status endpoint on addr.
func Serve(addr string, src Sources) (*Server, error) {
	if src.Log == nil {
		src.Log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{src.Log}}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(StatusOf(src))
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, Addr: l.Addr()}
	go func() {
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			src.Log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	src.Log.Info("metrics and status endpoint", "addr", m.Addr.String())
	return m, nil
}

// Close stops serving.
func (m *Server) Close() { m.srv.Close() }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics", "err", v) }

// Status is the daemon as `edbgpd status` shows it.
type Status struct {
	RouterID string                `json:"router_id"`
	Scripts  []engine.ScriptStatus `json:"scripts"`
	Events   struct {
		Source     string `json:"source"` // native, or watch-event (the fallback)
		BestPaths  uint64 `json:"best_paths"`
		PeerStates uint64 `json:"peer_states"`
		LastSeq    uint64 `json:"last_seq"`
	} `json:"events"`
}

// StatusOf reports every script and the event counters.
func StatusOf(src Sources) Status {
	st := Status{RouterID: src.RouterID, Scripts: []engine.ScriptStatus{}}
	if src.Scripts != nil {
		for _, s := range src.Scripts.Scripts() {
			st.Scripts = append(st.Scripts, s.Status())
		}
	}
	ev := src.Speaker.Stats()
	st.Events.Source, st.Events.BestPaths, st.Events.PeerStates, st.Events.LastSeq = ev.Source, ev.BestPaths, ev.PeerStates, ev.LastSeq
	return st
}
