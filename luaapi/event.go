// Package luaapi is the surface Lua scripts see: the event tables handed to
// on_best_path/on_peer_state and the "bgp" module of bound functions. It does
// not import GoBGP; host/ implements the Actions interface it needs.
package luaapi

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

func stringList(L *lua.LState, l []string) *lua.LTable {
	t := L.CreateTable(len(l), 0)
	for _, s := range l {
		t.Append(lua.LString(s))
	}
	return t
}

func unixSeconds(t time.Time) lua.LNumber {
	if t.IsZero() {
		return 0
	}
	return lua.LNumber(float64(t.UnixNano()) / 1e9)
}

// attributeKeys are the fields decoded on first access.
var attributeKeys = map[string]bool{
	"nexthop": true, "as_path": true, "as_path_string": true, "origin": true, "med": true,
	"local_pref": true, "communities": true, "large_communities": true, "extended_communities": true,
}

// EventTables builds event tables for one Lua state. It is owned by the
// state's goroutine, like the state.
type EventTables struct {
	index *lua.LFunction
	meta  *lua.LTable // of best-path event userdata
	env   *lua.LTable
}

// NewEventTables prepares L for event tables and event userdata. It makes
// the global pairs work on events.
func NewEventTables(L *lua.LState) *EventTables {
	x := &EventTables{index: L.NewFunction(lazyIndex), env: L.Env}
	x.meta = L.CreateTable(0, 4)
	x.meta.RawSetString("__index", L.NewFunction(x.indexEvent))
	x.meta.RawSetString("__newindex", L.NewFunction(x.newIndexEvent))
	x.meta.RawSetString("__tostring", L.NewFunction(x.eventString))
	x.meta.RawSetString("__metatable", lua.LString("best_path event"))
	if next := L.GetGlobal("next"); next != lua.LNil {
		L.SetGlobal("pairs", L.NewFunction(x.pairs(next)))
	}
	return x
}

// BestPath turns the event into the table a script's on_best_path
// receives. Cheap fields are set at once; the attributes are filled in on
// the first read of any of them (until then pairs() does not list them).
// Field names are the contract documented in README.md.
func (x *EventTables) BestPath(L *lua.LState, e *event.BestPath) *lua.LTable {
	t := L.CreateTable(0, 16)
	t.RawSetString("type", lua.LString("best_path"))
	t.RawSetString("seq", lua.LNumber(e.Seq))
	t.RawSetString("prefix", lua.LString(e.Prefix))
	t.RawSetString("family", lua.LString(e.Family))
	t.RawSetString("withdrawal", lua.LBool(e.Withdrawal))
	p := L.CreateTable(0, 3)
	p.RawSetString("address", lua.LString(e.Peer.Address))
	p.RawSetString("asn", lua.LNumber(e.Peer.ASN))
	p.RawSetString("router_id", lua.LString(e.Peer.RouterID))
	t.RawSetString("peer", p)
	t.RawSetString("timestamp", unixSeconds(e.Timestamp))
	if !e.Timestamp.IsZero() {
		t.RawSetString("age", lua.LNumber(time.Since(e.Timestamp).Seconds()))
	}
	m := L.CreateTable(0, 2)
	m.RawSetString("__index", x.index)
	m.RawSetString("__event", &lua.LUserData{Value: e})
	L.SetMetatable(t, m)
	return t
}

// lazyIndex is __index of best-path tables: on the first read of an
// attribute it decodes them all into the table and drops the metatable.
func lazyIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	key := L.CheckString(2)
	if !attributeKeys[key] {
		L.Push(lua.LNil)
		return 1
	}
	m, ok := L.GetMetatable(t).(*lua.LTable)
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	ud, ok := m.RawGetString("__event").(*lua.LUserData)
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	setAttributes(L, t, ud.Value.(*event.BestPath).Attrs())
	L.SetMetatable(t, lua.LNil)
	L.Push(t.RawGetString(key))
	return 1
}

func setAttributes(L *lua.LState, t *lua.LTable, a *event.Attributes) {
	t.RawSetString("nexthop", lua.LString(a.Nexthop))
	asp := L.CreateTable(len(a.ASPath), 0)
	for _, as := range a.ASPath {
		asp.Append(lua.LNumber(as))
	}
	t.RawSetString("as_path", asp)
	t.RawSetString("as_path_string", lua.LString(event.ASPathString(a.ASPath)))
	t.RawSetString("origin", lua.LString(a.Origin))
	if a.HasMED {
		t.RawSetString("med", lua.LNumber(a.MED))
	}
	if a.HasLocalPref {
		t.RawSetString("local_pref", lua.LNumber(a.LocalPref))
	}
	t.RawSetString("communities", stringList(L, a.Communities))
	t.RawSetString("large_communities", stringList(L, a.LargeCommunities))
	t.RawSetString("extended_communities", stringList(L, a.ExtendedCommunities))
}

// PeerState turns the event into the table a script's on_peer_state
// receives.
func (x *EventTables) PeerState(L *lua.LState, e *event.PeerState) *lua.LTable {
	t := L.CreateTable(0, 8)
	t.RawSetString("type", lua.LString("peer_state"))
	t.RawSetString("seq", lua.LNumber(e.Seq))
	t.RawSetString("peer", lua.LString(e.Peer.Address))
	t.RawSetString("asn", lua.LNumber(e.Peer.ASN))
	t.RawSetString("router_id", lua.LString(e.Peer.RouterID))
	t.RawSetString("state", lua.LString(e.State))
	if e.OldState != "" {
		t.RawSetString("old_state", lua.LString(e.OldState))
	}
	if e.Reason != "" {
		t.RawSetString("reason", lua.LString(e.Reason))
	}
	t.RawSetString("timestamp", unixSeconds(e.Timestamp))
	return t
}
