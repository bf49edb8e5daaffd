package luaapi_test

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// BenchmarkEventTable: handing one best path to Lua (the userdata every
// best path is), for a handler that reads the prefix only and for one
// that reads attributes.
func BenchmarkEventTable(b *testing.B) {
	attrs := event.Attributes{Nexthop: "192.0.2.1", ASPath: []uint32{65002, 3356, 1299, 64512}, Origin: "igp",
		Communities: []string{"65000:1", "65000:2", "3356:100"}, MED: 10, HasMED: true}
	for _, bc := range []struct {
		name  string
		attrs bool
	}{{"userdata/prefix-only", false}, {"userdata/with-attributes", true}} {
		b.Run(bc.name, func(b *testing.B) {
			L := lua.NewState()
			defer L.Close()
			x := luaapi.NewEventTables(L)
			ev := (&event.BestPath{Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: event.Peer{Address: "192.0.2.2", ASN: 65002}}).WithAttributes(attrs)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				v := x.BestPathEvent(L, ev, luaapi.Delivery{})
				L.GetField(v, "prefix")
				if bc.attrs {
					L.GetField(v, "as_path")
					L.GetField(v, "communities")
				}
			}
		})
	}
}
