package host_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// TestAudit answers "why did this peer get the full table?" from the log
// alone: every action names the script, the line, the event that caused
// it (event_seq, the seq the script saw) and its outcome.
func TestAudit(t *testing.T) {
	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "audit.lua"), []byte(`local bgp = require("bgp")
function on_best_path(ev)
  if ev.prefix ~= "10.0.0.0/8" or ev.withdrawal then return end
  bgp.log("info", "SEQ", ev.seq)
  bgp.set_export_policy(ev.peer.address, "full")
  pcall(bgp.set_export_policy, ev.peer.address, "no-such-policy")
  bgp.set_export_policy(ev.peer.address, "default-only")
end
`), 0o644)
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	logs := &bgptest.Buffer{}
	startDaemonLogged(t, edbgpdConfig(port, scripts, "127.0.0.2"), slog.New(slog.NewJSONHandler(logs, nil)))
	r.Connect(port)
	r.WaitEstablished()
	r.Announce("10.0.0.0/8", "65000:1")

	records := func() []map[string]any {
		var out []map[string]any
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["script"] == "audit.lua" {
				out = append(out, rec)
			}
		}
		return out
	}
	find := func(msg string) map[string]any {
		for _, rec := range records() {
			if rec["msg"] == msg {
				return rec
			}
		}
		return nil
	}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	bgptest.WaitFor(t, 10*time.Second, func() bool { return find("script action deferred (throttled)") != nil }, "the actions in the log")

	var wantSeq string // the seq of the event, as the script saw it
	for _, rec := range records() {
		if s, ok := rec["msg"].(string); ok && strings.HasPrefix(s, "SEQ ") {
			wantSeq = strings.TrimPrefix(s, "SEQ ")
		}
	}
	for _, tc := range []struct {
		msg, at, outcome string
	}{
		{"script action", "audit.lua:5", ""},
		{"script action failed", "audit.lua:6", `unknown policy "no-such-policy"`},
		{"script action deferred (throttled)", "audit.lua:7", ""},
	} {
		rec := find(tc.msg)
		if rec == nil {
			t.Fatalf("no %q record", tc.msg)
		}
		if rec["action"] != "set_export_policy" || rec["peer"] != "127.0.0.2" || !strings.HasSuffix(rec["at"].(string), tc.at) {
			t.Errorf("%s: %v", tc.msg, rec)
		}
		if got, _ := json.Marshal(rec["event_seq"]); string(got) != wantSeq {
			t.Errorf("%s: event_seq %s, the script saw seq %s", tc.msg, got, wantSeq)
		}
		if tc.outcome != "" && !strings.Contains(rec["err"].(string), tc.outcome) {
			t.Errorf("%s: err %v, want %q", tc.msg, rec["err"], tc.outcome)
		}
	}
}
