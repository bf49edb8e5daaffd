package luaapi

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// MinPeriod is the shortest period of bgp.every: a timer faster than that
// would keep its script busy with little else, and is run at this pace.
const MinPeriod = 10 * time.Millisecond

// seconds reads a positive duration in seconds (fractions allowed).
func seconds(L *lua.LState, n int, fn string) time.Duration {
	s := float64(L.CheckNumber(n))
	if !(s > 0) || s > 365*24*3600 {
		L.ArgError(n, fn+": seconds must be > 0 and at most a year")
	}
	return time.Duration(s * float64(time.Second))
}

// bgp.after(seconds, fn) -> id | nil, reason: call fn once, on the
// script's goroutine.
func (m *Module) after(L *lua.LState) int {
	d := seconds(L, 1, "bgp.after")
	fn := L.CheckFunction(2)
	id, err := m.Runtime.StartTimer(d, 0, fn)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LNumber(id))
	return 1
}

// bgp.every(seconds, fn) -> id | nil, reason: call fn every seconds (at
// least MinPeriod) until cancelled.
func (m *Module) every(L *lua.LState) int {
	d := max(seconds(L, 1, "bgp.every"), MinPeriod)
	fn := L.CheckFunction(2)
	id, err := m.Runtime.StartTimer(d, d, fn)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LNumber(id))
	return 1
}

// bgp.cancel(id) -> true if a timer was stopped.
func (m *Module) cancel(L *lua.LState) int {
	id := L.CheckInt(1)
	L.Push(lua.LBool(m.Runtime.CancelTimer(id)))
	return 1
}

// bgp.persist_state(on): keep bgp.state across daemon restarts too.
func (m *Module) persistState(L *lua.LState) int {
	on := L.OptBool(1, true)
	if err := m.Runtime.PersistState(on); err != nil {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}
