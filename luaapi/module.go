package luaapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// Built-in export policy names understood by set_export_policy. Any other
// name must be a policy-definition of the daemon's config file.
const (
	PolicyFull        = "full"         // everything the daemon's export rules allow
	PolicyDefaultOnly = "default-only" // only 0.0.0.0/0 and ::/0
	PolicyNone        = "none"         // nothing
)

// PeerStatus is what bgp.peers() reports for one configured neighbour.
type PeerStatus struct {
	Address      string
	ASN          uint32
	RouterID     string
	State        string
	ExportPolicy string // as scripts set it (or the default they set)
	ImportPolicy string // as scripts set it; "full" when none did
	Description  string
	AdminDown    bool
	Received     uint64 // prefixes received, all families
	Accepted     uint64
	Advertised   uint64
	Uptime       float64 // seconds in Established; 0 when not
	Flaps        uint32
}

// Actions is everything the bgp module asks of the daemon. The daemon
// implements it with host/speaker (BGP) and host/notify (Notify), behind
// host/engine's throttle; tests use a recording fake. Calls come from a
// script's goroutine and must return quickly: a Lua deadline cannot
// interrupt a Go call.
type Actions interface {
	SetExportPolicy(peer, policy string) error
	SetDefaultExportPolicy(policy string) error
	// SetImportPolicy sets what the daemon accepts from one peer: the same
	// policy names as SetExportPolicy, applied to the routes it sends.
	SetImportPolicy(peer, policy string) error
	Peers() ([]PeerStatus, error)
	Peer(address string) (*PeerStatus, error)
	ResetPeer(address, how string) error // how: hard, soft, soft-in, soft-out
	SetPeerEnabled(address string, enabled bool) error
	// Announce originates r from the daemon's RIB on behalf of script,
	// replacing what that script announced for the same prefix.
	Announce(script string, r Route) error
	// Withdraw removes what script announced for prefix.
	Withdraw(script, prefix string) error
	// BestPath is the best path of exactly prefix; nil if there is none.
	BestPath(prefix string) (*event.BestPath, error)
	// Lookup is the best path of the longest prefix covering address.
	Lookup(address string) (*event.BestPath, error)
	// Received is the path peer sent for exactly prefix (its Adj-RIB-In,
	// after import policy); nil if it sent none.
	Received(peer, prefix string) (*event.BestPath, error)
	// Replay calls fn with the current best path of every prefix of the
	// families (all unicast when empty) and returns the sequence number
	// of the last event made before the walk began.
	Replay(families []string, fn func(*event.BestPath)) (uint64, error)
	// PreviewExportPolicy tells what setting peer's export policy would
	// add to and withdraw from what the peer is sent, without doing it.
	PreviewExportPolicy(peer, policy string) (add, withdraw []string, err error)
	// RIBPrefixes lists the prefixes with a best path in family, in the
	// RIB's order.
	RIBPrefixes(family string) ([]string, error)
	// BestPaths returns the best paths of these exact prefixes (those that
	// still have one).
	BestPaths(prefixes []string) ([]*event.BestPath, error)
	// DefinedSet adds entries to (op "add") or removes them from (op
	// "remove") a GoBGP defined-set of kind prefix, neighbor, community,
	// ext-community, large-community or as-path.
	DefinedSet(op, kind, name string, entries []string) error
	// Notify checks n against the allow-list and starts it in the
	// background; done gets the outcome from another goroutine.
	Notify(script string, n Notification, done func(NotifyResult)) error
}

// Notification is an HTTP POST of a JSON body, or a command run with
// arguments (no shell).
type Notification struct {
	URL     string   // HTTP POST target; or
	Command string   // program to run
	Args    []string // its arguments
	Body    []byte   // JSON body of the POST, or the command's standard input
}

// Deferred is what an action returns when it was taken but will be done
// later (throttled): the script sees success, the audit log says when.
type Deferred struct{ In time.Duration }

func (d *Deferred) Error() string { return fmt.Sprintf("deferred %v (throttled)", d.In) }

// NotifyResult is what a notification's callback receives.
type NotifyResult struct {
	OK     bool
	Status int    // HTTP status, or the command's exit code
	Output string // response body or command output, truncated
	Error  string
}

// Route is what a script announces.
type Route struct {
	Prefix           string
	Nexthop          string   // "" for the daemon's own address
	Origin           string   // igp (default), egp, incomplete
	ASPath           []uint32 // AS_PATH of the route (GoBGP adds its own AS on eBGP)
	Prepend          int      // copies of the daemon's own AS put in front of ASPath
	Communities      []string
	LargeCommunities []string
	MED              *uint32
	LocalPref        *uint32
}

// Runtime is what the module asks of the script runtime hosting it:
// timers that call back on the script's own goroutine, and persistence of
// the script's state table.
type Runtime interface {
	// StartTimer calls fn after delay, then every period if period > 0;
	// an error when the script has too many timers.
	StartTimer(delay, period time.Duration, fn *lua.LFunction) (int, error)
	// CancelTimer stops a timer; false if there was none with that id.
	CancelTimer(id int) bool
	// PersistState asks for the state table to be kept across restarts.
	PersistState(on bool) error
	// Now is the script's clock (a fake one in the offline runner).
	Now() time.Time
	// Callback calls fn(result) later on the script's goroutine, if the
	// version that asked is still the running one.
	Callback(fn *lua.LFunction, result map[string]any)
	// Subscribe replaces what the script receives; only while loading.
	Subscribe(s *Subscription) error
	// Walk calls fn(path) for every best path of the family, chunk paths
	// at a time on the script's goroutine, with events handled between
	// chunks, then done(count). It returns at once.
	Walk(w WalkRequest) error
	// Outside runs fn, a daemon call that may take long (a policy change
	// lists what a peer is sent), without counting its time against the
	// handler's call deadline, which is there for runaway Lua.
	Outside(fn func())
}

// WalkRequest is a bgp.walk call.
type WalkRequest struct {
	Family string
	Chunk  int
	Fn     *lua.LFunction
	Done   *lua.LFunction // may be nil
}

// Module is the "bgp" module of one script version.
type Module struct {
	Options
	cause  uint64 // sequence number of the event being handled, 0 if none
	tables *EventTables
}

// Options bind a module to its script.
type Options struct {
	Script  string // file name: owner of announcements, name in logs
	Actions Actions
	Runtime Runtime
	Log     *slog.Logger
	State   *lua.LTable // carried over reloads by the runtime; nil: fresh
}

// NewModule binds the module to the daemon's actions and the script.
func NewModule(o Options) *Module {
	return &Module{Options: o}
}

// SetCause records the event whose handler runs now, for the audit log.
func (m *Module) SetCause(seq uint64) { m.cause = seq }

// State is the script's state table.
func (m *Module) State() *lua.LTable { return m.Options.State }

// functions is the whole module: adding a bound function is one line here
// plus its method below.
func (m *Module) functions() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"log":                       m.logFn,
		"peers":                     m.peers,
		"set_export_policy":         m.setExportPolicy,
		"set_default_export_policy": m.setDefaultExportPolicy,
		"set_import_policy":         m.setImportPolicy,
		"preview_export_policy":     m.previewExportPolicy,
		"after":                     m.after,
		"every":                     m.every,
		"cancel":                    m.cancel,
		"persist_state":             m.persistState,
		"json_encode":               jsonEncode,
		"json_decode":               jsonDecode,
		"parse_prefix":              parsePrefix,
		"prefix_contains":           prefixContains,
		"prefix_overlap":            prefixOverlap,
		"parse_community":           parseCommunity,
		"format_community":          formatCommunity,
		"now":                       m.now,
		"peer":                      m.peer,
		"reset_peer":                m.resetPeer,
		"enable_peer":               m.enablePeer,
		"disable_peer":              m.disablePeer,
		"announce":                  m.announce,
		"withdraw":                  m.withdraw,
		"best_path":                 m.bestPath,
		"lookup":                    m.lookup,
		"received":                  m.received,
		"subscribe":                 m.subscribe,
		"walk":                      m.walk,
		"defined_set_add":           m.definedSetAdd,
		"defined_set_remove":        m.definedSetRemove,
		"http_post":                 m.httpPost,
		"exec":                      m.exec,
	}
}

// Preload makes `require("bgp")` return the module in L. The module's
// `state` field is the script's state table.
func (m *Module) Preload(L *lua.LState) {
	if m.Options.State == nil {
		m.Options.State = L.NewTable()
	}
	m.tables = NewEventTables(L)
	L.PreloadModule("bgp", func(L *lua.LState) int {
		fns := m.functions()
		for name, fn := range fns {
			fns[name] = named(name, fn)
		}
		t := L.SetFuncs(L.NewTable(), fns)
		t.RawSetString("state", m.Options.State)
		L.Push(t)
		return 1
	})
}

// fail returns nil, reason: the Lua way to report an expected failure.
func fail(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(err.Error()))
	return 2
}

// where names the script line that called a bound function, for logs.
// where is the script line that called the bound function: the nearest
// Lua frame, so a call through pcall names the line of the pcall.
func where(L *lua.LState) string {
	for level := 1; level < 16; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			return fmt.Sprintf("%s:%d", dbg.Source, dbg.CurrentLine)
		}
	}
	return strings.TrimSuffix(L.Where(1), ":")
}

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// bgp.log(level, ...): values are joined with spaces like print.
func (m *Module) logFn(L *lua.LState) int {
	name := L.CheckString(1)
	level, ok := levels[name]
	if !ok {
		L.ArgError(1, fmt.Sprintf("bgp.log: level must be debug, info, warn or error, not %q", name))
	}
	parts := make([]string, 0, L.GetTop()-1)
	for i := 2; i <= L.GetTop(); i++ {
		parts = append(parts, L.ToStringMeta(L.Get(i)).String())
	}
	m.Log.Log(context.Background(), level, strings.Join(parts, " "), "at", where(L))
	return 0
}

// bgp.peers() -> list of {address, asn, router_id, state, export_policy, import_policy, description, ...}
func (m *Module) peers(L *lua.LState) int {
	ps, err := m.Actions.Peers()
	if err != nil {
		return fail(L, err)
	}
	t := L.CreateTable(len(ps), 0)
	for i := range ps {
		t.Append(peerTable(L, &ps[i]))
	}
	L.Push(t)
	return 1
}

func peerTable(L *lua.LState, p *PeerStatus) *lua.LTable {
	e := L.CreateTable(0, 10)
	e.RawSetString("address", lua.LString(p.Address))
	e.RawSetString("asn", lua.LNumber(p.ASN))
	e.RawSetString("router_id", lua.LString(p.RouterID))
	e.RawSetString("state", lua.LString(p.State))
	e.RawSetString("admin_down", lua.LBool(p.AdminDown))
	e.RawSetString("export_policy", lua.LString(p.ExportPolicy))
	e.RawSetString("import_policy", lua.LString(p.ImportPolicy))
	e.RawSetString("description", lua.LString(p.Description))
	e.RawSetString("received", lua.LNumber(p.Received))
	e.RawSetString("accepted", lua.LNumber(p.Accepted))
	e.RawSetString("advertised", lua.LNumber(p.Advertised))
	e.RawSetString("uptime", lua.LNumber(p.Uptime))
	e.RawSetString("flaps", lua.LNumber(p.Flaps))
	return e
}

// bgp.set_export_policy(peer, policy) -> true | nil, reason
func (m *Module) setExportPolicy(L *lua.LState) int {
	peer := L.CheckString(1)
	policy := L.CheckString(2)
	if peer == "" {
		L.ArgError(1, "bgp.set_export_policy: peer address is empty")
	}
	if policy == "" {
		L.ArgError(2, "bgp.set_export_policy: policy name is empty")
	}
	var err error
	m.Runtime.Outside(func() { err = m.Actions.SetExportPolicy(peer, policy) })
	m.audit(L, "set_export_policy", err, "peer", peer, "policy", policy)
	return result(L, err)
}

// bgp.preview_export_policy(peer, policy) -> {add = {...}, withdraw = {...}}
// | nil, reason: a dry run of set_export_policy.
func (m *Module) previewExportPolicy(L *lua.LState) int {
	peer := checkAddress(L, 1, "bgp.preview_export_policy")
	policy := L.CheckString(2)
	var add, withdraw []string
	var err error
	m.Runtime.Outside(func() { add, withdraw, err = m.Actions.PreviewExportPolicy(peer, policy) })
	if err != nil {
		return fail(L, err)
	}
	t := L.CreateTable(0, 2)
	t.RawSetString("add", stringList(L, add))
	t.RawSetString("withdraw", stringList(L, withdraw))
	L.Push(t)
	return 1
}

// bgp.set_import_policy(peer, policy) -> true | nil, reason
func (m *Module) setImportPolicy(L *lua.LState) int {
	peer := checkAddress(L, 1, "bgp.set_import_policy")
	policy := L.CheckString(2)
	if policy == "" {
		L.ArgError(2, "bgp.set_import_policy: policy name is empty")
	}
	var err error
	m.Runtime.Outside(func() { err = m.Actions.SetImportPolicy(peer, policy) })
	m.audit(L, "set_import_policy", err, "peer", peer, "policy", policy)
	return result(L, err)
}

// bgp.set_default_export_policy(policy) -> true | nil, reason. It applies to
// every peer no script has set a policy for, including peers added later.
func (m *Module) setDefaultExportPolicy(L *lua.LState) int {
	policy := L.CheckString(1)
	if policy == "" {
		L.ArgError(1, "bgp.set_default_export_policy: policy name is empty")
	}
	var err error
	m.Runtime.Outside(func() { err = m.Actions.SetDefaultExportPolicy(policy) })
	m.audit(L, "set_default_export_policy", err, "policy", policy)
	return result(L, err)
}

// audit logs every action a script takes with its outcome and the event
// (sequence number) that caused it.
func (m *Module) audit(L *lua.LState, action string, err error, args ...any) {
	args = append(args, "action", action, "at", where(L))
	if m.cause != 0 {
		args = append(args, "event_seq", m.cause)
	}
	var later *Deferred
	if errors.As(err, &later) {
		m.Log.Info("script action deferred (throttled)", append(args, "in", later.In.Round(time.Millisecond))...)
		return
	}
	if err != nil {
		m.Log.Warn("script action failed", append(args, "err", err)...)
		return
	}
	m.Log.Info("script action", args...)
}

var badArgument = regexp.MustCompile(`(?s)^(.*?bad argument #\d+ to )(.*?)( \(.*)$`)

// named makes fn's argument errors name it. gopher-lua takes the name
// from the call site, which is "(anonymous)" under pcall(bgp.after, ...)
// and "f" after local f = bgp.after.
func named(name string, fn lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(*lua.ApiError); ok {
					if msg, ok := e.Object.(lua.LString); ok {
						e.Object = lua.LString(badArgument.ReplaceAllString(string(msg), "${1}"+name+"${3}"))
					}
				}
				panic(r)
			}
		}()
		return fn(L)
	}
}
