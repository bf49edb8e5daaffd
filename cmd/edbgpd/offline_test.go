package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedScripts runs every script test in the runner format:
// scripts/testdata/NAME.events.jsonl and examples/*/testdata/NAME.events.jsonl
// against NAME.lua beside the testdata folder, expecting NAME.expected.jsonl.
func TestShippedScripts(t *testing.T) {
	var events []string
	for _, pattern := range []string{"../../scripts/testdata/*.events.jsonl", "../../examples/*/testdata/*.events.jsonl"} {
		m, _ := filepath.Glob(pattern)
		events = append(events, m...)
	}
	if len(events) == 0 {
		t.Fatal("no script tests found")
	}
	for _, ev := range events {
		name := strings.TrimSuffix(filepath.Base(ev), ".events.jsonl")
		dir := filepath.Dir(filepath.Dir(ev))
		t.Run(filepath.Join(filepath.Base(dir), name), func(t *testing.T) {
			var out, errs bytes.Buffer
			script := filepath.Join(dir, name+".lua")
			expect := strings.TrimSuffix(ev, ".events.jsonl") + ".expected.jsonl"
			if code := runTest([]string{"-q", "--expect", expect, script, ev}, &out, &errs); code != 0 {
				t.Fatalf("edbgpd test %s: exit %d\n%s%s", script, code, errs.String(), out.String())
			}
		})
	}
}

func TestRunner(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	ticker := write("ticker.lua", `local bgp = require("bgp")
function on_load()
  bgp.every(60, function() bgp.set_export_policy("192.0.2.1", "tick " .. os.date("!%H:%M", bgp.now())) end)
end
function on_peer_state(ev) bgp.set_export_policy(ev.peer.address, ev.state) end
`)
	events := write("ticker.events.jsonl", `{"type":"advance","seconds":150}
{"type":"peer_state","peer":{"address":"192.0.2.2"},"state":"idle","timestamp":1700000200}
`)
	notifier := write("notifier.lua", `local bgp = require("bgp")
function on_load()
  bgp.http_post("https://hooks.example.net/bgp/x", {n = 1})
  bgp.exec("/usr/local/bin/page", {"up"})
end
`)
	reader := write("reader.lua", "local open = io.open\n")
	peers := write("peers.lua", `local bgp = require("bgp")
function on_load() bgp.set_default_export_policy("default-only") end
function on_peer_state(ev)
  if ev.state == "established" then return end
  local p = bgp.peer(ev.peer.address)
  bgp.log("info", "PEERS", #bgp.peers(), bgp.peer("192.0.2.99"))
  bgp.set_export_policy(ev.peer.address, string.format("%s asn=%d flaps=%d received=%d export=%s", p.state, p.asn, p.flaps, p.received, p.export_policy))
end
`)
	peerEvents := write("peers.events.jsonl", `{"type":"peer_state","peer":{"address":"192.0.2.2","asn":65002},"state":"established"}
{"type":"best_path","prefix":"10.0.0.0/8","peer":{"address":"192.0.2.2","asn":65002},"nexthop":"192.0.2.2"}
{"type":"best_path","prefix":"10.1.0.0/16","peer":{"address":"192.0.2.2","asn":65002},"nexthop":"192.0.2.2"}
{"type":"best_path","prefix":"10.1.0.0/16","withdrawal":true,"peer":{"address":"192.0.2.2","asn":65002}}
{"type":"peer_state","peer":{"address":"192.0.2.2","asn":65002},"state":"idle","old_state":"established"}
`)
	config := write("edbgpd.toml", `[global.config]
  as = 64512
  router-id = "192.0.2.1"
[edbgpd.grants."notifier.lua"]
  http-allow = ["https://hooks.example.net/bgp/"]
[edbgpd.grants."reader.lua"]
  allow = ["io"]
`)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"timers on the fake clock", []string{"-q", "--start", "1700000000", ticker, events}, 0,
			`{"action":"set_export_policy","args":{"peer":"192.0.2.1","policy":"tick 22:14"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.1","policy":"tick 22:15"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.1","policy":"tick 22:16"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"idle"}}
`, ""},
		{"difference", []string{"-q", "--expect", write("want.jsonl", `{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"idle"}}`), ticker, events}, 1,
			"", "action 1:\n  want {\"action\":\"set_export_policy\",\"args\":{\"peer\":\"192.0.2.2\",\"policy\":\"idle\"}}"},
		{"bad event line", []string{"-q", ticker, write("bad.jsonl", "{\"type\":\"advance\",\"seconds\":1}\n{\"type\":\"best_path\",\"prefix\":\"10.0.0.0/99\"}\n")}, 1,
			"", "bad.jsonl:2: prefix"},
		{"script that does not load", []string{"-q", write("broken.lua", "function (")}, 1, "", "did not load"},
		// With the daemon's config, its grants and allow-lists apply.
		{"notify without a config", []string{"-q", notifier}, 0,
			`{"action":"http_post","args":{"body":{"n":1},"url":"https://hooks.example.net/bgp/x"}}
{"action":"exec","args":{"args":["up"],"command":"/usr/local/bin/page"}}
`, ""},
		{"notify with the config", []string{"-q", "-f", config, notifier}, 0,
			`{"action":"http_post","args":{"body":{"n":1},"url":"https://hooks.example.net/bgp/x"}}
{"action":"exec","args":{"args":["up"],"command":"/usr/local/bin/page"},"refused":"command /usr/local/bin/page is not allowed ([edbgpd.notify] or [edbgpd.grants.\"notifier.lua\"] exec-allow)"}
`, ""},
		// Peer queries answer from the peer-state events and the policies set.
		{"peers from events", []string{peers, peerEvents}, 0,
			`{"action":"set_default_export_policy","args":{"policy":"default-only"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"idle asn=65002 flaps=1 received=1 export=default-only"}}
`, `"PEERS 1 nil no neighbor 192.0.2.99"`},
		{"sandbox without a grant", []string{"-q", reader}, 1, "", "did not load"},
		{"sandbox with the config's grant", []string{"-q", "-f", config, reader}, 0, "", ""},
		{"broken config", []string{"-q", "-f", write("broken.toml", "[edbgpd]\n  colour = 1\n"), reader}, 1, "", "broken.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := runTest(tc.args, &out, &errs)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errs.String())
			}
			if tc.stdout != "" && out.String() != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tc.stdout)
			}
			if !strings.Contains(errs.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errs.String())
			}
		})
	}
}
