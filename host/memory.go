package host

import (
	lua "github.com/yuin/gopher-lua"
)

// luaEntries counts the table entries a script can reach (globals, the
// registry: loaded modules and bgp.state, and its functions' upvalues),
// stopping once it passes limit. gopher-lua has no allocation hook and Go
// no per-goroutine memory accounting, so entries held are the measure of
// a script's memory; cost is proportional to the count, at most limit.
func luaEntries(L *lua.LState, limit int) int {
	n := 0
	seen := make(map[lua.LValue]bool)
	var walk func(v lua.LValue)
	walk = func(v lua.LValue) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case *lua.LTable:
			if seen[x] {
				return
			}
			seen[x] = true
			x.ForEach(func(k, val lua.LValue) {
				n++
				if n > limit {
					return
				}
				walk(k)
				walk(val)
			})
			if x.Metatable != nil {
				walk(x.Metatable)
			}
		case *lua.LFunction:
			if seen[x] {
				return
			}
			seen[x] = true
			for _, uv := range x.Upvalues {
				if uv != nil {
					walk(uv.Value())
				}
			}
		}
	}
	walk(L.G.Global)
	walk(L.G.Registry)
	return n
}
