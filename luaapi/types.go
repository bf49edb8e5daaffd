package luaapi

import "embed"

// Types are the LuaLS definitions (`---@meta` files) of the bgp module,
// the two events and the handlers, for editors: types/bgp.lua and
// types/handlers.lua. TestStubs keeps them level with the module.
//
//go:embed types/bgp.lua types/handlers.lua
var Types embed.FS

// Handlers are the global functions edbgpd calls in a script, in the
// order of a script's life.
var Handlers = []string{"on_load", "on_best_path", "on_peer_state", "on_unload"}

// ModuleFunctions lists the bgp module's function names.
func ModuleFunctions() []string {
	var names []string
	for name := range (&Module{}).functions() {
		names = append(names, name)
	}
	return names
}

// BestPathFields lists the fields of a best-path event (pairs(ev)).
func BestPathFields() []string { return append([]string(nil), eventKeys...) }
