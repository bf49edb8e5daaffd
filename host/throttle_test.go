package host

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

func TestThrottle(t *testing.T) {
	clock := NewFakeClock(time.Unix(1700000000, 0))
	rec := &luaapi.Recorder{}
	th := newThrottle(rec, ThrottleOptions{}, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	calls := func() string {
		var l []string
		for _, c := range rec.Calls() {
			l = append(l, c.String())
		}
		return strings.Join(l, "\n")
	}
	// A flapping trigger: five policy changes for one peer in a second.
	for _, p := range []string{"full", "default-only", "full", "none", "default-only"} {
		th.SetExportPolicy("192.0.2.2", p)
		clock.AdvanceTo(clock.Now().Add(200*time.Millisecond), func() {})
	}
	th.SetExportPolicy("192.0.2.3", "none") // another peer: not held back
	want := `{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"full"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.3","policy":"none"}}`
	if got := calls(); got != want {
		t.Fatalf("before the interval ends:\n%s\nwant\n%s", got, want)
	}
	clock.AdvanceTo(clock.Now().Add(5*time.Second), func() {})
	want += "\n" + `{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"default-only"}}`
	if got := calls(); got != want {
		t.Fatalf("after it: the last intended policy only:\n%s\nwant\n%s", got, want)
	}
	if th.Throttled.Load() != 4 {
		t.Errorf("throttled %d, want 4", th.Throttled.Load())
	}
	// Resets: at most one per 30 s per peer; announce/withdraw per prefix.
	th.ResetPeer("192.0.2.2", "hard")
	th.ResetPeer("192.0.2.2", "hard")
	th.Announce("s.lua", luaapi.Route{Prefix: "192.0.2.66/32"})
	th.Withdraw("s.lua", "192.0.2.66/32")
	n := len(rec.Calls())
	if n != 5 {
		t.Fatalf("%d calls, want 5 (the first reset and the announce at once)", n)
	}
	clock.AdvanceTo(clock.Now().Add(31*time.Second), func() {})
	var tail []string
	for _, c := range rec.Calls()[n:] {
		tail = append(tail, c.Action)
	}
	if strings.Join(tail, ",") != "withdraw,reset_peer" {
		t.Errorf("after the intervals: %v, want the withdrawal, then the second reset", tail)
	}
}
