// Package speaker is edbgpd's BGP speaker: GoBGP embedded as a library.
// It is the only part of edbgpd that imports GoBGP's server and API: it
// starts the server, applies the config, turns GoBGP's watch into events,
// keeps per-peer export and import policies, originates routes, and does
// what scripts ask of BGP (luaapi.Actions, but Notify).
package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/config"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/edbgpd/edbgpd/host/event"
)

// Options say how to run GoBGP.
type Options struct {
	Logger   *slog.Logger
	LogLevel slog.Level // of GoBGP's own log lines
	APIHosts string     // where GoBGP's gRPC API listens; "" serves none
	// EventSource is where events come from: "" or "auto", GoBGP's own
	// watcher if its layout is the one edbgpd knows, else the public
	// WatchEvent; "watch-event", the public one always.
	EventSource string
	// MaxRoutes is how many routes a script may have announced at once,
	// asked at each announcement (SIGHUP may change it): > 0 that many,
	// < 0 no bound, 0 (or MaxRoutes nil) DefaultMaxRoutes.
	MaxRoutes func(script string) int
}

// DefaultMaxRoutes bounds the routes one script may have announced where
// the config says nothing: a loop of announcements must not flood every
// peer (and GoBGP's table).
const DefaultMaxRoutes = 10_000

// The event sources, as Stats and /status name them.
const (
	SourceNative     = "native"
	SourceWatchEvent = "watch-event"
)

// Speaker is GoBGP with edbgpd's policies, routes and event stream.
// Its methods may be called from any goroutine.
type Speaker struct {
	srv     *server.BgpServer
	log     *slog.Logger
	glog    *gobgpLogger
	policy  *exportPolicy // what edbgpd sends to each peer
	imports *exportPolicy // what edbgpd accepts from each peer
	routes  *originator
	conv    *converter

	watchMu   sync.Mutex
	stopWatch context.CancelFunc // nil until the watch runs

	eventSource string           // Options.EventSource
	maxRoutes   func(string) int // Options.MaxRoutes
	native      *nativeTypes     // GoBGP's own watcher checked and usable; nil: WatchEvent

	current    *oc.BgpConfigSet // as applied, edbgpd's policies included
	announced  announcements
	policyOp   sync.Mutex // one policy change (or config apply) at a time
	policyJobs jobs       // export policy changes scripts asked for, in order
}

// New starts GoBGP's server with no BGP yet (see Start).
func New(o Options) *Speaker {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	sp := &Speaker{log: o.Logger, eventSource: o.EventSource, maxRoutes: o.MaxRoutes}
	sp.glog = newGobgpLogger(o.Logger, gobgpLevel(o.LogLevel))
	opts := []server.ServerOption{server.LoggerOption(sp.glog)}
	if o.APIHosts != "" {
		const maxSize = 256 << 20
		opts = append(opts, server.GrpcListenAddress(o.APIHosts),
			server.GrpcOption([]grpc.ServerOption{grpc.MaxRecvMsgSize(maxSize), grpc.MaxSendMsgSize(maxSize)}))
	}
	sp.srv = server.NewBgpServer(opts...)
	go sp.srv.Serve()
	sp.policy = newExportPolicy(sp.srv, o.Logger)
	sp.imports = newImportPolicy(sp.srv, o.Logger)
	sp.routes = newOriginator(sp.srv, o.Logger)
	sp.conv = newConverter(o.Logger, sp.glog)
	return sp
}

// gobgpLevel maps slog's levels to GoBGP's.
func gobgpLevel(l slog.Level) gobgplog.LogLevel {
	switch {
	case l <= slog.LevelDebug:
		return gobgplog.DebugLevel
	case l <= slog.LevelInfo:
		return gobgplog.InfoLevel
	case l <= slog.LevelWarn:
		return gobgplog.WarnLevel
	}
	return gobgplog.ErrorLevel
}

// Start starts BGP with everything of cfg but the neighbours: global
// settings, defined sets and policies (edbgpd's own injected). Add the
// neighbours with Apply once scripts have decided what peers get.
func (sp *Speaker) Start(cfg *Config, gracefulRestart bool) error {
	unlock := sp.lockPolicies()
	base := sp.injectPolicies(cfg)
	base.Neighbors, base.PeerGroups, base.DynamicNeighbors = nil, nil, nil
	var err error
	sp.current, err = config.InitialConfig(context.Background(), sp.srv, base, gracefulRestart)
	unlock()
	if err == nil {
		err = sp.configErrors()
	}
	if err == nil {
		sp.chooseSource()
	}
	return err
}

// chooseSource checks GoBGP's own watcher, now that BGP runs and has no
// neighbours and no routes yet, and uses it if it is as edbgpd knows it.
func (sp *Speaker) chooseSource() {
	switch sp.eventSource {
	case "", "auto":
	case SourceWatchEvent:
		sp.log.Info("event source: GoBGP's public WatchEvent, as configured")
		return
	default:
		sp.log.Warn("unknown event-source; using auto", "event_source", sp.eventSource)
	}
	nt, err := probeNative(sp.srv, 2*time.Second)
	if err != nil {
		sp.log.Warn("event source: GoBGP's internal watcher is not the one edbgpd was built for; "+
			"using the public WatchEvent, which costs more per best path (BENCHMARKS.md)", "err", err)
		return
	}
	sp.native = &nt
	sp.log.Info("event source: GoBGP's internal watcher (native)")
}

// SetInitialExportPolicy sets what every peer is sent until a script
// says otherwise, before any session is up (no change to make effective).
func (sp *Speaker) SetInitialExportPolicy(policy string) error { return sp.policy.SetDefault(policy) }

// Apply brings GoBGP from the applied config to cfg with GoBGP's own
// UpdateConfig, edbgpd's policies kept in. Errors are GoBGP's config
// errors; what could be applied is applied.
func (sp *Speaker) Apply(cfg *Config) error {
	sp.policyOp.Lock()
	defer sp.policyOp.Unlock()
	defer sp.lockPolicies()()
	next := sp.injectPolicies(cfg)
	var err error
	sp.current, err = config.UpdateConfig(context.Background(), sp.srv, sp.current, next)
	if err == nil {
		err = sp.configErrors()
	}
	for _, p := range []*exportPolicy{sp.policy, sp.imports} {
		if rerr := p.reconcile(); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// SyncRoutes makes the routes edbgpd originates from config exactly
// routes: new ones announced, gone ones withdrawn.
func (sp *Speaker) SyncRoutes(routes []Route) error { return sp.routes.sync(routes) }

// Config is GoBGP's part of the config file, as GoBGP's own reader reads
// it.
type Config = oc.BgpConfigSet

// ReadConfig reads text, the config file at path minus edbgpd's section
// (same line numbers), with GoBGP's reader. That reader takes a file
// name: it gets a temporary file, and errors get path back.
func ReadConfig(path, typ string, text []byte) (*Config, error) {
	tmp, err := os.CreateTemp("", "edbgpd-config-*"+filepath.Ext(path))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	c, err := config.ReadConfigFile(tmp.Name(), typ)
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), tmp.Name(), path))
	}
	if id := c.Global.Config.RouterId; net.ParseIP(id) == nil {
		// GoBGP refuses it only when it starts: say so for -d too.
		return nil, fmt.Errorf("[global.config] router-id %q: want an IPv4 address", id)
	}
	return c, nil
}

// CheckConfig tells what is wrong with cfg and the default export policy
// edbgpd's section names, as far as can be told without applying them.
func CheckConfig(cfg *Config, defaultExport string) error {
	if p := defaultExport; p != "" && !isBuiltin(p) && !hasPolicy(cfg, p) {
		return fmt.Errorf("[edbgpd] default-export-policy %q: want full, default-only, none or a policy-definition of this file", p)
	}
	return nil
}

func hasPolicy(cfg *oc.BgpConfigSet, name string) bool {
	for _, d := range cfg.PolicyDefinitions {
		if d.Name == name {
			return true
		}
	}
	return false
}

// lockPolicies holds both per-peer policies still while the config is
// applied (GoBGP replaces all policies at once); it returns the unlock.
func (sp *Speaker) lockPolicies() func() {
	sp.policy.mu.Lock()
	sp.imports.mu.Lock()
	return func() {
		sp.imports.mu.Unlock()
		sp.policy.mu.Unlock()
	}
}

// injectPolicies records the file's own policy lists and returns the
// config with edbgpd's policies in it. Caller holds both locks.
func (sp *Speaker) injectPolicies(c *oc.BgpConfigSet) *oc.BgpConfigSet {
	sp.policy.setUser(c)
	sp.imports.setUser(c)
	return sp.imports.inject(sp.policy.inject(c))
}

func (sp *Speaker) configErrors() error {
	if errs := sp.glog.takeConfigErrors(); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Watch starts handing GoBGP's best paths (every family) and peer state
// changes to sink, in one watcher so that they come in the order GoBGP
// made them; a second call does nothing. GoBGP turns every best path into
// protobuf for a watcher, so watch only once somebody listens; idle, if
// not nil, tells when nobody does for a while, and best paths are then
// skipped before they are decoded. The sink is called on GoBGP's watcher
// goroutine: it must queue and return.
func (sp *Speaker) Watch(sink event.Sink, idle func() bool) error {
	sp.watchMu.Lock()
	defer sp.watchMu.Unlock()
	if sp.stopWatch != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp.stopWatch = cancel
	if sp.native != nil {
		sp.watchNative(ctx, sp.conv, *sp.native, sink, idle)
		return nil
	}
	return sp.watchPublic(ctx, sp.conv, sink, idle)
}

// watchPublic is the event source on GoBGP's public WatchEvent: every
// path comes as protobuf, turned into an event by conv.
func (sp *Speaker) watchPublic(ctx context.Context, conv *converter, sink event.Sink, idle func() bool) error {
	return sp.srv.WatchEvent(ctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST},
		}},
	}, func(r *api.WatchEventResponse) {
		if idle != nil && idle() {
			if _, ok := r.Event.(*api.WatchEventResponse_Table); ok {
				return // nobody listens: skip the decoding
			}
		}
		conv.convert(r, sink.Push)
	})
}

// Stop stops the watch and GoBGP, which sends every peer a Cease. A
// policy change still queued then fails (logged): the sessions are over.
func (sp *Speaker) Stop() {
	sp.watchMu.Lock()
	if sp.stopWatch != nil {
		sp.stopWatch()
	}
	sp.watchMu.Unlock()
	sp.srv.Stop()
}

// Stats are the event stream's counters.
type Stats struct {
	BestPaths  uint64 // best-path events made
	PeerStates uint64 // peer-state events made
	LastSeq    uint64 // sequence number of the newest event
	// Conversion is the time to turn one GoBGP best path into an event.
	Conversion prometheus.Histogram
	// Source is where events come from: SourceNative or SourceWatchEvent.
	Source string
}

// Stats reads the counters; safe from any goroutine.
func (sp *Speaker) Stats() Stats {
	src := SourceWatchEvent
	if sp.native != nil {
		src = SourceNative
	}
	return Stats{BestPaths: sp.conv.bestPaths.Load(), PeerStates: sp.conv.peerEvents.Load(),
		LastSeq: sp.conv.lastSeq(), Conversion: sp.conv.convTime, Source: src}
}

// PeerCounts is one neighbour's session and prefix counts.
type PeerCounts struct {
	Address  string
	State    string // idle ... established
	Families []FamilyCounts
}

// FamilyCounts are a neighbour's prefix counts in one family.
type FamilyCounts struct {
	Family                         string
	Received, Accepted, Advertised uint64
}

// PeerCounts lists every neighbour's counts, as GoBGP has them.
func (sp *Speaker) PeerCounts(ctx context.Context) []PeerCounts {
	var out []PeerCounts
	sp.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		pc := PeerCounts{Address: p.GetState().GetNeighborAddress(), State: sessionStates[p.GetState().GetSessionState()]}
		if pc.Address == "" {
			pc.Address = p.GetConf().GetNeighborAddress()
		}
		for _, af := range p.GetAfiSafis() {
			st := af.GetState()
			if st == nil || st.Family == nil {
				continue
			}
			pc.Families = append(pc.Families, FamilyCounts{Family: apiutil.ToRouteFamily(st.Family).String(),
				Received: st.Received, Accepted: st.Accepted, Advertised: st.Advertised})
		}
		out = append(out, pc)
	})
	return out
}
