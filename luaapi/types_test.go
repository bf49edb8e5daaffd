package luaapi

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// classFields lists the ---@field names of a ---@class block.
func classFields(src, class string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(src, "\n") {
		switch {
		case strings.HasPrefix(l, "---@class "):
			name := strings.Fields(strings.TrimPrefix(l, "---@class "))[0]
			in = strings.TrimSuffix(name, ":") == class
		case in && strings.HasPrefix(l, "---@field "):
			out = append(out, strings.Fields(l)[1])
		case !strings.HasPrefix(l, "---"):
			in = false
		}
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func tableKeys(t *lua.LTable) []string {
	var out []string
	t.ForEach(func(k, _ lua.LValue) { out = append(out, k.String()) })
	slices.Sort(out)
	return out
}

// TestStubs: the LuaLS definitions name every function of the bgp module
// and every field of both events, and nothing else; they are Lua.
func TestStubs(t *testing.T) {
	b, err := Types.ReadFile("types/bgp.lua")
	if err != nil {
		t.Fatal(err)
	}
	h, err := Types.ReadFile("types/handlers.lua")
	if err != nil {
		t.Fatal(err)
	}
	src, handlers := string(b), string(h)
	for name, s := range map[string]string{"bgp.lua": src, "handlers.lua": handlers} {
		L := lua.NewState()
		if _, err := L.LoadString(s); err != nil {
			t.Errorf("%s does not compile: %v", name, err)
		}
		L.Close()
	}

	var stubbed []string
	for _, m := range regexp.MustCompile(`(?m)^function bgp\.(\w+)\(`).FindAllStringSubmatch(src, -1) {
		stubbed = append(stubbed, m[1])
	}
	slices.Sort(stubbed)
	if want := sorted(ModuleFunctions()); !slices.Equal(stubbed, want) {
		t.Errorf("types/bgp.lua stubs %v;\nthe module has %v", stubbed, want)
	}
	if got := classFields(src, "bgp"); !slices.Equal(got, []string{"state"}) {
		t.Errorf("class bgp fields %v; want [state]", got)
	}

	if got, want := classFields(src, "bgp.BestPathEvent"), sorted(BestPathFields()); !slices.Equal(got, want) {
		t.Errorf("bgp.BestPathEvent fields %v;\nevents have %v", got, want)
	}

	L := lua.NewState()
	defer L.Close()
	x := NewEventTables(L)
	ps := x.PeerState(L, &event.PeerState{Seq: 1, Peer: event.Peer{Address: "192.0.2.1", ASN: 65001, RouterID: "192.0.2.1"},
		State: "idle", OldState: "established", Reason: "hold timer expired", Timestamp: time.Unix(1, 0)})
	if got, want := classFields(src, "bgp.PeerStateEvent"), tableKeys(ps); !slices.Equal(got, want) {
		t.Errorf("bgp.PeerStateEvent fields %v;\nevents have %v", got, want)
	}
	if got, want := classFields(src, "bgp.Peer"), tableKeys(ps.RawGetString("peer").(*lua.LTable)); !slices.Equal(got, want) {
		t.Errorf("bgp.Peer fields %v; events have %v", got, want)
	}

	var declared []string
	for _, m := range regexp.MustCompile(`(?m)^function (on_\w+)\(`).FindAllStringSubmatch(handlers, -1) {
		declared = append(declared, m[1])
	}
	slices.Sort(declared)
	if want := sorted(Handlers); !slices.Equal(declared, want) {
		t.Errorf("types/handlers.lua declares %v; the handlers are %v", declared, want)
	}
}
