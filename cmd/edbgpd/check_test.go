package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: edbgpd check names each mistake with file and line, and
// exits 1; shipped scripts pass.
func TestCheck(t *testing.T) {
	tests := []struct {
		file string
		want []string // lines of its output
	}{
		{"typo.lua", []string{
			"typo.lua:2: on_bestpath is not a handler edbgpd calls (on_load, on_best_path, on_peer_state, on_unload); did you mean on_best_path?",
			`typo.lua:3: bgp.anounce: the bgp module has no "anounce"; did you mean announce?`,
			"typo.lua:3: on_load: attempt to call a non-function object",
		}},
		{"sub.lua", []string{"sub.lua:2: bad argument #1 to subscribe (bgp.subscribe: unknown field prefix)"}},
		{"handler.lua", []string{"handler.lua: on_best_path is a number, want a function"}},
		{"syntax.lua", []string{"syntax.lua:2:13: syntax error near '='"}},
		{"boom.lua", []string{"boom.lua:2: on_load: boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "check", tt.file)
			cmd := exec.Command(binary, "check", path)
			out, err := cmd.Output()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit %d (%v); want 1", code, err)
			}
			got := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = filepath.Join("testdata", "check", w)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	shipped, _ := filepath.Glob("../../examples/*/*.lua")
	shipped = append(shipped, "../../scripts/konami.lua")
	if out, err := exec.Command(binary, append([]string{"check"}, shipped...)...).CombinedOutput(); err != nil || !strings.Contains(string(out), "scripts OK") {
		t.Fatalf("shipped scripts: %v\n%s", err, out)
	}
}
