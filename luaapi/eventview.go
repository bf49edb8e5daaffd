package luaapi

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// Delivery is what one handing of a best path to a script adds to the
// shared event.
type Delivery struct {
	Previous *event.BestPath // the best path it replaces, for subscribed prefixes
	Replay   bool            // handed over by a replay of the table
	Skipped  int             // older states of the prefix coalesced away
}

// eventView is the Go side of the userdata on_best_path receives: no Lua
// table is built per event, a field costs something only when read, and
// what was built is kept for the next read.
type eventView struct {
	e     *event.BestPath
	d     Delivery
	built [numBuilt]lua.LValue  // table fields built so far
	own   map[string]lua.LValue // fields the script set (rare: no map until then)
}

// The fields that are tables, built once per delivery so that a script
// that changes one changes its own copy, as it would a field of a table.
const (
	builtPeer = iota
	builtASPath
	builtCommunities
	builtLarge
	builtExtended
	builtPrevious
	numBuilt
)

// BestPathEvent is the one shape of a best path in Lua: what on_best_path,
// bgp.walk, bgp.best_path, bgp.lookup, bgp.received and ev.previous give.
// A userdata that reads like a table: a field is built on first read (the
// attributes decoded then, once per event for every script); pairs(ev)
// lists them all (eventKeys); a script may set fields of its own.
func (x *EventTables) BestPathEvent(L *lua.LState, e *event.BestPath, d Delivery) lua.LValue {
	return &lua.LUserData{Value: &eventView{e: e, d: d}, Env: x.env, Metatable: x.meta}
}

// eventField returns field key of v, building it if needed.
func (x *EventTables) eventField(L *lua.LState, v *eventView, key string) lua.LValue {
	if v.own != nil {
		if lv, ok := v.own[key]; ok {
			return lv
		}
	}
	e := v.e
	slot := -1
	switch key {
	case "type":
		return lua.LString("best_path")
	case "seq":
		return lua.LNumber(e.Seq)
	case "prefix":
		return lua.LString(e.Prefix)
	case "family":
		return lua.LString(e.Family)
	case "withdrawal":
		return lua.LBool(e.Withdrawal)
	case "timestamp":
		return unixSeconds(e.Timestamp)
	case "age":
		if e.Timestamp.IsZero() {
			return lua.LNil
		}
		return lua.LNumber(time.Since(e.Timestamp).Seconds())
	case "replay":
		if v.d.Replay {
			return lua.LTrue
		}
		return lua.LNil
	case "coalesced":
		if v.d.Skipped > 0 {
			return lua.LTrue
		}
		return lua.LNil
	case "skipped":
		if v.d.Skipped > 0 {
			return lua.LNumber(v.d.Skipped)
		}
		return lua.LNil
	case "nexthop":
		return lua.LString(e.Attrs().Nexthop)
	case "origin":
		return lua.LString(e.Attrs().Origin)
	case "med":
		if a := e.Attrs(); a.HasMED {
			return lua.LNumber(a.MED)
		}
		return lua.LNil
	case "local_pref":
		if a := e.Attrs(); a.HasLocalPref {
			return lua.LNumber(a.LocalPref)
		}
		return lua.LNil
	case "as_path_string":
		return lua.LString(event.ASPathString(e.Attrs().ASPath))
	case "peer":
		slot = builtPeer
	case "as_path":
		slot = builtASPath
	case "communities":
		slot = builtCommunities
	case "large_communities":
		slot = builtLarge
	case "extended_communities":
		slot = builtExtended
	case "previous":
		if v.d.Previous == nil {
			return lua.LNil
		}
		slot = builtPrevious
	default:
		return lua.LNil
	}
	if lv := v.built[slot]; lv != nil {
		return lv
	}
	var lv lua.LValue
	switch slot {
	case builtPeer:
		lv = eventPeer(L, e.Peer)
	case builtASPath:
		path := e.Attrs().ASPath
		t := L.CreateTable(len(path), 0)
		for _, as := range path {
			t.Append(lua.LNumber(as))
		}
		lv = t
	case builtCommunities:
		lv = stringList(L, e.Attrs().Communities)
	case builtLarge:
		lv = stringList(L, e.Attrs().LargeCommunities)
	case builtExtended:
		lv = stringList(L, e.Attrs().ExtendedCommunities)
	case builtPrevious:
		lv = x.BestPathEvent(L, v.d.Previous, Delivery{})
	}
	v.built[slot] = lv
	return lv
}

// eventKeys are the fields pairs(ev) lists, besides those a script set.
var eventKeys = []string{"type", "seq", "prefix", "family", "withdrawal", "peer", "timestamp", "age",
	"replay", "coalesced", "skipped", "previous",
	"nexthop", "as_path", "as_path_string", "origin", "med", "local_pref",
	"communities", "large_communities", "extended_communities"}

// eventTable builds the whole table for pairs() and for copies.
func (x *EventTables) eventTable(L *lua.LState, v *eventView) *lua.LTable {
	t := L.CreateTable(0, len(eventKeys)+len(v.own))
	for k, lv := range v.own {
		t.RawSetString(k, lv)
	}
	for _, k := range eventKeys {
		if t.RawGetString(k) != lua.LNil {
			continue
		}
		if lv := x.eventField(L, v, k); lv != lua.LNil {
			t.RawSetString(k, lv)
		}
	}
	return t
}

func (x *EventTables) viewOf(L *lua.LState, n int) *eventView {
	ud, ok := L.Get(n).(*lua.LUserData)
	if !ok {
		return nil
	}
	v, _ := ud.Value.(*eventView)
	return v
}

func (x *EventTables) indexEvent(L *lua.LState) int {
	v := x.viewOf(L, 1)
	key, ok := L.Get(2).(lua.LString)
	if v == nil || !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(x.eventField(L, v, string(key)))
	return 1
}

// newIndexEvent lets a script note things on an event, as on a table.
func (x *EventTables) newIndexEvent(L *lua.LState) int {
	v := x.viewOf(L, 1)
	key := L.CheckString(2)
	if v.own == nil {
		v.own = make(map[string]lua.LValue, 4)
	}
	v.own[key] = L.Get(3)
	return 0
}

func (x *EventTables) eventString(L *lua.LState) int {
	v := x.viewOf(L, 1)
	s := "best_path " + v.e.Prefix
	if v.e.Withdrawal {
		s += " (withdrawn)"
	}
	L.Push(lua.LString(s))
	return 1
}

// pairs is the global pairs, extended to events: pairs(ev) walks the
// event's fields as it would a table's.
func (x *EventTables) pairs(next lua.LValue) lua.LGFunction {
	return func(L *lua.LState) int {
		var t *lua.LTable
		if v := x.viewOf(L, 1); v != nil {
			t = x.eventTable(L, v)
		} else {
			t = L.CheckTable(1)
		}
		L.Push(next)
		L.Push(t)
		L.Push(lua.LNil)
		return 3
	}
}
