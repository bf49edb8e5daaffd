package luaapi_test

import (
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

func TestBestPathAttributesAreDecodedOnFirstRead(t *testing.T) {
	var decodes atomic.Int32
	ev := (&luaapi.BestPath{Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: luaapi.Peer{Address: "192.0.2.2", ASN: 65002}, Timestamp: time.Now()}).
		DecodeWith(func(a *luaapi.Attributes) {
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
		{"pairs before any attribute", `local n = 0; for k in pairs(ev) do assert(k ~= "communities"); n = n + 1 end; assert(n > 0)`, 0},
		{"communities", `assert(ev.communities[1] == "65000:38" and ev.as_path_string == "65002 64512" and ev.med == 7 and ev.local_pref == nil)`, 1},
		{"second state, same event", `assert(ev.as_path[2] == 64512 and ev.nexthop == "192.0.2.2"); assert(getmetatable(ev) == nil)`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			L.SetGlobal("ev", luaapi.NewEventTables(L).BestPath(L, ev))
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
			if got := decodes.Load(); got != tc.decodes {
				t.Errorf("decoded %d times, want %d", got, tc.decodes)
			}
		})
	}
}
