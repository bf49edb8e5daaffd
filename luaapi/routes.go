package luaapi

import (
	"errors"
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// optString reads t[key] as a string; absent is "".
func optString(L *lua.LState, t *lua.LTable, key, fn string) string {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	default:
		L.ArgError(1, fmt.Sprintf("%s: %s must be a string, not a %s", fn, key, v.Type()))
	}
	return ""
}

// optUint32 reads t[key] as a 32-bit unsigned integer; absent is nil.
func optUint32(L *lua.LState, t *lua.LTable, key, fn string) *uint32 {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return nil
	case lua.LNumber:
		if f := float64(v); f >= 0 && f <= 0xffffffff && f == float64(uint32(f)) {
			u := uint32(f)
			return &u
		}
	}
	L.ArgError(1, fmt.Sprintf("%s: %s must be a whole number 0-4294967295", fn, key))
	return nil
}

func optStrings(L *lua.LState, t *lua.LTable, key, fn string) []string {
	v := t.RawGetString(key)
	if v == lua.LNil {
		return nil
	}
	l, ok := v.(*lua.LTable)
	var out []string
	if ok = ok && isList(l); ok {
		for i := 1; i <= l.Len(); i++ {
			s, isStr := l.RawGetInt(i).(lua.LString)
			if !isStr {
				ok = false
				break
			}
			out = append(out, string(s))
		}
	}
	if !ok {
		L.ArgError(1, fmt.Sprintf("%s: %s must be a list of strings", fn, key))
	}
	return out
}

func optASNs(L *lua.LState, t *lua.LTable, key, fn string) []uint32 {
	v := t.RawGetString(key)
	if v == lua.LNil {
		return nil
	}
	l, ok := v.(*lua.LTable)
	var out []uint32
	if ok = ok && isList(l); ok {
		for i := 1; i <= l.Len(); i++ {
			n, isNum := l.RawGetInt(i).(lua.LNumber)
			if !isNum || float64(n) < 1 || float64(n) > 0xffffffff || float64(n) != float64(uint32(n)) {
				ok = false
				break
			}
			out = append(out, uint32(n))
		}
	}
	if !ok {
		L.ArgError(1, fmt.Sprintf("%s: %s must be a list of AS numbers", fn, key))
	}
	return out
}

var routeKeys = map[string]bool{"prefix": true, "nexthop": true, "origin": true, "as_path": true, "prepend": true, "communities": true,
	"large_communities": true, "med": true, "local_pref": true}

// bgp.announce{prefix=, nexthop=, origin=, as_path={..}, communities={..},
// large_communities={..}, med=, local_pref=} -> true | nil, reason
func (m *Module) announce(L *lua.LState) int {
	const fn = "bgp.announce"
	t := L.CheckTable(1)
	t.ForEach(func(k, _ lua.LValue) {
		if ks, ok := k.(lua.LString); !ok || !routeKeys[string(ks)] {
			L.ArgError(1, fmt.Sprintf("%s: unknown field %s", fn, k.String()))
		}
	})
	r := Route{
		Prefix:           optString(L, t, "prefix", fn),
		Nexthop:          optString(L, t, "nexthop", fn),
		Origin:           optString(L, t, "origin", fn),
		ASPath:           optASNs(L, t, "as_path", fn),
		Communities:      optStrings(L, t, "communities", fn),
		LargeCommunities: optStrings(L, t, "large_communities", fn),
		MED:              optUint32(L, t, "med", fn),
		LocalPref:        optUint32(L, t, "local_pref", fn),
	}
	if n := optUint32(L, t, "prepend", fn); n != nil {
		if *n > 32 {
			L.ArgError(1, fn+": prepend must be 0-32")
		}
		r.Prepend = int(*n)
	}
	if r.Prefix == "" {
		L.ArgError(1, fn+": prefix is required")
	}
	if p, err := ParsePrefixOrAddr(r.Prefix); err != nil {
		L.ArgError(1, fmt.Sprintf("%s: prefix %q: %v", fn, r.Prefix, err))
	} else {
		r.Prefix = p.String()
	}
	for _, c := range r.Communities {
		if _, _, err := ParseCommunity(c); err != nil {
			L.ArgError(1, fn+": "+err.Error())
		}
	}
	err := m.Actions.Announce(m.Script, r)
	m.audit(L, "announce", err, "prefix", r.Prefix, "nexthop", r.Nexthop, "communities", r.Communities)
	return result(L, err)
}

// bgp.withdraw(prefix) -> true | nil, reason
func (m *Module) withdraw(L *lua.LState) int {
	p := checkPrefix(L, 1, "bgp.withdraw")
	err := m.Actions.Withdraw(m.Script, p.String())
	m.audit(L, "withdraw", err, "prefix", p.String())
	return result(L, err)
}

// bgp.best_path(prefix) -> best path | nil
func (m *Module) bestPath(L *lua.LState) int {
	p := checkPrefix(L, 1, "bgp.best_path")
	bp, err := m.Actions.BestPath(p.String())
	return m.pathResult(L, bp, err)
}

// bgp.lookup(address) -> best path of the longest match | nil
func (m *Module) lookup(L *lua.LState) int {
	p := checkPrefix(L, 1, "bgp.lookup")
	bp, err := m.Actions.Lookup(p.Addr().String())
	return m.pathResult(L, bp, err)
}

// bgp.received(peer, prefix) -> what peer sent, as a best path | nil
func (m *Module) received(L *lua.LState) int {
	peer := checkAddress(L, 1, "bgp.received")
	p := checkPrefix(L, 2, "bgp.received")
	bp, err := m.Actions.Received(peer, p.String())
	return m.pathResult(L, bp, err)
}

func (m *Module) pathResult(L *lua.LState, bp *event.BestPath, err error) int {
	if err != nil {
		return fail(L, err)
	}
	if bp == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(m.tables.BestPathEvent(L, bp, Delivery{}))
	return 1
}

// bgp.peer(address) -> peer table | nil, reason
func (m *Module) peer(L *lua.LState) int {
	addr := checkAddress(L, 1, "bgp.peer")
	p, err := m.Actions.Peer(addr)
	if err != nil {
		return fail(L, err)
	}
	L.Push(peerTable(L, p))
	return 1
}

var resetKinds = map[string]bool{"hard": true, "soft": true, "soft-in": true, "soft-out": true}

// bgp.reset_peer(address, [how]) -> true | nil, reason
func (m *Module) resetPeer(L *lua.LState) int {
	addr := checkAddress(L, 1, "bgp.reset_peer")
	how := L.OptString(2, "hard")
	if !resetKinds[how] {
		L.ArgError(2, "bgp.reset_peer: how must be hard, soft, soft-in or soft-out")
	}
	err := m.Actions.ResetPeer(addr, how)
	m.audit(L, "reset_peer", err, "peer", addr, "how", how)
	return result(L, err)
}

// bgp.enable_peer(address) / bgp.disable_peer(address) -> true | nil, reason
func (m *Module) enablePeer(L *lua.LState) int  { return m.setPeerEnabled(L, true) }
func (m *Module) disablePeer(L *lua.LState) int { return m.setPeerEnabled(L, false) }

func (m *Module) setPeerEnabled(L *lua.LState, on bool) int {
	name := map[bool]string{true: "enable_peer", false: "disable_peer"}[on]
	addr := checkAddress(L, 1, "bgp."+name)
	err := m.Actions.SetPeerEnabled(addr, on)
	m.audit(L, name, err, "peer", addr)
	return result(L, err)
}

func checkAddress(L *lua.LState, n int, fn string) string {
	p := checkPrefix(L, n, fn)
	if p.Bits() != p.Addr().BitLen() {
		L.ArgError(n, fn+": want an address, not a prefix")
	}
	return p.Addr().String()
}

// result pushes true, or nil and the reason.
// result answers an action: true when it was done or deferred (a
// throttled action is taken), nil and the reason when it was refused.
func result(L *lua.LState, err error) int {
	var later *Deferred
	if err != nil && !errors.As(err, &later) {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}
