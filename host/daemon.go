// Package host is the edbgpd daemon: it reads the config and wires the
// parts together (speaker, engine, notify, sink, metrics), applies a new
// config on SIGHUP, and stops them in order. What each part owns is in
// its own README.
package host

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/metrics"
	"github.com/edbgpd/edbgpd/host/notify"
	"github.com/edbgpd/edbgpd/host/sink"
	"github.com/edbgpd/edbgpd/host/speaker"
	"github.com/edbgpd/edbgpd/luaapi"
)

// Settings are what the command line tells the daemon.
type Settings struct {
	ConfigFile      string
	ConfigType      string
	APIHosts        string // GoBGP gRPC API; "" serves none
	Scripts         string // overrides the config's [edbgpd] scripts
	GracefulRestart bool
	Logger          *slog.Logger
	GoBGPLogLevel   slog.Level // of GoBGP's own log lines
	RecordFile      string     // write every event here as JSON lines; "" for none
	// NoEvents skips the event watch altogether: GoBGP alone, embedded
	// the same way, as the benchmark's floor. Scripts then get no events.
	NoEvents bool
}

// Daemon is GoBGP with scripts on its event stream.
type Daemon struct {
	settings Settings
	log      *slog.Logger
	speaker  *speaker.Speaker
	scripts  *engine.ScriptSet // nil when no scripts folder is configured
	throttle *engine.Throttle  // what scripts act through
	notifier *notify.Notifier
	record   *sink.Record // nil without --record
	kafka    *sink.Kafka  // nil unless [edbgpd.kafka] has brokers
	routerID string       // as started
	options  optionsInForce
}

// actions is what scripts may ask of the daemon: BGP from the speaker,
// notifications from the notifier.
type actions struct {
	*speaker.Speaker
	*notify.Notifier
}

var _ luaapi.Actions = actions{}

// Start reads the config, starts GoBGP and the scripts, and only then adds
// the neighbours, so that scripts decide what a peer gets before its
// session can come up.
func Start(s Settings) (*Daemon, error) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	cfg, err := LoadConfig(s.ConfigFile, s.ConfigType)
	if err != nil {
		return nil, err
	}
	if s.Scripts != "" {
		cfg.Options.Scripts = s.Scripts
	}
	d := &Daemon{settings: s, log: s.Logger, routerID: cfg.BGP.Global.Config.RouterId}
	setGC(cfg.Options, s.Logger)
	d.options.store(&cfg.Options)
	d.notifier = notify.New(cfg.Options.Notify.MaxInFlight,
		func(script string) notify.Allow { return d.options.load().grantFor(script).notifyAllow() },
		func() time.Duration { return time.Duration(d.options.load().Notify.Timeout) })
	d.speaker = speaker.New(speaker.Options{Logger: s.Logger, LogLevel: s.GoBGPLogLevel, APIHosts: s.APIHosts, EventSource: cfg.Options.EventSource,
		MaxRoutes: func(script string) int { return d.options.load().grantFor(script).MaxRoutes }})

	fail := func(err error) (*Daemon, error) {
		d.Stop()
		return nil, fmt.Errorf("config %s: %w", s.ConfigFile, err)
	}
	// Everything but the neighbours first.
	if err := d.speaker.Start(cfg.BGP, s.GracefulRestart); err != nil {
		return fail(err)
	}
	// The config's default export policy holds before any session can
	// come up; scripts loaded next may change it.
	if p := cfg.Options.DefaultExportPolicy; p != "" {
		if err := d.speaker.SetInitialExportPolicy(p); err != nil {
			return fail(fmt.Errorf("[edbgpd] default-export-policy: %w", err))
		}
	}
	if s.RecordFile != "" {
		if d.record, err = sink.NewRecord(s.RecordFile, s.Logger); err != nil {
			return fail(fmt.Errorf("event record: %w", err))
		}
	}
	if k := cfg.Options.Kafka; len(k.Brokers) > 0 {
		if d.kafka, err = sink.NewKafka(k, d.routerID, s.Logger); err != nil {
			return fail(fmt.Errorf("[edbgpd.kafka]: %w", err))
		}
	}
	if dir := cfg.Options.Scripts; dir != "" {
		d.throttle = engine.NewThrottle(actions{d.speaker, d.notifier}, d.speaker, cfg.Options.Throttle, engine.WallClock(), s.Logger)
		d.scripts = engine.NewScriptSet(dir, d.throttle, cfg.Options.Limits(), s.Logger)
		d.scripts.SetDataDir(cfg.Options.Data)
		d.scripts.SetGrants(func(name string) engine.Sandbox { return d.options.load().grantFor(name).sandbox() })
	}
	if !s.NoEvents {
		// GoBGP turns every best path into protobuf for a watcher, wanted
		// or not: watch only once somebody listens.
		if d.scripts != nil {
			d.scripts.OnActive(func() {
				if err := d.watch(); err != nil {
					d.log.Error("cannot watch GoBGP's events", "err", err)
				}
			})
		}
		if d.record != nil || d.kafka != nil {
			if err := d.watch(); err != nil {
				return fail(err)
			}
		}
	}
	if d.scripts != nil {
		if err := d.scripts.LoadAll(); err != nil {
			return fail(fmt.Errorf("scripts folder: %w", err))
		}
		if err := d.scripts.Watch(); err != nil {
			return fail(fmt.Errorf("watching scripts folder: %w", err))
		}
	}
	if err := d.speaker.SyncRoutes(cfg.Options.Routes); err != nil {
		return fail(err)
	}
	if err := d.speaker.Apply(cfg.BGP); err != nil {
		return fail(err)
	}
	d.log.Info("edbgpd started", "config", s.ConfigFile, "scripts", cfg.Options.Scripts,
		"neighbors", len(cfg.BGP.Neighbors), "routes", len(cfg.Options.Routes))
	return d, nil
}

// setGC applies [edbgpd] gc-percent and memory-limit, at start only: the
// heap GoBGP holds at a full table is most of the process, and how often
// the collector walks it is most of what edbgpd adds to GoBGP's time.
func setGC(o Options, log *slog.Logger) {
	if o.GCPercent != 0 {
		old := debug.SetGCPercent(o.GCPercent)
		log.Info("garbage collector", "gc_percent", o.GCPercent, "was", old)
	}
	if o.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(o.MemoryLimit))
		log.Info("garbage collector", "memory_limit_mib", int64(o.MemoryLimit)>>20)
	}
}

// Actions is what scripts act through (throttled, if scripts are on):
// for tests and tools that drive the daemon as a script would.
func (d *Daemon) Actions() luaapi.Actions {
	if d.throttle != nil {
		return d.throttle
	}
	return actions{d.speaker, d.notifier}
}

// Speaker is the BGP side, for tests that look at the RIB.
func (d *Daemon) Speaker() *speaker.Speaker { return d.speaker }

// Scripts is the scripts folder's engine; nil without one.
func (d *Daemon) Scripts() *engine.ScriptSet { return d.scripts }

// Reload re-reads the config file (SIGHUP). A file that does not read or
// validate changes nothing; otherwise the difference is applied and the
// scripts folder re-read.
func (d *Daemon) Reload() error {
	cfg, err := LoadConfig(d.settings.ConfigFile, d.settings.ConfigType)
	if err != nil {
		return fmt.Errorf("%w; keeping the running config", err)
	}
	if d.settings.Scripts != "" {
		cfg.Options.Scripts = d.settings.Scripts
	}
	running := d.options.load()
	if cfg.Options.Scripts != running.Scripts {
		d.log.Warn("the scripts folder changes only on restart", "running", running.Scripts, "config", cfg.Options.Scripts)
		cfg.Options.Scripts = running.Scripts
	}
	if err := d.speaker.Apply(cfg.BGP); err != nil {
		return fmt.Errorf("config %s: %w", d.settings.ConfigFile, err)
	}
	if err := d.speaker.SyncRoutes(cfg.Options.Routes); err != nil {
		return fmt.Errorf("config %s: %w", d.settings.ConfigFile, err)
	}
	if p := cfg.Options.DefaultExportPolicy; p != running.DefaultExportPolicy {
		// The operator changed it: that wins over what scripts set.
		if p == "" {
			p = luaapi.PolicyFull
		}
		if err := d.speaker.SetDefaultExportPolicy(p); err != nil {
			return fmt.Errorf("config %s: [edbgpd] default-export-policy: %w", d.settings.ConfigFile, err)
		}
		d.log.Info("default export policy set from the config", "policy", p)
	}
	// Allow-lists and grants apply from here on; LoadAll reloads the
	// scripts whose sandbox changed.
	d.options.store(&cfg.Options)
	if d.scripts != nil {
		if err := d.scripts.LoadAll(); err != nil {
			d.log.Error("scripts folder", "err", err)
		}
	}
	d.log.Info("config reloaded", "config", d.settings.ConfigFile)
	return nil
}

// watch starts the event stream from GoBGP to the scripts and the sinks.
func (d *Daemon) watch() error {
	idle := func() bool { return d.record == nil && d.kafka == nil && (d.scripts == nil || !d.scripts.Active()) }
	return d.speaker.Watch(fanOut{d}, idle)
}

// fanOut hands each event to the scripts and the sinks, in that order.
type fanOut struct{ d *Daemon }

func (f fanOut) Push(ev event.Event) {
	if f.d.scripts != nil {
		f.d.scripts.Dispatch(ev)
	}
	if f.d.record != nil {
		f.d.record.Push(ev)
	}
	if f.d.kafka != nil {
		f.d.kafka.Push(ev)
	}
}

// KafkaStats are the event stream's counters; false when it is off.
func (d *Daemon) KafkaStats() (sink.KafkaStats, bool) {
	if d.kafka == nil {
		return sink.KafkaStats{}, false
	}
	return d.kafka.Stats(), true
}

// ServeMetrics starts /metrics and /status on addr.
func (d *Daemon) ServeMetrics(addr string) (*metrics.Server, error) {
	return metrics.Serve(addr, d.sources())
}

// Status is the daemon as `edbgpd status` shows it.
func (d *Daemon) Status() metrics.Status { return metrics.StatusOf(d.sources()) }

func (d *Daemon) sources() metrics.Sources {
	return metrics.Sources{RouterID: d.routerID, Speaker: d.speaker, Scripts: d.scripts, Throttle: d.throttle, Kafka: d.kafka, Log: d.log}
}

// Stop unloads the scripts (on_unload runs), then stops GoBGP, which sends
// every peer a Cease NOTIFICATION, then the sinks.
func (d *Daemon) Stop() {
	if d.scripts != nil {
		d.scripts.Close()
	}
	d.speaker.Stop()
	if d.record != nil {
		d.record.Close()
	}
	if d.kafka != nil {
		d.kafka.Close(kafkaCloseTimeout)
	}
}

// kafkaCloseTimeout bounds how long shutdown waits for Kafka to take the
// events still buffered.
const kafkaCloseTimeout = 5 * time.Second
