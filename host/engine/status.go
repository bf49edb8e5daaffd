package engine

import (
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ScriptStatus is one script as `edbgpd status` shows it.
type ScriptStatus struct {
	Name          string     `json:"name"`
	File          string     `json:"file"`
	Loaded        bool       `json:"loaded"`
	Version       string     `json:"version,omitempty"` // short sha256 of the running file
	LoadedAt      *time.Time `json:"loaded_at,omitempty"`
	Quarantined   bool       `json:"quarantined"`
	LastError     *LastError `json:"last_error,omitempty"`
	Queued        int        `json:"queued"`
	OldestQueued  float64    `json:"oldest_queued_seconds"`
	Delivered     uint64     `json:"events_delivered"`
	Errors        uint64     `json:"handler_errors"`
	CutOffs       uint64     `json:"cut_offs"`
	Coalesced     uint64     `json:"coalesced"`
	Reloads       uint64     `json:"reloads"`
	FailedReloads uint64     `json:"failed_reloads"`
	Quarantines   uint64     `json:"quarantines"`
	// At the last memory check: table entries and the memory estimate
	// (strings plus 64 bytes an entry) that max-table-entries and
	// max-memory bound.
	HeldEntries int64 `json:"held_entries"`
	HeldBytes   int64 `json:"held_bytes"`
}

// LastError is the newest error of a script, with the place in the
// script it names, when it names one.
type LastError struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	File    string    `json:"file,omitempty"`
	Line    int       `json:"line,omitempty"`
}

// luaPlace finds "file.lua:12:" (runtime errors) or "file.lua line:12"
// (syntax errors) in a Lua error message.
var luaPlace = regexp.MustCompile(`([^\s:]+\.lua)(?::(\d+):| line:(\d+))`)

// scriptHealth is what a script's status needs beyond its counters;
// written by its goroutine and its loader, read by status requests.
type scriptHealth struct {
	mu          sync.Mutex
	loadedAt    time.Time
	quarantined bool
	lastErr     *LastError
	// handler is the duration of handler calls, for metrics.
	handler prometheus.Histogram
}

func newScriptHealth() *scriptHealth {
	return &scriptHealth{handler: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "edbgpd_script_handler_duration_seconds",
		Help:    "Duration of handler calls (on_best_path, on_peer_state).",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 9), // 10 µs to 0.65 s
	})}
}

func (h *scriptHealth) noteError(err error) {
	e := &LastError{Time: time.Now(), Message: err.Error()}
	if m := luaPlace.FindStringSubmatch(e.Message); m != nil {
		e.File = m[1]
		e.Line, _ = strconv.Atoi(m[2] + m[3])
	}
	h.mu.Lock()
	h.lastErr = e
	h.mu.Unlock()
}

func (h *scriptHealth) noteLoaded() {
	h.mu.Lock()
	h.loadedAt = time.Now()
	h.quarantined = false
	h.mu.Unlock()
}

func (h *scriptHealth) noteQuarantined() {
	h.mu.Lock()
	h.quarantined = true
	h.mu.Unlock()
}

// HandlerDuration is the histogram of the script's handler calls.
func (s *Script) HandlerDuration() prometheus.Histogram { return s.health.handler }

// Status reports the script's state; safe from any goroutine.
func (s *Script) Status() ScriptStatus {
	st := ScriptStatus{
		Name:          s.Name,
		File:          s.Path,
		Version:       s.Version(),
		Queued:        s.Queued(),
		OldestQueued:  s.queue.age().Seconds(),
		Delivered:     s.Stats.Delivered.Load(),
		Errors:        s.Stats.Errors.Load(),
		CutOffs:       s.Stats.CutOffs.Load(),
		Coalesced:     s.queue.coalescedCount(),
		Reloads:       s.Stats.Reloads.Load(),
		FailedReloads: s.Stats.Failed.Load(),
		Quarantines:   s.Stats.Quarantines.Load(),
		HeldEntries:   s.Stats.HeldEntries.Load(),
		HeldBytes:     s.Stats.HeldBytes.Load(),
	}
	st.Loaded = st.Version != ""
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if st.Loaded && !s.health.loadedAt.IsZero() {
		at := s.health.loadedAt
		st.LoadedAt = &at
	}
	st.Quarantined = s.health.quarantined
	if e := s.health.lastErr; e != nil {
		c := *e
		st.LastError = &c
	}
	return st
}
