package luaapi_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

func TestRouteAndPeerFunctions(t *testing.T) {
	rec := func() *luaapi.Recorder {
		return &luaapi.Recorder{
			PeerList: []luaapi.PeerStatus{{Address: "192.0.2.2", ASN: 65002, State: "established", Received: 10}},
			Paths: map[string]*event.BestPath{
				"10.0.0.0/8":  (&event.BestPath{Prefix: "10.0.0.0/8"}).WithAttributes(event.Attributes{Nexthop: "192.0.2.2"}),
				"10.1.0.0/16": (&event.BestPath{Prefix: "10.1.0.0/16"}).WithAttributes(event.Attributes{Nexthop: "192.0.2.3"}),
			},
		}
	}
	for _, tc := range []struct {
		name, code string
		err        string // substring of the Lua error; "" for none
		calls      string // recorded calls, one JSON line each
	}{
		{"announce", `assert(bgp.announce{prefix = "192.0.2.1", nexthop = "198.51.100.1", communities = {"65535:666"}, large_communities = {"65000:1:2"}, as_path = {65010}, med = 5, local_pref = 200, origin = "egp"})`, "",
			`{"action":"announce","args":{"as_path":[65010],"communities":["65535:666"],"large_communities":["65000:1:2"],"local_pref":200,"med":5,"nexthop":"198.51.100.1","origin":"egp","prefix":"192.0.2.1/32"}}`},
		{"announce prepend", `assert(bgp.announce{prefix = "192.0.2.0/24", prepend = 2})`, "", `{"action":"announce","args":{"prefix":"192.0.2.0/24","prepend":2}}`},
		{"announce prepend too long", `bgp.announce{prefix = "192.0.2.0/24", prepend = 100}`, "prepend must be 0-32", ""},
		{"announce v6", `assert(bgp.announce{prefix = "2001:db8::/32"})`, "", `{"action":"announce","args":{"prefix":"2001:db8::/32"}}`},
		{"announce no prefix", `bgp.announce{nexthop = "192.0.2.1"}`, "bgp.announce: prefix is required", ""},
		{"announce bad prefix", `bgp.announce{prefix = "10.0.0.0/40"}`, "bgp.announce: prefix", ""},
		{"announce unknown field", `bgp.announce{prefix = "10.0.0.0/8", colour = "red"}`, "bgp.announce: unknown field colour", ""},
		{"announce communities not a list", `bgp.announce{prefix = "10.0.0.0/8", communities = "65000:1"}`, "communities must be a list of strings", ""},
		{"announce bad community", `bgp.announce{prefix = "10.0.0.0/8", communities = {"65000:x"}}`, "community", ""},
		{"announce med negative", `bgp.announce{prefix = "10.0.0.0/8", med = -1}`, "med must be a whole number", ""},
		{"announce not a table", `bgp.announce("10.0.0.0/8")`, "bad argument #1 to announce (table expected, got string)", ""},
		{"withdraw", `assert(bgp.withdraw("192.0.2.1/32"))`, "", `{"action":"withdraw","args":{"prefix":"192.0.2.1/32"}}`},
		{"withdraw bad", `bgp.withdraw(42)`, "bad argument #1 to withdraw", ""},
		{"best_path", `local p = bgp.best_path("10.0.0.0/8"); assert(p.prefix == "10.0.0.0/8" and p.nexthop == "192.0.2.2"); assert(bgp.best_path("10.2.0.0/16") == nil)`, "", ""},
		{"lookup", `assert(bgp.lookup("10.1.2.3").prefix == "10.1.0.0/16" and bgp.lookup("10.2.0.1").prefix == "10.0.0.0/8" and bgp.lookup("192.0.2.1") == nil)`, "", ""},
		{"lookup bad", `bgp.lookup("ten")`, "bad argument #1 to lookup", ""},
		{"peer", `local p = bgp.peer("192.0.2.2"); assert(p.asn == 65002 and p.received == 10); local n, why = bgp.peer("192.0.2.9"); assert(n == nil and why:find("no neighbor"))`, "", ""},
		{"peer prefix", `bgp.peer("192.0.2.0/24")`, "want an address", ""},
		{"reset_peer", `assert(bgp.reset_peer("192.0.2.2")); assert(bgp.reset_peer("192.0.2.2", "soft-out"))`, "",
			`{"action":"reset_peer","args":{"how":"hard","peer":"192.0.2.2"}}` + "\n" + `{"action":"reset_peer","args":{"how":"soft-out","peer":"192.0.2.2"}}`},
		{"reset_peer bad how", `bgp.reset_peer("192.0.2.2", "gently")`, "bad argument #2 to reset_peer", ""},
		{"http_post", `assert(bgp.http_post("https://hooks.example.net/x", {prefix = "10.0.0.0/8", up = false}, function(r) end))`, "",
			`{"action":"http_post","args":{"body":{"prefix":"10.0.0.0/8","up":false},"url":"https://hooks.example.net/x"}}`},
		{"http_post bad body", `bgp.http_post("https://x", {f = print})`, "bad argument #2 to http_post", ""},
		{"http_post bad callback", `bgp.http_post("https://x", {}, 42)`, "bad argument #3 to http_post", ""},
		{"exec", `assert(bgp.exec("/usr/local/bin/page", {"-t", "ops"}))`, "", `{"action":"exec","args":{"args":["-t","ops"],"command":"/usr/local/bin/page"}}`},
		{"exec bad args", `bgp.exec("/bin/echo", {1, 2})`, "bad argument #2 to exec", ""},
		{"set_import_policy", `assert(bgp.set_import_policy("192.0.2.2", "default-only"))`, "", `{"action":"set_import_policy","args":{"peer":"192.0.2.2","policy":"default-only"}}`},
		{"set_import_policy prefix", `bgp.set_import_policy("192.0.2.0/24", "none")`, "want an address", ""},
		{"defined_set_add", `assert(bgp.defined_set_add("prefix", "customers", {"198.51.100.0/24", "203.0.113.0/24 24..32"}))`, "",
			`{"action":"defined_set_add","args":{"entries":["198.51.100.0/24","203.0.113.0/24 24..32"],"kind":"prefix","name":"customers"}}`},
		{"defined_set_remove", `assert(bgp.defined_set_remove("community", "blackholes", {"65535:666"}))`, "",
			`{"action":"defined_set_remove","args":{"entries":["65535:666"],"kind":"community","name":"blackholes"}}`},
		{"defined_set bad kind", `bgp.defined_set_add("colour", "x", {"red"})`, "bad argument #1 to defined_set_add", ""},
		{"defined_set own name", `bgp.defined_set_add("neighbor", "edbgpd-g1-none", {"192.0.2.2"})`, "bad argument #2 to defined_set_add", ""},
		{"defined_set empty", `bgp.defined_set_remove("prefix", "x", {})`, "bad argument #3 to defined_set_remove", ""},
		{"received", `assert(bgp.received("192.0.2.2", "10.0.0.0/8") == nil)`, "", ""},
		{"received bad peer", `bgp.received("10.0.0.0/8", "10.0.0.0/8")`, "bad argument #1 to received", ""},
		{"received bad prefix", `bgp.received("192.0.2.2", "x")`, "bad argument #2 to received", ""},
		{"preview_export_policy", `local p = bgp.preview_export_policy("192.0.2.2", "full"); assert(#p.add == 0 and #p.withdraw == 0)`, "", ""},
		{"disable enable", `assert(bgp.disable_peer("192.0.2.2") and bgp.enable_peer("192.0.2.2"))`, "",
			`{"action":"disable_peer","args":{"peer":"192.0.2.2"}}` + "\n" + `{"action":"enable_peer","args":{"peer":"192.0.2.2"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			r := rec()
			luaapi.NewModule(luaapi.Options{Script: "t.lua", Actions: r, Runtime: &fakeRuntime{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Preload(L)
			err := L.DoString(`local bgp = require("bgp")` + "\n" + tc.code)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			var got []string
			for _, c := range r.Calls() {
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != tc.calls {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.calls)
			}
		})
	}
}
