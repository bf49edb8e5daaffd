package luaapi_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

type fake struct {
	luaapi.Recorder
	calls []string
}

func (f *fake) SetExportPolicy(peer, policy string) error {
	if policy == "nope" {
		return errors.New(`unknown policy "nope"`)
	}
	f.calls = append(f.calls, "set_export_policy "+peer+" "+policy)
	return nil
}
func (f *fake) SetDefaultExportPolicy(policy string) error {
	f.calls = append(f.calls, "set_default_export_policy "+policy)
	return nil
}
func (f *fake) Peers() ([]luaapi.PeerStatus, error) {
	return []luaapi.PeerStatus{{Address: "192.0.2.2", ASN: 65002, State: "established", ExportPolicy: "full"}}, nil
}

// fakeRuntime records timers instead of running them.
type fakeRuntime struct{ timers []string }

func (r *fakeRuntime) StartTimer(delay, period time.Duration, fn *lua.LFunction) (int, error) {
	r.timers = append(r.timers, fmt.Sprintf("%v/%v", delay, period))
	return len(r.timers), nil
}
func (r *fakeRuntime) CancelTimer(id int) bool { return id >= 1 && id <= len(r.timers) }
func (r *fakeRuntime) PersistState(on bool) error {
	if on {
		return errors.New("no data folder configured")
	}
	return nil
}
func (r *fakeRuntime) Now() time.Time    { return time.Unix(1700000000, 500000000) }
func (r *fakeRuntime) Outside(fn func()) { fn() }
func (r *fakeRuntime) Subscribe(s *luaapi.Subscription) error {
	r.timers = append(r.timers, fmt.Sprintf("subscribe %d %d %v", len(s.Prefixes), len(s.CoveredBy), s.Replay))
	return nil
}
func (r *fakeRuntime) Walk(w luaapi.WalkRequest) error {
	r.timers = append(r.timers, fmt.Sprintf("walk %s %d", w.Family, w.Chunk))
	return nil
}
func (r *fakeRuntime) Callback(fn *lua.LFunction, result map[string]any) {
	r.timers = append(r.timers, fmt.Sprintf("callback %v", result["ok"]))
}

func TestModule(t *testing.T) {
	for _, tc := range []struct {
		name, code string
		err        string // substring of the Lua error; "" for none
		call       string // action recorded; "" for none
	}{
		{"set_export_policy", `assert(bgp.set_export_policy("192.0.2.2", "full") == true)`, "", "set_export_policy 192.0.2.2 full"},
		{"set_export_policy no peer", `bgp.set_export_policy(nil, "full")`, "bad argument #1 to set_export_policy (string expected, got nil)", ""},
		{"set_export_policy empty policy", `bgp.set_export_policy("192.0.2.2", "")`, "bad argument #2 to set_export_policy", ""},
		{"set_export_policy table policy", `bgp.set_export_policy("192.0.2.2", {})`, "bad argument #2 to set_export_policy (string expected, got table)", ""},
		{"set_export_policy refused", `local ok, why = bgp.set_export_policy("192.0.2.2", "nope"); assert(ok == nil and why == 'unknown policy "nope"', why)`, "", ""},
		{"set_default_export_policy", `assert(bgp.set_default_export_policy("default-only"))`, "", "set_default_export_policy default-only"},
		{"set_default_export_policy number", `bgp.set_default_export_policy()`, "bad argument #1 to set_default_export_policy", ""},
		{"peers", `local p = bgp.peers()[1]; assert(p.address == "192.0.2.2" and p.asn == 65002 and p.state == "established" and p.export_policy == "full")`, "", ""},
		{"log", `bgp.log("info", "hello", 1, nil, true)`, "", ""},
		{"log bad level", `bgp.log("loud", "x")`, "bad argument #1 to log", ""},
		{"after", `assert(bgp.after(1.5, function() end) == 1)`, "", ""},
		{"every", `assert(bgp.every(10, function() end) == 1)`, "", ""},
		{"after no function", `bgp.after(1, "x")`, "bad argument #2 to after (function expected, got string)", ""},
		{"after negative", `bgp.after(-1, function() end)`, "bad argument #1 to after", ""},
		{"every zero", `bgp.every(0, function() end)`, "bad argument #1 to every", ""},
		{"cancel", `assert(bgp.cancel(1) == false)`, "", ""},
		{"cancel not a number", `bgp.cancel("x")`, "bad argument #1 to cancel", ""},
		{"persist_state refused", `local ok, why = bgp.persist_state(true); assert(ok == nil and why:find("data folder"))`, "", ""},
		{"state table", `bgp.state.x = 1; assert(require("bgp").state.x == 1)`, "", ""},
		{"now", `assert(bgp.now() == 1700000000.5)`, "", ""},
		{"json round trip", `local v = bgp.json_decode(bgp.json_encode({a = {1, 2, "x"}, b = true})); assert(v.a[3] == "x" and v.b == true)`, "", ""},
		{"json encode function", `local ok, why = bgp.json_encode({f = print}); assert(ok == nil and why:find("function"))`, "", ""},
		// Shared tables are written out; cycles and exponential sharing
		// are refused, not walked until memory runs out.
		{"json encode shared", `local t = {1}; assert(bgp.json_encode({a = t, b = t}) == '{"a":[1],"b":[1]}')`, "", ""},
		{"json encode cycle", `local t = {}; t.self = t; local ok, why = bgp.json_encode(t); assert(ok == nil and why:find("cycle"), why)`, "", ""},
		{"json encode dag", `local t = {} for i = 1, 40 do t = {a = t, b = t} end; local ok, why = bgp.json_encode(t); assert(ok == nil and why:find("more than"), why)`, "", ""},
		{"json encode big strings", `local s = ("x"):rep(2^20); local t = {} for i = 1, 200 do t[i] = s end; local ok, why = bgp.json_encode(t); assert(ok == nil and why:find("MiB of strings"), why)`, "", ""},
		{"json decode bad", `local ok, why = bgp.json_decode("{"); assert(ok == nil and why:find("json_decode"))`, "", ""},
		{"parse_prefix", `local p = bgp.parse_prefix("10.1.2.3/8"); assert(p.prefix == "10.0.0.0/8" and p.length == 8 and p.family == "ipv4")`, "", ""},
		{"parse_prefix v6 address", `local p = bgp.parse_prefix("2001:db8::1"); assert(p.length == 128 and p.family == "ipv6")`, "", ""},
		{"parse_prefix bad", `local p, why = bgp.parse_prefix("10.0.0.0/33"); assert(p == nil and why)`, "", ""},
		{"prefix_contains", `assert(bgp.prefix_contains("10.0.0.0/8", "10.1.0.0/16") and bgp.prefix_contains("10.0.0.0/8", "10.9.9.9") and not bgp.prefix_contains("10.1.0.0/16", "10.0.0.0/8"))`, "", ""},
		{"prefix_contains bad", `bgp.prefix_contains("nope", "10.0.0.0/8")`, "bad argument #1 to prefix_contains", ""},
		{"prefix_overlap", `assert(bgp.prefix_overlap("10.0.0.0/8", "10.1.0.0/16") and not bgp.prefix_overlap("10.0.0.0/8", "192.0.2.0/24"))`, "", ""},
		{"parse_community", `local a, v = bgp.parse_community("65000:38"); assert(a == 65000 and v == 38); a, v = bgp.parse_community("blackhole"); assert(a == 65535 and v == 666)`, "", ""},
		{"parse_community bad", `local a, why = bgp.parse_community("65536:1"); assert(a == nil and why)`, "", ""},
		{"format_community", `assert(bgp.format_community(65000, 38) == "65000:38")`, "", ""},
		{"subscribe", `assert(bgp.subscribe{families = {"ipv4-unicast"}, prefixes = {"10.0.0.0/8", "192.0.2.1"}, covered_by = {"198.51.100.0/24"}, peers = {"192.0.2.2"}, communities = {"65000:1", "blackhole"}, peer_state = false, replay = true})`, "", ""},
		{"subscribe unknown field", `bgp.subscribe{prefix = {"10.0.0.0/8"}}`, "bgp.subscribe: unknown field prefix", ""},
		{"subscribe bad prefix", `bgp.subscribe{prefixes = {"10.0.0.0/99"}}`, "bgp.subscribe: prefixes", ""},
		{"subscribe bad peer", `bgp.subscribe{peers = {"nope"}}`, "bgp.subscribe: peers", ""},
		{"subscribe replay not bool", `bgp.subscribe{replay = "yes"}`, "replay must be true or false", ""},
		{"walk", `assert(bgp.walk{family = "ipv6-unicast", chunk = 10, fn = function(p) end, done = function(n) end})`, "", ""},
		{"walk no fn", `bgp.walk{}`, "bgp.walk: fn must be a function", ""},
		{"walk chunk", `bgp.walk{fn = print, chunk = 0}`, "chunk must be 1-100000", ""},
		{"format_community range", `bgp.format_community(70000, 1)`, "bad argument #1 to format_community", ""},
		// A list argument given as a table with other keys is refused,
		// not read as an empty list (a subscription to everything).
		{"subscribe prefixes not a list", `bgp.subscribe{prefixes = {p = "10.0.0.0/8"}}`, "bgp.subscribe: prefixes must be a list of strings", ""},
		{"subscribe prefixes with a hole", `bgp.subscribe{prefixes = {"10.0.0.0/8", x = 1}}`, "must be a list of strings", ""},
		{"announce communities not a list", `bgp.announce{prefix = "10.0.0.0/8", communities = {c = "65000:1"}}`, "bgp.announce: communities must be a list of strings", ""},
		{"announce as_path not a list", `bgp.announce{prefix = "10.0.0.0/8", as_path = {first = 65001}}`, "as_path must be a list of AS numbers", ""},
		{"exec args not a list", `bgp.exec("/bin/echo", {flag = "-n"})`, "bad argument #2 to exec (bgp.exec: arguments must be a list of strings)", ""},
		{"defined_set_add entries not a list", `bgp.defined_set_add("prefix", "s", {a = "10.0.0.0/8"})`, "bgp.defined_set_add: entries must be a list of strings", ""},
		// The error names the function however it is called.
		{"error under pcall", `local ok, err = pcall(bgp.after, "x"); error(err)`, "bad argument #1 to after (number expected, got string)", ""},
		{"error through an alias", `local f = bgp.set_export_policy; f(nil, "full")`, "bad argument #1 to set_export_policy (string expected, got nil)", ""},
		{"error in a method-style table", `local t = {go = bgp.announce}; t.go({})`, "bad argument #1 to announce", ""},
		{"other errors untouched", `local ok, err = pcall(bgp.json_decode, "{"); assert(ok and err == nil); error("plain")`, "plain", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			f := &fake{}
			luaapi.NewModule(luaapi.Options{Script: "test.lua", Actions: f, Runtime: &fakeRuntime{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Preload(L)
			err := L.DoString(`local bgp = require("bgp")` + "\n" + tc.code)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if got := strings.Join(f.calls, ";"); got != tc.call {
				t.Errorf("actions %q, want %q", got, tc.call)
			}
		})
	}
}

// TestTimerFloor: bgp.every runs no faster than MinPeriod; bgp.after is
// not held to it.
func TestTimerFloor(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	rt := &fakeRuntime{}
	luaapi.NewModule(luaapi.Options{Script: "t.lua", Actions: &fake{}, Runtime: rt, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Preload(L)
	if err := L.DoString(`local bgp = require("bgp"); bgp.every(0.001, function() end); bgp.after(0.001, function() end)`); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rt.timers, " "); got != "10ms/10ms 1ms/0s" {
		t.Errorf("timers %q, want every at 10ms and after at 1ms", got)
	}
}
