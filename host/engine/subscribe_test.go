package engine_test

import (
	"strings"
	"testing"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
)

func TestSubscriptionAndPrevious(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("s.lua", `local bgp = require("bgp")
bgp.subscribe{prefixes = {"10.0.0.0/8"}, covered_by = {"192.0.2.0/24"}, peer_state = false}
local asked = false
function on_best_path(ev)
  if not asked then
    asked = true
    bgp.set_export_policy("subscribe after load", tostring(bgp.subscribe{}))
  end
  local prev = ev.previous and ev.previous.nexthop or "none"
  bgp.set_export_policy(ev.prefix, ev.nexthop .. " after " .. prev)
end
function on_peer_state(ev) bgp.set_export_policy(ev.peer.address, "peer event") end
`)
	if err := e.set.LoadAll(); err != nil {
		t.Fatal(err)
	}
	send := func(prefix, nh string, withdrawal bool) {
		e.set.Dispatch(event.Of((&event.BestPath{Prefix: prefix, Withdrawal: withdrawal}).WithAttributes(event.Attributes{Nexthop: nh})))
	}
	send("10.0.0.0/8", "192.0.2.1", false)
	send("10.1.0.0/16", "192.0.2.1", false) // not subscribed
	send("192.0.2.128/25", "192.0.2.7", false)
	send("10.0.0.0/8", "192.0.2.2", false)
	send("10.0.0.0/8", "192.0.2.2", true)
	send("10.0.0.0/8", "192.0.2.3", false)
	e.set.Dispatch(event.OfPeer(&event.PeerState{Peer: event.Peer{Address: "192.0.2.9"}, State: "idle"}))
	e.waitCall("10.0.0.0/8 192.0.2.3 after none")
	e.set.Script("s.lua").Sync()
	for _, want := range []string{"subscribe after load nil", "10.0.0.0/8 192.0.2.1 after none", "192.0.2.128/25 192.0.2.7 after none",
		"10.0.0.0/8 192.0.2.2 after 192.0.2.1", "10.0.0.0/8 192.0.2.2 after 192.0.2.2"} {
		if !e.rec.has(want) {
			t.Errorf("no call %q", want)
		}
	}
	for _, not := range []string{"10.1.0.0/16", "192.0.2.9 peer event"} {
		for _, c := range e.rec.calls {
			if strings.HasPrefix(c, not) {
				t.Errorf("got %q, not subscribed", c)
			}
		}
	}
	if got := e.set.Script("s.lua").Stats.Delivered.Load(); got != 5 {
		t.Errorf("delivered %d events, want 5 (the rest filtered in Go)", got)
	}
}

// TestReplayOnLoad: a script added to a running daemon asks for the table
// and gets it, filtered by its subscription.
