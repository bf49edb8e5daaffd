package main

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/jessevdk/go-flags"
	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/sandbox"
	"github.com/edbgpd/edbgpd/luaapi"
)

type initOptions struct {
	Config string `short:"f" long:"config-file" description:"the daemon's config file: scripts granted io, os, debug, dofile or loadfile get them in .luacheckrc"`
	Type   string `short:"t" long:"config-type" description:"config file format, when the name does not say" default:"toml"`
	Force  bool   `long:"force" description:"overwrite files edbgpd init wrote before"`
	Print  string `long:"print" description:"print one file (luacheckrc, luarc) instead of writing the folder" choice:"luacheckrc" choice:"luarc"`
	Args   struct {
		Dir string `positional-arg-name:"DIR"`
	} `positional-args:"yes"`
}

// runInit is `edbgpd init DIR`: a scripts folder an editor (LuaLS) and
// luacheck understand: the bgp module's types, the handlers, the sandbox.
func runInit(args []string, stdout, stderr io.Writer) int {
	var o initOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "init [-f CONFIG] [--force] DIR | init [-f CONFIG] --print luacheckrc|luarc"
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	grants := map[string][]string{} // script -> what it is granted beyond the sandbox
	var everyone []string
	if o.Config != "" {
		cfg, err := host.LoadConfig(o.Config, o.Type)
		if err != nil {
			fmt.Fprintln(stderr, "edbgpd init:", err)
			return 1
		}
		everyone = cfg.Options.Sandbox.Allow
		for name, g := range cfg.Options.Grants {
			grants[name] = g.Allow
		}
	}
	files := map[string][]byte{
		".luacheckrc": []byte(luacheckrc(everyone, grants)),
		".luarc.json": []byte(luarc),
	}
	switch o.Print {
	case "luacheckrc":
		stdout.Write(files[".luacheckrc"])
		return 0
	case "luarc":
		stdout.Write(files[".luarc.json"])
		return 0
	}
	if o.Args.Dir == "" {
		fmt.Fprintln(stderr, "edbgpd init: which folder? (edbgpd init DIR)")
		return 2
	}
	entries, _ := fs.ReadDir(luaapi.Types, "types")
	for _, e := range entries {
		b, _ := luaapi.Types.ReadFile("types/" + e.Name())
		files[filepath.Join(".luals", e.Name())] = b
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(o.Args.Dir, name)
		if _, err := os.Stat(path); err == nil && !o.Force {
			fmt.Fprintf(stderr, "edbgpd init: %s exists (--force to overwrite)\n", path)
			return 1
		}
	}
	for _, name := range names {
		path := filepath.Join(o.Args.Dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(stderr, "edbgpd init:", err)
			return 1
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			fmt.Fprintln(stderr, "edbgpd init:", err)
			return 1
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return 0
}

// luarc tells LuaLS the runtime (Lua 5.1), where the bgp types are, and
// that io, debug and most of os are not there (.luals/handlers.lua
// defines the sandbox's os).
const luarc = `{
  "$schema": "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json",
  "runtime.version": "Lua 5.1",
  "runtime.builtin": {
    "io": "disable",
    "os": "disable",
    "debug": "disable",
    "coroutine": "disable",
    "bit": "disable",
    "bit32": "disable",
    "ffi": "disable",
    "jit": "disable",
    "utf8": "disable"
  },
  "workspace.library": [".luals"],
  "workspace.checkThirdParty": false,
  "workspace.ignoreDir": [".luals"],
  "diagnostics.globals": []
}
`

// sandboxGlobals lists, as luacheck's read_globals, what a script's state
// holds with allow granted: taken from the sandbox itself, so the two
// cannot drift.
func sandboxGlobals(allow []string) map[string][]string {
	L := sandbox.New(slog.New(slog.DiscardHandler), nil, allow, nil)
	defer L.Close()
	out := map[string][]string{}
	L.G.Global.ForEach(func(k, v lua.LValue) {
		name := k.String()
		if name == "_G" || strings.HasPrefix(name, "_") && name != "_VERSION" {
			return
		}
		var fields []string
		if t, ok := v.(*lua.LTable); ok {
			t.ForEach(func(f, _ lua.LValue) {
				if s, ok := f.(lua.LString); ok && !strings.HasPrefix(string(s), "__") {
					fields = append(fields, string(s))
				}
			})
			sort.Strings(fields)
			if fields == nil {
				fields = []string{}
			}
		}
		out[name] = fields
	})
	return out
}

// luaGlobals writes read_globals entries: a plain name, or a table and
// its fields.
func luaGlobals(b *strings.Builder, g map[string][]string, indent string) {
	var names []string
	for n := range g {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if g[n] == nil {
			fmt.Fprintf(b, "%s%q,\n", indent, n)
			continue
		}
		quoted := make([]string, len(g[n]))
		for i, f := range g[n] {
			quoted[i] = fmt.Sprintf("%q", f)
		}
		fmt.Fprintf(b, "%s%s = { fields = { %s } },\n", indent, n, strings.Join(quoted, ", "))
	}
}

// luacheckrc is a luacheck config for edbgpd scripts: the sandbox's
// globals only (everyone's grants included), the handlers as globals a
// script defines, and per file what the config grants that script.
func luacheckrc(everyone []string, grants map[string][]string) string {
	var b strings.Builder
	b.WriteString("-- Written by `edbgpd init`: what edbgpd's sandbox gives a script.\n")
	b.WriteString("-- `bgp` comes from require(\"bgp\"); its fields are checked by `edbgpd check`.\n")
	b.WriteString("std = \"edbgpd\"\nstds.edbgpd = {\n  globals = {")
	for i, h := range luaapi.Handlers {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %q", h)
	}
	b.WriteString(" },\n  read_globals = {\n")
	base := sandboxGlobals(everyone)
	luaGlobals(&b, base, "    ")
	b.WriteString("  },\n}\n")
	var names []string
	for n := range grants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		extra := map[string][]string{}
		for n, f := range sandboxGlobals(append(slices.Clone(everyone), grants[name]...)) {
			if old, ok := base[n]; !ok || !slices.Equal(old, f) {
				extra[n] = f
			}
		}
		if len(extra) == 0 {
			continue
		}
		std := "edbgpd_" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, strings.ToLower(strings.TrimSuffix(name, ".lua")))
		fmt.Fprintf(&b, "-- granted to %s by the config\nstds.%s = {\n  read_globals = {\n", name, std)
		luaGlobals(&b, extra, "    ")
		fmt.Fprintf(&b, "  },\n}\nfiles[%q] = { std = \"+%s\" }\n", "**/"+name, std)
	}
	return b.String()
}
