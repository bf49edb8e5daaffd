package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

const risFile = "../../../shared/data/updates.20160811.1600.gz"

// seenScript logs each prefix the first time it has a best path.
const seenScript = `local bgp = require("bgp")
local seen = {}
function on_best_path(ev)
  if not seen[ev.prefix] then
    seen[ev.prefix] = true
    bgp.log("info", "SEEN " .. ev.prefix)
  end
end
`

var seenLine = regexp.MustCompile(`msg="SEEN ([^"]+)"`)

func seenPrefixes(log string) []string {
	var out []string
	for _, m := range seenLine.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// TestTestReplaysMRT: edbgpd test on a RIS file runs konami on real
// traffic (nobody sent the code: its only action is the one on_load
// takes) and the counting example per collector peer.
func TestTestReplaysMRT(t *testing.T) {
	out, err := exec.Command(binary, "test", "../../scripts/konami.lua", risFile).Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != `{"action":"set_default_export_policy","args":{"policy":"default-only"}}` {
		t.Fatalf("konami on RIS traffic did:\n%s", got)
	}
	cmd := exec.Command(binary, "test", "../../examples/collector-count/collector_count.lua", risFile)
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, log)
	}
	for _, want := range []string{
		"replayed 17216 updates and 0 session changes of 40 collector peers",
		`msg="16:01:00: `, // the file's minutes drive bgp.every
		"best-path changes from 37.49.236.71 AS34019", // a collector peer, by its own address
		"best-path changes from 2001:7f8:54::",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("no %q in:\n%s", want, log)
		}
	}
}

// TestReplayLive: edbgpd replay plays a RIS file to a running daemon
// configured by --print-config; its script sees every prefix the same
// script sees offline.
func TestReplayLive(t *testing.T) {
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	os.Mkdir(scripts, 0o755)
	os.WriteFile(filepath.Join(scripts, "seen.lua"), []byte(seenScript), 0o644)
	offline, err := exec.Command(binary, "test", filepath.Join(scripts, "seen.lua"), risFile).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, offline)
	}
	want := seenPrefixes(string(offline))
	if len(want) < 1000 {
		t.Fatalf("offline: %d prefixes", len(want))
	}
	neighbours, err := exec.Command(binary, "replay", "--print-config", "--source", "127.3.0.1", risFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	port := bgptest.FreePort(t)
	config := fmt.Sprintf(`[global.config]
  as = 4294967294
  router-id = "192.0.2.254"
  port = %d
  local-address-list = ["127.0.0.1"]
%s
[edbgpd]
  scripts = %q
  default-export-policy = "none"
`, port, neighbours, scripts)
	cfgPath := filepath.Join(dir, "edbgpd.toml")
	os.WriteFile(cfgPath, []byte(config), 0o644)
	logs := &bgptest.Buffer{}
	daemon := exec.Command(binary, "-f", cfgPath, "--api-hosts", "")
	daemon.Stdout, daemon.Stderr = logs, logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	out, err := exec.Command(binary, "replay", "--connect", fmt.Sprintf("127.0.0.1:%d", port), "--source", "127.3.0.1", risFile).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "replayed 17216 updates") {
		t.Fatalf("replay said: %s", out)
	}
	bgptest.WaitFor(t, 60*time.Second, func() bool { return len(seenPrefixes(logs.String())) >= len(want) },
		fmt.Sprintf("the daemon's script to see %d prefixes", len(want)))
	if got := seenPrefixes(logs.String()); !slices.Equal(got, want) {
		t.Fatalf("live saw %d prefixes, offline %d", len(got), len(want))
	}
}
