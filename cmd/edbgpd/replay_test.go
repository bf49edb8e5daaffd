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

var risFile = bgptest.RISFile("updates.20160811.1600.gz")

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

// TestReplayOptions: --peer and --from/--to choose what is replayed.
func TestReplayOptions(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		peers []string // the collector peers the script may see
		want  string   // in the summary
	}{
		{"one AS", []string{"--peer", "AS34019"}, []string{"37.49.236.71 AS34019", "2001:7f8:54::71 AS34019"}, "of 2 collector peers"},
		{"one address", []string{"--peer", "37.49.236.1"}, []string{"37.49.236.1 AS8218"}, "of 1 collector peers"},
		{"a minute", []string{"--from", "2016-08-11T16:01:00Z", "--to", "1470931320"}, nil, "records left out by --peer/--from/--to"},
	}
	changes := regexp.MustCompile(`best-path changes from ([^"]+)"`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"test"}, tt.args...), "../../examples/collector-count/collector_count.lua", risFile)
			log, err := exec.Command(binary, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, log)
			}
			if !strings.Contains(string(log), tt.want) {
				t.Fatalf("no %q in:\n%s", tt.want, log)
			}
			seen := changes.FindAllStringSubmatch(string(log), -1)
			if len(seen) == 0 {
				t.Fatalf("no best-path changes:\n%s", log)
			}
			for _, m := range seen {
				if tt.peers != nil && !slices.Contains(tt.peers, m[1]) {
					t.Errorf("a change from %s; want only %v", m[1], tt.peers)
				}
			}
			if tt.name == "a minute" && (strings.Contains(string(log), `msg="16:01:00`) || !strings.Contains(string(log), `msg="16:02:00`)) {
				t.Errorf("the clock should start at 16:01:00 and report at 16:02:00:\n%s", log)
			}
		})
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
	config := bgptest.ReplayConfig(port, string(neighbours), scripts)
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
