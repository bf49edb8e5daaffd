package host

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
			L := newSandbox(slog.New(slog.NewTextHandler(io.Discard, nil)), []string{lib}, nil)
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
			L := newSandbox(slog.New(slog.NewTextHandler(io.Discard, nil)), tc.dirs, tc.allow)
			defer L.Close()
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
		})
	}
}
