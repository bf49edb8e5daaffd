package sandbox

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSandboxRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evil.lua"), []byte("return 1"), 0o644)
	lib := filepath.Join(dir, "lib")
	os.MkdirAll(filepath.Join(lib, "acme"), 0o755)
	os.WriteFile(filepath.Join(lib, "util.lua"), []byte("return {answer = 42}"), 0o644)
	os.WriteFile(filepath.Join(lib, "acme", "more.lua"), []byte("return {x = 'y'}"), 0o644)
	for _, code := range []string{
		`assert(io == nil)`,
		`assert(debug == nil)`,
		`assert(os.execute == nil and os.remove == nil and os.exit == nil and os.getenv == nil)`,
		`assert(dofile == nil and loadfile == nil and collectgarbage == nil)`,
		`assert(not pcall(require, "` + filepath.Join(dir, "evil") + `"))`,
		`assert(not pcall(require, "evil"))`,
		`assert(not pcall(require, "io"))`,
		`assert(require("util").answer == 42 and require("acme.more").x == "y")`,
		`assert(not pcall(require, "../evil"))`,
		`assert(not pcall(require, "acme/../../evil"))`,
		`assert(type(os.time()) == "number" and type(os.date("%Y")) == "string" and type(os.clock()) == "number")`,
		`assert(string.format("%d", 1) == "1" and math.floor(1.5) == 1 and table.concat({"a"}) == "a")`,
	} {
		t.Run(code, func(t *testing.T) {
			L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), []string{lib}, nil, nil)
			defer L.Close()
			if err := L.DoString(code); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSandboxGrants: what the config lets in, and only that.
func TestSandboxGrants(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	shared := filepath.Join(dir, "shared")
	os.MkdirAll(lib, 0o755)
	os.MkdirAll(shared, 0o755)
	os.WriteFile(filepath.Join(lib, "util.lua"), []byte("return {from = 'lib'}"), 0o644)
	os.WriteFile(filepath.Join(shared, "util.lua"), []byte("return {from = 'shared'}"), 0o644)
	os.WriteFile(filepath.Join(shared, "extra.lua"), []byte("return {from = 'shared'}"), 0o644)
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(data, []byte("hello"), 0o644)
	for _, tc := range []struct {
		allow []string
		dirs  []string
		code  string
	}{
		{nil, []string{lib}, `assert(not pcall(require, "extra"))`},
		{nil, []string{lib, shared}, `assert(require("extra").from == "shared" and require("util").from == "lib")`},
		{[]string{"io"}, nil, `local f = assert(io.open("` + data + `")); assert(f:read("*a") == "hello"); f:close()`},
		{[]string{"io"}, nil, `assert(os.getenv == nil and debug == nil and dofile == nil)`},
		{[]string{"os"}, nil, `assert(type(os.getenv("PATH")) == "string" and type(os.remove) == "function")`},
		{[]string{"os"}, nil, `assert(os.exit == nil and io == nil)`},
		{[]string{"debug"}, nil, `assert(type(debug.traceback) == "function")`},
		{[]string{"dofile", "loadfile"}, nil, `assert(type(dofile) == "function" and type(loadfile) == "function" and collectgarbage == nil)`},
	} {
		t.Run(tc.code, func(t *testing.T) {
			L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), tc.dirs, tc.allow, nil)
			defer L.Close()
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNoRouteToRemovedFunctions: what the sandbox leaves out is out of
// every way a script has to reach it, not only the globals.
func TestNoRouteToRemovedFunctions(t *testing.T) {
	// probe returns the functions found under a library's name, "" if
	// none: through the global, package.loaded, require and module.
	const probe = `
local removed = {"execute", "getenv", "remove", "rename", "exit", "tmpname", "setlocale",
  "open", "popen", "lines", "read", "write", "output", "input", "tmpfile",
  "traceback", "getinfo", "getlocal", "setlocal", "getregistry", "sethook", "getupvalue", "setupvalue"}
local found = {}
local function look(where, t)
  if type(t) ~= "table" then return end
  for _, name in ipairs(removed) do
    -- table.remove is table's own.
    if t[name] ~= nil and not (t == table and name == "remove") then found[#found + 1] = where .. "." .. name end
  end
end
for _, lib in ipairs({"os", "io", "debug", "coroutine", "channel", "string", "table", "math", "package", "_G"}) do
  look("_G." .. lib, _G[lib])
  look("package.loaded." .. lib, package.loaded[lib])
  local ok, m = pcall(require, lib)
  if ok then look("require('" .. lib .. "')", m) end
  local f = loadstring('module("' .. lib .. '"); return _M')
  local ok2, env = pcall(f)
  if ok2 then look("module('" .. lib .. "')", env) end
end
look("getmetatable('').__index", getmetatable("").__index)
look("getfenv(0)", getfenv(0))
look("getfenv(print)", getfenv(print))
for _, name in ipairs({"dofile", "loadfile", "collectgarbage"}) do
  if _G[name] ~= nil then found[#found + 1] = name end
end
return table.concat(found, " ")
`
	for _, tc := range []struct {
		allow []string
		want  string
	}{
		{nil, ""},
		// A grant lets in what it names and nothing more.
		{[]string{"io"}, "_G.io.open"},
		{[]string{"os"}, "_G.os.execute"},
	} {
		t.Run(fmt.Sprint(tc.allow), func(t *testing.T) {
			L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, tc.allow, nil)
			defer L.Close()
			if err := L.DoString(probe); err != nil {
				t.Fatal(err)
			}
			got := L.Get(-1).String()
			if tc.want == "" && got != "" {
				t.Fatalf("removed functions reachable: %s", got)
			}
			if !strings.Contains(got, tc.want) || strings.Contains(got, ".exit") {
				t.Fatalf("found %q, want %q and no exit", got, tc.want)
			}
		})
	}
}

// TestShellEscape: the issue's own attacks, run for real.
func TestShellEscape(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "x")
	for _, code := range []string{
		`require("os").execute("touch ` + marker + `")`,
		`package.loaded.os.execute("touch ` + marker + `")`,
		`loadstring('module("os"); return execute')()("touch ` + marker + `")`,
		`require("io").open("` + marker + `", "w")`,
		`getmetatable("").__index.dump(print)`,
	} {
		t.Run(code, func(t *testing.T) {
			L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil)
			defer L.Close()
			if err := L.DoString(code); err == nil {
				t.Error("no error")
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the script touched a file")
			}
		})
	}
}
