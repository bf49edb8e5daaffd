package host

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua VM sizes for one script. The registry may grow to its max and then
// errors ("registry overflow") instead of eating memory; a recursion
// deeper than the call stack errors ("stack overflow").
const (
	luaRegistrySize    = 1024 * 16
	luaRegistryMaxSize = 1024 * 256
	luaCallStackSize   = 256
)

// newSandbox returns a state with only the safe standard libraries:
// base (without dofile, loadfile, collectgarbage), package (for
// require("bgp")), table, string, math, and an os table with time, date
// and clock only. print goes to the script's logger.
//
// require also finds modules in libDir (the scripts folder's lib/), by
// plain names only: "util" or "acme.util" -> lib/util.lua, lib/acme/util.lua.
func newSandbox(log *slog.Logger, libDir string) *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		RegistrySize:        luaRegistrySize,
		RegistryMaxSize:     luaRegistryMaxSize,
		CallStackSize:       luaCallStackSize,
		IncludeGoStackTrace: false,
	})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, name := range []string{"dofile", "loadfile", "collectgarbage"} {
		L.SetGlobal(name, lua.LNil)
	}
	// os: keep only what cannot touch the machine.
	full := L.GetGlobal("os").(*lua.LTable)
	safe := L.NewTable()
	for _, name := range []string{"time", "date", "clock"} {
		safe.RawSetString(name, full.RawGetString(name))
	}
	L.SetGlobal("os", safe)
	// require: only preloaded modules (bgp), never files or C loaders.
	pkg := L.GetGlobal("package").(*lua.LTable)
	pkg.RawSetString("path", lua.LString(""))
	pkg.RawSetString("cpath", lua.LString(""))
	// The loaders table is shared with the registry entry require reads;
	// keep the first (preload) searcher, replace the file searcher with
	// one that only reads the scripts folder's lib/.
	if l, ok := pkg.RawGetString("loaders").(*lua.LTable); ok {
		for l.Len() > 1 {
			l.Remove(l.Len())
		}
		if libDir != "" {
			l.Append(L.NewFunction(libLoader(libDir)))
		}
	}
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		parts := make([]string, 0, L.GetTop())
		for i := 1; i <= L.GetTop(); i++ {
			parts = append(parts, L.ToStringMeta(L.Get(i)).String())
		}
		log.Info(strings.Join(parts, "\t"), "at", strings.TrimSuffix(L.Where(1), ":"))
		return 0
	}))
	return L
}

var moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// libLoader is a require searcher for modules under dir. Names are checked
// so that no path can leave dir.
func libLoader(dir string) lua.LGFunction {
	return func(L *lua.LState) int {
		name := L.CheckString(1)
		if !moduleName.MatchString(name) {
			L.Push(lua.LString("\n\tnot a module name edbgpd loads: " + name))
			return 1
		}
		path := filepath.Join(dir, strings.ReplaceAll(name, ".", string(filepath.Separator))+".lua")
		src, err := os.ReadFile(path)
		if err != nil {
			L.Push(lua.LString("\n\tno file " + path))
			return 1
		}
		fn, err := L.Load(bytes.NewReader(src), path)
		if err != nil {
			L.RaiseError("%s", err.Error())
		}
		L.Push(fn)
		return 1
	}
}
