package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edbgpd/edbgpd/luaapi"
)

// TestInit: edbgpd init writes a folder LuaLS and luacheck understand;
// luacheck then flags what the sandbox leaves out, and not what the
// config grants a script.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(binary, "init", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rc map[string]any
	b, err := os.ReadFile(filepath.Join(dir, ".luarc.json"))
	if err != nil || json.Unmarshal(b, &rc) != nil || rc["runtime.version"] != "Lua 5.1" {
		t.Fatalf(".luarc.json: %v %s", err, b)
	}
	for _, name := range []string{"bgp.lua", "handlers.lua"} {
		got, err := os.ReadFile(filepath.Join(dir, ".luals", name))
		want, _ := luaapi.Types.ReadFile("types/" + name)
		if err != nil || string(got) != string(want) {
			t.Fatalf(".luals/%s: %v", name, err)
		}
	}
	if out, err := exec.Command(binary, "init", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Fatalf("a second init overwrote: %s", out)
	}

	if _, err := exec.LookPath("luacheck"); err != nil {
		t.Fatal("luacheck is needed (apt-get install lua-check; .ci/run installs it)")
	}
	const script = `local bgp = require("bgp")
function on_load() bgp.log("info", os.date("!%H:%M", os.time())) end
function on_best_path(ev) local f = io.open("/tmp/x") if f then f:close() end bgp.log("info", ev.prefix) end
`
	os.WriteFile(filepath.Join(dir, "inventory.lua"), []byte(script), 0o644)
	luacheck := func() string {
		cmd := exec.Command("luacheck", "--no-color", "inventory.lua")
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := luacheck(); !strings.Contains(out, "accessing undefined variable 'io'") || strings.Contains(out, "variable os") || strings.Contains(out, "on_load") {
		t.Fatalf("luacheck in the sandbox:\n%s", out)
	}
	config := filepath.Join(dir, "edbgpd.toml")
	os.WriteFile(config, []byte("[global.config]\n  as = 65001\n  router-id = \"127.0.0.1\"\n[edbgpd.grants.\"inventory.lua\"]\n  allow = [\"io\"]\n"), 0o644)
	if out, err := exec.Command(binary, "init", "--force", "-f", config, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out := luacheck(); !strings.Contains(out, "0 warnings / 0 errors") {
		t.Fatalf("luacheck with io granted to the script:\n%s", out)
	}
}
