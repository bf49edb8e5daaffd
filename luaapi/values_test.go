package luaapi_test

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

// TestCopyTable: bgp.state crosses a reload with its shape: shared
// tables copied once and still shared, cycles kept, functions dropped.
func TestCopyTable(t *testing.T) {
	src, dst := lua.NewState(), lua.NewState()
	defer src.Close()
	defer dst.Close()
	if err := src.DoString(`
local t = {n = 1}
for i = 1, 40 do t = {a = t, b = t} end
state = {dag = t, f = print}
state.self = state`); err != nil {
		t.Fatal(err)
	}
	cp, skipped := luaapi.CopyTable(dst, src.GetGlobal("state").(*lua.LTable))
	if skipped != 1 {
		t.Errorf("skipped %d, want 1 (the function)", skipped)
	}
	dst.SetGlobal("state", cp)
	if err := dst.DoString(`
assert(state.self == state, "cycle kept")
local t = state.dag
for i = 1, 40 do assert(t.a == t.b, "shared kept at " .. i); t = t.a end
assert(t.n == 1)`); err != nil {
		t.Fatal(err)
	}
}
