package sandbox

import (
	"slices"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// EntryBytes is what one table entry is counted as in Usage.Bytes: an
// LValue slot or map entry of gopher-lua's table plus a boxed value,
// between about 24 (array part) and 100 bytes (hash part).
const EntryBytes = 64

// Usage is what a script holds, as Measure counts it.
type Usage struct {
	Entries int   // table entries reachable
	Strings int64 // bytes of the strings reachable, each string once
}

// Bytes is the estimate of the memory held: strings plus EntryBytes an
// entry.
func (u Usage) Bytes() int64 { return u.Strings + int64(u.Entries)*EntryBytes }

// Measure counts what L's script can reach between calls: globals, the
// registry (loaded modules, bgp.state), roots the host holds for it
// (timer callbacks), metatables, functions' upvalues and environments. It stops once the count passes maxEntries or
// maxBytes (0: no bound), so its cost is bounded by the limits. The walk
// keeps its own stack: a table chain millions deep is only long, not
// deep, here.
//
// gopher-lua has no allocation hook and Go no per-goroutine accounting,
// so what is reachable is the measure of a script's memory. Call it on
// the goroutine that owns L.
func Measure(L *lua.LState, maxEntries int, maxBytes int64, roots ...lua.LValue) Usage {
	var u Usage
	over := func() bool {
		return (maxEntries > 0 && u.Entries > maxEntries) || (maxBytes > 0 && u.Bytes() > maxBytes)
	}
	seen := make(map[any]struct{})
	// Short strings are counted each time: looking them up would cost
	// more than the overcount.
	const shared = 64
	stack := append([]lua.LValue{L.G.Global, L.G.Registry}, roots...)
	visit := func(v lua.LValue) {
		switch x := v.(type) {
		case lua.LString:
			if len(x) < shared {
				u.Strings += int64(len(x))
				return
			}
			p := unsafe.StringData(string(x))
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				u.Strings += int64(len(x))
			}
		case *lua.LTable, *lua.LFunction, *lua.LUserData:
			if _, ok := seen[x]; !ok {
				seen[x] = struct{}{}
				stack = append(stack, x)
			}
		}
	}
	for _, v := range stack {
		seen[v] = struct{}{}
	}
	stack = slices.DeleteFunc(stack, func(v lua.LValue) bool { return v == nil })
	for len(stack) > 0 && !over() {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch x := v.(type) {
		case *lua.LTable:
			x.ForEach(func(k, val lua.LValue) {
				u.Entries++
				visit(k)
				visit(val)
			})
			if x.Metatable != nil {
				visit(x.Metatable)
			}
		case *lua.LFunction:
			for _, uv := range x.Upvalues {
				if uv != nil {
					visit(uv.Value())
				}
			}
			if x.Env != nil {
				visit(x.Env)
			}
		case *lua.LUserData:
			if x.Metatable != nil {
				visit(x.Metatable)
			}
			if x.Env != nil {
				visit(x.Env)
			}
		}
	}
	return u
}
