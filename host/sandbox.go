package host

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
// require also finds modules in libDirs (the scripts folder's lib/, then
// the granted require-paths), by plain names only: "util" or "acme.util"
// -> lib/util.lua, lib/acme/util.lua.
//
// allow lets in what the config grants: "io", "os" (all but os.exit:
// a script never ends the daemon), "debug", "dofile", "loadfile".
func newSandbox(log *slog.Logger, libDirs []string, allow []string) *lua.LState {
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
	granted := func(name string) bool { return slices.Contains(allow, name) }
	for _, name := range []string{"dofile", "loadfile", "collectgarbage"} {
		if !granted(name) {
			L.SetGlobal(name, lua.LNil)
		}
	}
	full := L.GetGlobal("os").(*lua.LTable)
	full.RawSetString("exit", lua.LNil)
	if !granted("os") {
		// os: keep only what cannot touch the machine.
		safe := L.NewTable()
		for _, name := range []string{"time", "date", "clock"} {
			safe.RawSetString(name, full.RawGetString(name))
		}
		L.SetGlobal("os", safe)
	}
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.IoLibName, lua.OpenIo}, {lua.DebugLibName, lua.OpenDebug}} {
		if granted(lib.name) {
			L.Push(L.NewFunction(lib.fn))
			L.Push(lua.LString(lib.name))
			L.Call(1, 0)
		}
	}
	// require: only preloaded modules (bgp), never files or C loaders.
	pkg := L.GetGlobal("package").(*lua.LTable)
	pkg.RawSetString("path", lua.LString(""))
	pkg.RawSetString("cpath", lua.LString(""))
	// The loaders table is shared with the registry entry require reads;
	// keep the first (preload) searcher, replace the file searcher with
	// one that only reads the scripts folder's lib/ and granted folders.
	if l, ok := pkg.RawGetString("loaders").(*lua.LTable); ok {
		for l.Len() > 1 {
			l.Remove(l.Len())
		}
		if len(libDirs) > 0 {
			l.Append(L.NewFunction(libLoader(libDirs)))
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

// libLoader is a require searcher for modules under dirs, first match
// wins. Names are checked so that no path can leave a dir.
func libLoader(dirs []string) lua.LGFunction {
	return func(L *lua.LState) int {
		name := L.CheckString(1)
		if !moduleName.MatchString(name) {
			L.Push(lua.LString("\n\tnot a module name edbgpd loads: " + name))
			return 1
		}
		var tried strings.Builder
		for _, dir := range dirs {
			path := filepath.Join(dir, strings.ReplaceAll(name, ".", string(filepath.Separator))+".lua")
			src, err := os.ReadFile(path)
			if err != nil {
				tried.WriteString("\n\tno file " + path)
				continue
			}
			fn, err := L.Load(bytes.NewReader(src), path)
			if err != nil {
				L.RaiseError("%s", err.Error())
			}
			L.Push(fn)
			return 1
		}
		L.Push(lua.LString(tried.String()))
		return 1
	}
}
