package luaapi

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
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
	ExportPolicy string // as last set by a script; "" if never set
	Description  string
}

// Actions is everything the bgp module asks of the daemon. host/
// implements it against GoBGP; tests use a recording fake. Calls come from
// a script's goroutine and must return quickly: a Lua deadline cannot
// interrupt a Go call.
type Actions interface {
	SetExportPolicy(peer, policy string) error
	SetDefaultExportPolicy(policy string) error
	Peers() ([]PeerStatus, error)
}

// Runtime is what the module asks of the script runtime hosting it:
// timers that call back on the script's own goroutine, and persistence of
// the script's state table.
type Runtime interface {
	// StartTimer calls fn after delay, then every period if period > 0.
	StartTimer(delay, period time.Duration, fn *lua.LFunction) int
	// CancelTimer stops a timer; false if there was none with that id.
	CancelTimer(id int) bool
	// PersistState asks for the state table to be kept across restarts.
	PersistState(on bool) error
	// Now is the script's clock (a fake one in the offline runner).
	Now() time.Time
}

// Module is the "bgp" module of one script version.
type Module struct {
	actions Actions
	runtime Runtime
	log     *slog.Logger
	state   *lua.LTable
	cause   uint64 // sequence number of the event being handled, 0 if none
}

// NewModule binds the module to the daemon's actions, the script runtime,
// the script's logger and its state table (carried over reloads by the
// runtime; nil for a fresh one).
func NewModule(a Actions, rt Runtime, log *slog.Logger, state *lua.LTable) *Module {
	return &Module{actions: a, runtime: rt, log: log, state: state}
}

// SetCause records the event whose handler runs now, for the audit log.
func (m *Module) SetCause(seq uint64) { m.cause = seq }

// State is the script's state table.
func (m *Module) State() *lua.LTable { return m.state }

// functions is the whole module: adding a bound function is one line here
// plus its method below.
func (m *Module) functions() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"log":                       m.logFn,
		"peers":                     m.peers,
		"set_export_policy":         m.setExportPolicy,
		"set_default_export_policy": m.setDefaultExportPolicy,
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
	}
}

// Preload makes `require("bgp")` return the module in L. The module's
// `state` field is the script's state table.
func (m *Module) Preload(L *lua.LState) {
	if m.state == nil {
		m.state = L.NewTable()
	}
	L.PreloadModule("bgp", func(L *lua.LState) int {
		t := L.SetFuncs(L.NewTable(), m.functions())
		t.RawSetString("state", m.state)
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
func where(L *lua.LState) string {
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
	m.log.Log(context.Background(), level, strings.Join(parts, " "), "at", where(L))
	return 0
}

// bgp.peers() -> list of {address, asn, router_id, state, export_policy, description}
func (m *Module) peers(L *lua.LState) int {
	ps, err := m.actions.Peers()
	if err != nil {
		return fail(L, err)
	}
	t := L.CreateTable(len(ps), 0)
	for _, p := range ps {
		e := L.CreateTable(0, 6)
		e.RawSetString("address", lua.LString(p.Address))
		e.RawSetString("asn", lua.LNumber(p.ASN))
		e.RawSetString("router_id", lua.LString(p.RouterID))
		e.RawSetString("state", lua.LString(p.State))
		e.RawSetString("export_policy", lua.LString(p.ExportPolicy))
		e.RawSetString("description", lua.LString(p.Description))
		t.Append(e)
	}
	L.Push(t)
	return 1
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
	err := m.actions.SetExportPolicy(peer, policy)
	m.audit(L, "set_export_policy", err, "peer", peer, "policy", policy)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// bgp.set_default_export_policy(policy) -> true | nil, reason. It applies to
// every peer no script has set a policy for, including peers added later.
func (m *Module) setDefaultExportPolicy(L *lua.LState) int {
	policy := L.CheckString(1)
	if policy == "" {
		L.ArgError(1, "bgp.set_default_export_policy: policy name is empty")
	}
	err := m.actions.SetDefaultExportPolicy(policy)
	m.audit(L, "set_default_export_policy", err, "policy", policy)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// audit logs every action a script takes with its outcome and the event
// (sequence number) that caused it.
func (m *Module) audit(L *lua.LState, action string, err error, args ...any) {
	args = append(args, "action", action, "at", where(L))
	if m.cause != 0 {
		args = append(args, "event_seq", m.cause)
	}
	if err != nil {
		m.log.Warn("script action failed", append(args, "err", err)...)
		return
	}
	m.log.Info("script action", args...)
}
