package engine

import (
	"errors"
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
	th := NewThrottle(rec, nil, ThrottleOptions{}, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	if th.Throttled() != 4 {
		t.Errorf("throttled %d, want 4", th.Throttled())
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

// checkedRecorder refuses what a daemon with one peer, one named policy
// and no announcements of its own would refuse.
type checkedRecorder struct{ *luaapi.Recorder }

func (checkedRecorder) CheckPolicy(p string) error {
	if p == "full" || p == "lab" {
		return nil
	}
	return errors.New("unknown policy " + p)
}
func (checkedRecorder) CheckPeer(a string) error {
	if a == "192.0.2.2" {
		return nil
	}
	return errors.New("no neighbor " + a)
}
func (checkedRecorder) CheckRoute(script string, r luaapi.Route) error {
	if r.Nexthop == "bad" {
		return errors.New("bad nexthop")
	}
	return nil
}
func (checkedRecorder) CheckWithdraw(script, prefix string) error {
	return errors.New(prefix + " was not announced by " + script)
}

func TestThrottleChecks(t *testing.T) {
	clock := NewFakeClock(time.Unix(1700000000, 0))
	rec := checkedRecorder{&luaapi.Recorder{}}
	th := NewThrottle(rec, rec, ThrottleOptions{}, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var deferred *luaapi.Deferred
	for _, tc := range []struct {
		name string
		do   func() error
		want string // "" done, "deferred", or the refusal
	}{
		{"policy", func() error { return th.SetExportPolicy("192.0.2.2", "full") }, ""},
		{"policy again: deferred", func() error { return th.SetExportPolicy("192.0.2.2", "lab") }, "deferred"},
		{"unknown policy: refused at once, though throttled", func() error { return th.SetExportPolicy("192.0.2.2", "nope") }, "unknown policy nope"},
		{"unknown import policy", func() error { return th.SetImportPolicy("192.0.2.2", "nope") }, "unknown policy nope"},
		{"reset of no neighbour", func() error { return th.ResetPeer("192.0.2.9", "hard") }, "no neighbor 192.0.2.9"},
		{"disable of no neighbour", func() error { return th.SetPeerEnabled("192.0.2.9", false) }, "no neighbor 192.0.2.9"},
		{"bad route", func() error { return th.Announce("s.lua", luaapi.Route{Prefix: "192.0.2.0/24", Nexthop: "bad"}) }, "bad nexthop"},
		{"withdraw of nothing", func() error { return th.Withdraw("s.lua", "192.0.2.0/24") }, "was not announced"},
		{"announce", func() error { return th.Announce("s.lua", luaapi.Route{Prefix: "192.0.2.0/24"}) }, ""},
		{"announce again: deferred", func() error { return th.Announce("s.lua", luaapi.Route{Prefix: "192.0.2.0/24", MED: new(uint32)}) }, "deferred"},
		{"withdraw replaces the waiting announce", func() error { return th.Withdraw("s.lua", "192.0.2.0/24") }, "deferred"},
	} {
		err := tc.do()
		switch {
		case tc.want == "" && err != nil, tc.want == "deferred" && !errors.As(err, &deferred),
			tc.want != "" && tc.want != "deferred" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if deferred == nil || deferred.In <= 0 || deferred.In > time.Second {
		t.Errorf("deferred %+v, want the route interval left", deferred)
	}
	clock.AdvanceTo(clock.Now().Add(6*time.Second), func() {})
	var got []string
	for _, c := range rec.Calls() {
		got = append(got, c.String())
	}
	want := `{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"full"}}
{"action":"announce","args":{"prefix":"192.0.2.0/24"}}
{"action":"withdraw","args":{"prefix":"192.0.2.0/24"}}
{"action":"set_export_policy","args":{"peer":"192.0.2.2","policy":"lab"}}`
	if strings.Join(got, "\n") != want {
		t.Errorf("done:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}
