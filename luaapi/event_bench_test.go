package luaapi_test

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

// BenchmarkEventTable: building the Lua table of one best path, for a
// handler that reads the prefix only and for one that reads attributes.
func BenchmarkEventTable(b *testing.B) {
	attrs := luaapi.Attributes{Nexthop: "192.0.2.1", ASPath: []uint32{65002, 3356, 1299, 64512}, Origin: "igp",
		Communities: []string{"65000:1", "65000:2", "3356:100"}, MED: 10, HasMED: true}
	for _, bc := range []struct {
		name  string
		attrs bool
	}{{"prefix-only", false}, {"with-attributes", true}} {
		b.Run(bc.name, func(b *testing.B) {
			L := lua.NewState()
			defer L.Close()
			x := luaapi.NewEventTables(L)
			ev := (&luaapi.BestPath{Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: luaapi.Peer{Address: "192.0.2.2", ASN: 65002}}).WithAttributes(attrs)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				t := x.BestPath(L, ev)
				if bc.attrs {
					L.GetField(t, "communities")
				}
			}
		})
	}
}
