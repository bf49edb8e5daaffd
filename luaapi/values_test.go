package luaapi_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// TestCopyTable: bgp.state crosses a reload with its shape: shared
// tables copied once and still shared, cycles kept, functions dropped.
func TestCopyTable(t *testing.T) {
	src, dst := lua.NewState(), lua.NewState()
	defer src.Close()
	defer dst.Close()
	if err := src.DoString(`
local t = {n = 1}
for i = 1, 40 do t = {a = t, b = t} end
state = {dag = t, f = print}
state.self = state`); err != nil {
		t.Fatal(err)
	}
	cp, skipped := luaapi.CopyTable(dst, src.GetGlobal("state").(*lua.LTable))
	if skipped != 1 {
		t.Errorf("skipped %d, want 1 (the function)", skipped)
	}
	dst.SetGlobal("state", cp)
	if err := dst.DoString(`
assert(state.self == state, "cycle kept")
local t = state.dag
for i = 1, 40 do assert(t.a == t.b, "shared kept at " .. i); t = t.a end
assert(t.n == 1)`); err != nil {
		t.Fatal(err)
	}
}

// TestBestPathAsValue: a best path kept in bgp.state crosses a reload as
// a table of its fields, and encodes to JSON with them.
func TestBestPathAsValue(t *testing.T) {
	src, dst := lua.NewState(), lua.NewState()
	defer src.Close()
	defer dst.Close()
	x := luaapi.NewEventTables(src)
	ev := (&event.BestPath{Seq: 7, Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Peer: event.Peer{Address: "192.0.2.2", ASN: 65002}}).
		WithAttributes(event.Attributes{Communities: []string{"65000:38"}, ASPath: []uint32{65002}})
	src.SetGlobal("ev", x.BestPathEvent(src, ev, luaapi.Delivery{}))
	if err := src.DoString(`ev.note = "seen"; state = {kept = ev}`); err != nil {
		t.Fatal(err)
	}
	state := src.GetGlobal("state").(*lua.LTable)
	cp, skipped := luaapi.CopyTable(dst, state)
	if skipped != 0 {
		t.Errorf("skipped %d", skipped)
	}
	dst.SetGlobal("state", cp)
	if err := dst.DoString(`local k = state.kept
assert(k.prefix == "10.0.0.0/8" and k.peer.address == "192.0.2.2" and k.communities[1] == "65000:38" and k.note == "seen", "copied")`); err != nil {
		t.Fatal(err)
	}
	b, err := luaapi.EncodeJSON(state)
	if err != nil || !strings.Contains(string(b), `"prefix":"10.0.0.0/8"`) || !strings.Contains(string(b), `"note":"seen"`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

// TestJSONEncodeStopsAtDeadline: bgp.json_encode of a big table ends at
// the call's deadline, not after the whole table.
func TestJSONEncodeStopsAtDeadline(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	luaapi.NewModule(luaapi.Options{Script: "t.lua", Actions: &luaapi.Recorder{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Preload(L)
	if err := L.DoString(`T = {} for i = 1, 900000 do T[i] = {i} end`); err != nil {
		t.Fatal(err)
	}
	if err := L.DoString(`encode = require("bgp").json_encode`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	L.SetContext(ctx)
	// The Go function called straight: no Lua instruction runs after it
	// that the deadline could stop instead.
	if err := L.CallByParam(lua.P{Fn: L.GetGlobal("encode"), NRet: 2, Protect: true}, L.GetGlobal("T")); err != nil {
		t.Fatal(err)
	}
	if ok, why := L.Get(-2), L.Get(-1).String(); ok != lua.LNil || !strings.Contains(why, "cut off") {
		t.Errorf("json_encode of 900,000 tables with a 20 ms deadline: %v, %q", ok, why)
	}
}
