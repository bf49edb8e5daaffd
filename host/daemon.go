package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/grpc"

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
	GoBGPLogLevel   gobgplog.LogLevel
	RecordFile      string // write every event here as JSON lines; "" for none
	// NoEvents skips the event watch altogether: GoBGP alone, embedded
	// the same way, as the benchmark's floor. Scripts then get no events.
	NoEvents bool
}

// Daemon is GoBGP with scripts on its event stream.
type Daemon struct {
	Server  *server.BgpServer
	Scripts *ScriptSet // nil when no scripts folder is configured
	// Throttle is what scripts act through: it paces repeated actions.
	Throttle *throttle

	settings  Settings
	log       *slog.Logger
	glog      *gobgpLogger
	policy    *exportPolicy // what edbgpd sends to each peer
	imports   *exportPolicy // what edbgpd accepts from each peer
	routes    *originator
	conv      *converter
	watchMu   sync.Mutex
	stopWatch context.CancelFunc      // nil until the watch runs
	current   *oc.BgpConfigSet        // as applied, edbgpd's policy included
	options   atomic.Pointer[Options] // the [edbgpd] section in force (SIGHUP replaces it)

	announced announcements
	policyOp  sync.Mutex // one policy change (or config apply) at a time
	record    *eventLog
	kafka     *kafkaStream // nil unless [edbgpd.kafka] has brokers
	routerID  string       // as started
	notifier  *notifier
}

// Start reads the config, starts GoBGP and the scripts, and only then adds
// the neighbours, so that scripts decide what a peer gets before its
// session can come up.
func Start(s Settings) (*Daemon, error) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.GoBGPLogLevel == 0 {
		s.GoBGPLogLevel = gobgplog.InfoLevel
	}
	cfg, err := LoadConfig(s.ConfigFile, s.ConfigType)
	if err != nil {
		return nil, err
	}
	if s.Scripts != "" {
		cfg.Options.Scripts = s.Scripts
	}
	d := &Daemon{settings: s, log: s.Logger}
	d.options.Store(&cfg.Options)
	d.notifier = newNotifier(d.options.Load)
	d.glog = newGobgpLogger(s.Logger, s.GoBGPLogLevel)
	opts := []server.ServerOption{server.LoggerOption(d.glog)}
	if s.APIHosts != "" {
		const maxSize = 256 << 20
		opts = append(opts, server.GrpcListenAddress(s.APIHosts),
			server.GrpcOption([]grpc.ServerOption{grpc.MaxRecvMsgSize(maxSize), grpc.MaxSendMsgSize(maxSize)}))
	}
	d.Server = server.NewBgpServer(opts...)
	go d.Server.Serve()
	d.policy = newExportPolicy(d.Server, s.Logger)
	d.imports = newImportPolicy(d.Server, s.Logger)
	d.routes = newOriginator(d.Server, s.Logger)
	d.conv = newConverter(s.Logger, d.glog)

	ctx := context.Background()
	fail := func(err error) (*Daemon, error) {
		d.Stop()
		return nil, fmt.Errorf("config %s: %w", s.ConfigFile, err)
	}
	// Everything but the neighbours first.
	unlock := d.lockPolicies()
	base := d.injectPolicies(cfg.BGP)
	base.Neighbors, base.PeerGroups, base.DynamicNeighbors = nil, nil, nil
	d.current, err = config.InitialConfig(ctx, d.Server, base, s.GracefulRestart)
	unlock()
	if err == nil {
		err = d.configErrors()
	}
	if err != nil {
		return fail(err)
	}
	// The config's default export policy holds before any session can
	// come up; scripts loaded next may change it.
	if p := cfg.Options.DefaultExportPolicy; p != "" {
		if err := d.policy.SetDefault(p); err != nil {
			return fail(fmt.Errorf("[edbgpd] default-export-policy: %w", err))
		}
	}
	if s.RecordFile != "" {
		if d.record, err = newEventLog(s.RecordFile, s.Logger); err != nil {
			return fail(fmt.Errorf("event record: %w", err))
		}
	}
	d.routerID = cfg.BGP.Global.Config.RouterId
	if k := cfg.Options.Kafka; len(k.Brokers) > 0 {
		if d.kafka, err = newKafkaStream(k, d.routerID, s.Logger); err != nil {
			return fail(fmt.Errorf("[edbgpd.kafka]: %w", err))
		}
	}
	if dir := cfg.Options.Scripts; dir != "" {
		d.Throttle = newThrottle(d, cfg.Options.Throttle, wallClock{}, s.Logger)
		d.Scripts = NewScriptSet(dir, d.Throttle, cfg.Options.Limits(), s.Logger)
		d.Scripts.SetDataDir(cfg.Options.Data)
		d.Scripts.SetGrants(func(name string) Grant { return d.options.Load().grantFor(name) })
	}
	if !s.NoEvents {
		// GoBGP turns every best path into protobuf for a watcher, wanted
		// or not: watch only once somebody listens.
		if d.Scripts != nil {
			d.Scripts.onActive = func() {
				if err := d.ensureWatch(); err != nil {
					d.log.Error("cannot watch GoBGP's events", "err", err)
				}
			}
		}
		if d.record != nil || d.kafka != nil {
			if err := d.ensureWatch(); err != nil {
				return fail(err)
			}
		}
	}
	if d.Scripts != nil {
		if err := d.Scripts.LoadAll(); err != nil {
			return fail(fmt.Errorf("scripts folder: %w", err))
		}
		if err := d.Scripts.Watch(); err != nil {
			return fail(fmt.Errorf("watching scripts folder: %w", err))
		}
	}
	if err := d.routes.sync(cfg.Options.Routes); err != nil {
		return fail(err)
	}
	if err := d.applyConfig(cfg); err != nil {
		return fail(err)
	}
	d.log.Info("edbgpd started", "config", s.ConfigFile, "scripts", cfg.Options.Scripts,
		"neighbors", len(cfg.BGP.Neighbors), "routes", len(cfg.Options.Routes))
	return d, nil
}

// applyConfig brings GoBGP from the applied config to cfg with GoBGP's own
// UpdateConfig, edbgpd's export policy kept in. Errors are GoBGP's config
// errors; what could be applied is applied.
func (d *Daemon) applyConfig(cfg *Config) error {
	d.policyOp.Lock()
	defer d.policyOp.Unlock()
	defer d.lockPolicies()()
	next := d.injectPolicies(cfg.BGP)
	var err error
	d.current, err = config.UpdateConfig(context.Background(), d.Server, d.current, next)
	if err == nil {
		err = d.configErrors()
	}
	for _, p := range []*exportPolicy{d.policy, d.imports} {
		if rerr := p.reconcile(); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// lockPolicies holds both per-peer policies still while the config is
// applied (GoBGP replaces all policies at once); it returns the unlock.
func (d *Daemon) lockPolicies() func() {
	d.policy.mu.Lock()
	d.imports.mu.Lock()
	return func() {
		d.imports.mu.Unlock()
		d.policy.mu.Unlock()
	}
}

// injectPolicies records the file's own policy lists and returns the
// config with edbgpd's policies in it. Caller holds both locks.
func (d *Daemon) injectPolicies(c *oc.BgpConfigSet) *oc.BgpConfigSet {
	d.policy.setUser(c)
	d.imports.setUser(c)
	return d.imports.inject(d.policy.inject(c))
}

func (d *Daemon) configErrors() error {
	if errs := d.glog.takeConfigErrors(); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

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
	running := d.options.Load()
	if cfg.Options.Scripts != running.Scripts {
		d.log.Warn("the scripts folder changes only on restart", "running", running.Scripts, "config", cfg.Options.Scripts)
		cfg.Options.Scripts = running.Scripts
	}
	if err := d.applyConfig(cfg); err != nil {
		return fmt.Errorf("config %s: %w", d.settings.ConfigFile, err)
	}
	if err := d.routes.sync(cfg.Options.Routes); err != nil {
		return fmt.Errorf("config %s: %w", d.settings.ConfigFile, err)
	}
	if p := cfg.Options.DefaultExportPolicy; p != running.DefaultExportPolicy {
		// The operator changed it: that wins over what scripts set.
		if p == "" {
			p = luaapi.PolicyFull
		}
		if err := d.SetDefaultExportPolicy(p); err != nil {
			return fmt.Errorf("config %s: [edbgpd] default-export-policy: %w", d.settings.ConfigFile, err)
		}
		d.log.Info("default export policy set from the config", "policy", p)
	}
	// Allow-lists and grants apply from here on; LoadAll reloads the
	// scripts whose sandbox changed.
	d.options.Store(&cfg.Options)
	if d.Scripts != nil {
		if err := d.Scripts.LoadAll(); err != nil {
			d.log.Error("scripts folder", "err", err)
		}
	}
	d.log.Info("config reloaded", "config", d.settings.ConfigFile)
	return nil
}

// ensureWatch starts the watch if it is not running.
func (d *Daemon) ensureWatch() error {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	if d.stopWatch != nil {
		return nil
	}
	return d.watch()
}

// watch subscribes to best paths of every family and peer state changes,
// in one watcher so that they reach scripts in the order GoBGP made them.
// The callback runs on GoBGP's watcher goroutine: convert, queue, return.
func (d *Daemon) watch() error {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	return d.Server.WatchEvent(ctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST},
		}},
	}, func(r *api.WatchEventResponse) {
		if d.record == nil && d.kafka == nil && (d.Scripts == nil || len(*d.Scripts.live.Load()) == 0) {
			if _, ok := r.Event.(*api.WatchEventResponse_Table); ok {
				return // nobody listens: skip the decoding
			}
		}
		d.conv.convert(r, d.dispatch)
	})
}

func (d *Daemon) dispatch(ev any) {
	if d.Scripts != nil {
		d.Scripts.Dispatch(ev)
	}
	if d.record != nil {
		d.record.push(ev)
	}
	if d.kafka != nil {
		d.kafka.push(ev)
	}
}

// Stop unloads the scripts (on_unload runs), then stops GoBGP, which sends
// every peer a Cease NOTIFICATION.
func (d *Daemon) Stop() {
	if d.Scripts != nil {
		d.Scripts.Close()
	}
	d.watchMu.Lock()
	if d.stopWatch != nil {
		d.stopWatch()
	}
	d.watchMu.Unlock()
	d.Server.Stop()
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
