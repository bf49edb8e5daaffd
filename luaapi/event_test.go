package luaapi_test

import (
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

func TestBestPathAttributesAreDecodedOnFirstRead(t *testing.T) {
	var decodes atomic.Int32
	ev := (&event.BestPath{Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: event.Peer{Address: "192.0.2.2", ASN: 65002}, Timestamp: time.Now()}).
		DecodeWith(func(a *event.Attributes) {
			decodes.Add(1)
			a.Nexthop, a.ASPath, a.Origin = "192.0.2.2", []uint32{65002, 64512}, "igp"
			a.MED, a.HasMED = 7, true
			a.Communities = []string{"65000:38"}
		})
	for _, tc := range []struct {
		name    string
		code    string
		decodes int32 // total after this step; the event is shared by every state
	}{
		{"prefix only", `assert(ev.prefix == "10.0.0.0/8" and ev.peer.asn == 65002 and ev.withdrawal == false and ev.no_such_field == nil)`, 0},
		{"cheap fields", `assert(ev.peer.address == "192.0.2.2" and ev.timestamp > 0 and ev.age >= 0)`, 0},
		{"communities", `assert(ev.communities[1] == "65000:38" and ev.as_path_string == "65002 64512" and ev.med == 7 and ev.local_pref == nil)`, 1},
		{"second state, same event", `assert(ev.as_path[2] == 64512 and ev.nexthop == "192.0.2.2")`, 1},
		{"pairs lists the attributes too", `local seen = {}; for k in pairs(ev) do seen[k] = true end; assert(seen.communities and seen.prefix and seen.as_path)`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			x := luaapi.NewEventTables(L)
			L.SetGlobal("ev", x.BestPathEvent(L, ev, luaapi.Delivery{}))
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
			if got := decodes.Load(); got != tc.decodes {
				t.Errorf("decoded %d times, want %d", got, tc.decodes)
			}
		})
	}
}

// TestBestPathEventUserdata: the userdata on_best_path receives reads like
// the table, decodes on first attribute read, lists its fields with pairs,
// keeps fields a script sets, and carries what the delivery adds.
func TestBestPathEventUserdata(t *testing.T) {
	var decodes atomic.Int32
	prev := (&event.BestPath{Prefix: "10.0.0.0/8"}).WithAttributes(event.Attributes{Nexthop: "192.0.2.9"})
	ev := (&event.BestPath{Seq: 42, Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: event.Peer{Address: "192.0.2.2", ASN: 65002}, Timestamp: time.Now()}).
		DecodeWith(func(a *event.Attributes) {
			decodes.Add(1)
			a.Nexthop, a.ASPath, a.Origin = "192.0.2.2", []uint32{65002, 64512}, "igp"
			a.Communities = []string{"65000:38"}
		})
	L := lua.NewState()
	defer L.Close()
	x := luaapi.NewEventTables(L)
	for _, tc := range []struct {
		name    string
		d       luaapi.Delivery
		code    string
		decodes int32
	}{
		{"cheap fields", luaapi.Delivery{}, `assert(ev.type == "best_path" and ev.seq == 42 and ev.prefix == "10.0.0.0/8" and ev.withdrawal == false
			and ev.peer.address == "192.0.2.2" and ev.no_such_field == nil and ev.previous == nil and ev.replay == nil and ev.coalesced == nil
			and type(ev) == "userdata" and tostring(ev) == "best_path 10.0.0.0/8")`, 0},
		{"attributes", luaapi.Delivery{}, `assert(ev.communities[1] == "65000:38" and #ev.as_path == 2 and ev.as_path_string == "65002 64512" and ev.med == nil)
			assert(ev.as_path == ev.as_path, "a field is built once per delivery")`, 1},
		{"pairs lists every field", luaapi.Delivery{}, `local seen = {}; for k, v in pairs(ev) do seen[k] = v end
			assert(seen.prefix == "10.0.0.0/8" and seen.nexthop == "192.0.2.2" and seen.communities[1] == "65000:38" and seen.med == nil)
			local n = 0; for _ in pairs({a = 1, b = 2}) do n = n + 1 end; assert(n == 2, "pairs on tables as before")`, 1},
		{"a script's own fields", luaapi.Delivery{}, `ev.seen = true; ev.prefix = "mine"; assert(ev.seen == true and ev.prefix == "mine")
			local found = false; for k in pairs(ev) do if k == "seen" then found = true end end; assert(found)`, 1},
		{"what the delivery adds", luaapi.Delivery{Previous: prev, Replay: true, Skipped: 3}, `assert(ev.previous.nexthop == "192.0.2.9" and ev.replay == true
			and ev.coalesced == true and ev.skipped == 3)`, 1},
		{"not a table", luaapi.Delivery{}, `assert(not pcall(function() return rawget(ev, "prefix") end)); assert(getmetatable(ev) == "best_path event")`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L.SetGlobal("ev", x.BestPathEvent(L, ev, tc.d))
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
			if got := decodes.Load(); got != tc.decodes {
				t.Errorf("decoded %d times, want %d", got, tc.decodes)
			}
		})
	}
}
