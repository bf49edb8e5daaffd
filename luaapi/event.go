// Package luaapi is the surface Lua scripts see: the events handed to
// on_best_path/on_peer_state and the "bgp" module of bound functions. It
// does not import GoBGP; the daemon implements the Actions interface it
// needs. A best path has one shape wherever a script gets one
// (BestPathEvent): on_best_path, bgp.walk, bgp.best_path, bgp.lookup,
// bgp.received and ev.previous.
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

// eventPeer is ev.peer in both event kinds: {address, asn, router_id}.
func eventPeer(L *lua.LState, p event.Peer) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("address", lua.LString(p.Address))
	t.RawSetString("asn", lua.LNumber(p.ASN))
	t.RawSetString("router_id", lua.LString(p.RouterID))
	return t
}

func unixSeconds(t time.Time) lua.LNumber {
	if t.IsZero() {
		return 0
	}
	return lua.LNumber(float64(t.UnixNano()) / 1e9)
}

// EventTables builds event tables for one Lua state. It is owned by the
// state's goroutine, like the state.
type EventTables struct {
	meta *lua.LTable // of best-path event userdata
	env  *lua.LTable
}

// NewEventTables prepares L for event tables and event userdata. It makes
// the global pairs work on events.
func NewEventTables(L *lua.LState) *EventTables {
	x := &EventTables{env: L.Env}
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

// PeerState turns the event into the table a script's on_peer_state
// receives.
func (x *EventTables) PeerState(L *lua.LState, e *event.PeerState) *lua.LTable {
	t := L.CreateTable(0, 8)
	t.RawSetString("type", lua.LString("peer_state"))
	t.RawSetString("seq", lua.LNumber(e.Seq))
	t.RawSetString("peer", eventPeer(L, e.Peer))
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
