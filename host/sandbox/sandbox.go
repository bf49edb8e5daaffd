// Package sandbox builds the Lua state a script runs in and bounds what
// the script can reach and cost from inside it: libraries, compiling,
// strings, pattern matching, and the measure of what it holds.
package sandbox

import (
	"fmt"
	"io"
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
// deeper than the call stack errors ("stack overflow"). It grows in big
// steps: gopher-lua's default of 32 slots made a call that pushes many
// values (unpack({}, 1, 1e8)) copy the registry 8,000 times, 20 s in Go
// before the overflow.
const (
	luaRegistrySize     = 1024 * 16
	luaRegistryMaxSize  = 1024 * 256
	luaRegistryGrowStep = 1024 * 8
	luaCallStackSize    = 256
)

// Grantable names what the config may let into a sandbox.
var Grantable = []string{"io", "os", "debug", "dofile", "loadfile"}

// New returns a state with only the safe standard libraries: base
// (without dofile, loadfile, collectgarbage), package (for require("bgp")
// and lib/ modules), table, string, math, and an os table with time, date
// and clock only. print goes to log.
//
// require also finds modules in libDirs (the scripts folder's lib/, then
// the granted require-paths), by plain names only: "util" or "acme.util"
// -> lib/util.lua, lib/acme/util.lua.
//
// allow lets in what the config grants (Grantable): "io", "os" (all but
// os.exit: a script never ends the daemon), "debug", "dofile",
// "loadfile".
//
// Whatever is left out is gone from every route a script has to it:
// globals, package.loaded (require, module) and the libraries' tables.
//
// budget (nil: none) bounds what its string builders may allocate.
func New(log *slog.Logger, libDirs []string, allow []string, budget *Budget) *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		RegistrySize:        luaRegistrySize,
		RegistryMaxSize:     luaRegistryMaxSize,
		RegistryGrowStep:    luaRegistryGrowStep,
		CallStackSize:       luaCallStackSize,
		IncludeGoStackTrace: false,
	})
	granted := func(name string) bool { return slices.Contains(allow, name) }
	open := func(name string, fn lua.LGFunction) {
		L.Push(L.NewFunction(fn))
		L.Push(lua.LString(name))
		L.Call(1, 0)
	}
	open(lua.LoadLibName, lua.OpenPackage)
	open(lua.BaseLibName, lua.OpenBase)
	open(lua.TabLibName, lua.OpenTable)
	open(lua.StringLibName, lua.OpenString)
	open(lua.MathLibName, lua.OpenMath)
	open(lua.OsLibName, lua.OpenOs)
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.IoLibName, lua.OpenIo}, {lua.DebugLibName, lua.OpenDebug}} {
		if granted(lib.name) {
			open(lib.name, lib.fn)
		}
	}
	loaded := L.GetField(L.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable)
	full := L.GetGlobal("os").(*lua.LTable)
	osLib := full
	if !granted("os") {
		// Only what cannot touch the machine; the full library goes from
		// package.loaded too, where require and module would find it.
		osLib = L.NewTable()
		for _, name := range []string{"time", "date", "clock"} {
			osLib.RawSetString(name, full.RawGetString(name))
		}
	}
	osLib.RawSetString("exit", lua.LNil)
	L.SetGlobal("os", osLib)
	loaded.RawSetString("os", osLib)

	base := map[string]lua.LGFunction{
		"load":       loadFn,
		"loadstring": loadString,
		"dofile":     doFile,
		"loadfile":   loadFile,
	}
	for name, fn := range base {
		L.SetGlobal(name, L.NewFunction(fn))
	}
	for _, name := range []string{"dofile", "loadfile", "collectgarbage"} {
		if !granted(name) {
			L.SetGlobal(name, lua.LNil)
		}
	}
	boundStrings(L, budget)
	markBox(L, budget)
	warnConcat(log)

	// require: preloaded modules (bgp), then lib/ folders; never paths
	// or C loaders.
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
			src, err := readChunk(path)
			if os.IsNotExist(err) {
				tried.WriteString("\n\tno file " + path)
				continue
			}
			if err != nil {
				L.RaiseError("%s", err.Error())
			}
			fn, err := Load(L, src, path)
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

// readChunk reads a file of at most MaxSource bytes.
func readChunk(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSource+1))
	if err == nil && len(b) > MaxSource {
		err = fmt.Errorf("%s: more than the %d MiB a chunk may have", path, MaxSource>>20)
	}
	return b, err
}

// pushLoaded pushes what load and friends return: the function, or nil and
// the error.
func pushLoaded(L *lua.LState, src []byte, name string) int {
	fn, err := Load(L, src, name)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(fn)
	return 1
}

func loadString(L *lua.LState) int {
	return pushLoaded(L, []byte(L.CheckString(1)), L.OptString(2, "<string>"))
}

// loadFn is load(f [, name]): f is called for pieces until it returns nil
// or "", and the pieces may not pass MaxSource.
func loadFn(L *lua.LState) int {
	fn := L.CheckFunction(1)
	name := L.OptString(2, "=(load)")
	var src []byte
	for {
		L.Push(fn)
		L.Call(0, 1)
		v := L.Get(-1)
		L.Pop(1)
		if v == lua.LNil {
			break
		}
		s, ok := v.(lua.LString)
		if !ok {
			if n, isNum := v.(lua.LNumber); isNum {
				s = lua.LString(n.String())
			} else {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
		}
		if s == "" {
			break
		}
		if len(src)+len(s) > MaxSource {
			L.Push(lua.LNil)
			L.Push(lua.LString(fmt.Sprintf("%s: more than the %d MiB a chunk may have", name, MaxSource>>20)))
			return 2
		}
		src = append(src, s...)
	}
	return pushLoaded(L, src, name)
}

// loadFile and doFile exist only where the config grants them.
func loadFile(L *lua.LState) int {
	path := L.CheckString(1)
	src, err := readChunk(path)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	return pushLoaded(L, src, path)
}

func doFile(L *lua.LState) int {
	path := L.CheckString(1)
	src, err := readChunk(path)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	fn, err := Load(L, src, path)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	top := L.GetTop()
	L.Push(fn)
	L.Call(0, lua.MultRet)
	return L.GetTop() - top
}
