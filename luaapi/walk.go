package luaapi

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

var walkKeys = map[string]bool{"family": true, "chunk": true, "fn": true, "done": true}

// bgp.walk{family="ipv4-unicast", chunk=1000, fn=function(path) end,
// done=function(count) end} -> true | nil, reason
func (m *Module) walk(L *lua.LState) int {
	const fname = "bgp.walk"
	t := L.CheckTable(1)
	t.ForEach(func(k, _ lua.LValue) {
		if ks, ok := k.(lua.LString); !ok || !walkKeys[string(ks)] {
			L.ArgError(1, fmt.Sprintf("%s: unknown field %s", fname, k.String()))
		}
	})
	w := WalkRequest{Family: optString(L, t, "family", fname), Chunk: 1000}
	if w.Family == "" {
		w.Family = "ipv4-unicast"
	}
	if c := optUint32(L, t, "chunk", fname); c != nil {
		if *c < 1 || *c > 100000 {
			L.ArgError(1, fname+": chunk must be 1-100000")
		}
		w.Chunk = int(*c)
	}
	var ok bool
	if w.Fn, ok = t.RawGetString("fn").(*lua.LFunction); !ok {
		L.ArgError(1, fname+": fn must be a function")
	}
	switch d := t.RawGetString("done").(type) {
	case *lua.LNilType:
	case *lua.LFunction:
		w.Done = d
	default:
		L.ArgError(1, fname+": done must be a function")
	}
	err := m.Runtime.Walk(w)
	return result(L, err)
}
