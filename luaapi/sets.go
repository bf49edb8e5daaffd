package luaapi

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// SetKinds are the defined-set kinds scripts may change.
var SetKinds = map[string]bool{"prefix": true, "neighbor": true, "community": true,
	"ext-community": true, "large-community": true, "as-path": true}

// bgp.defined_set_add(kind, name, {entries}) -> true | nil, reason
func (m *Module) definedSetAdd(L *lua.LState) int { return m.definedSet(L, "add") }

// bgp.defined_set_remove(kind, name, {entries}) -> true | nil, reason
func (m *Module) definedSetRemove(L *lua.LState) int { return m.definedSet(L, "remove") }

func (m *Module) definedSet(L *lua.LState, op string) int {
	fn := "bgp.defined_set_" + op
	kind := L.CheckString(1)
	if !SetKinds[kind] {
		L.ArgError(1, fn+": kind must be prefix, neighbor, community, ext-community, large-community or as-path")
	}
	name := L.CheckString(2)
	if name == "" || strings.HasPrefix(name, "edbgpd-") {
		L.ArgError(2, fn+": name must not be empty nor start with edbgpd- (edbgpd's own sets)")
	}
	t := L.CheckTable(3)
	if !isList(t) {
		L.ArgError(3, fn+": entries must be a list of strings")
	}
	var entries []string
	for i := 1; i <= t.Len(); i++ {
		s, ok := t.RawGetInt(i).(lua.LString)
		if !ok || s == "" {
			L.ArgError(3, fn+": entries must be a list of strings")
		}
		entries = append(entries, string(s))
	}
	if len(entries) == 0 {
		L.ArgError(3, fn+": no entries")
	}
	err := m.Actions.DefinedSet(op, kind, name, entries)
	m.audit(L, "defined_set_"+op, err, "kind", kind, "set", name, "entries", entries)
	return result(L, err)
}
