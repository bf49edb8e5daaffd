package luaapi_test

import (
	"net/netip"
	"testing"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

func TestSubscriptionMatch(t *testing.T) {
	bp := func(prefix, family, peer string, comms ...string) event.Event {
		return event.Of((&event.BestPath{Prefix: prefix, Family: family, Peer: event.Peer{Address: peer}}).
			WithAttributes(event.Attributes{Communities: comms}))
	}
	ps := event.OfPeer(&event.PeerState{Peer: event.Peer{Address: "192.0.2.2"}, State: "idle"})
	for _, tc := range []struct {
		name string
		sub  luaapi.Subscription
		ev   event.Event
		want bool
	}{
		{"empty matches all", luaapi.Subscription{PeerState: true}, bp("10.0.0.0/8", "ipv4-unicast", ""), true},
		{"family", luaapi.Subscription{Families: map[string]bool{"ipv6-unicast": true}}, bp("10.0.0.0/8", "ipv4-unicast", ""), false},
		{"exact prefix", luaapi.Subscription{Prefixes: map[string]bool{"10.0.0.0/8": true}}, bp("10.0.0.0/8", "ipv4-unicast", ""), true},
		{"exact prefix, longer one", luaapi.Subscription{Prefixes: map[string]bool{"10.0.0.0/8": true}}, bp("10.1.0.0/16", "ipv4-unicast", ""), false},
		{"covered by", luaapi.Subscription{CoveredBy: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, bp("10.1.0.0/16", "ipv4-unicast", ""), true},
		{"covered by, itself", luaapi.Subscription{CoveredBy: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, bp("10.0.0.0/8", "ipv4-unicast", ""), true},
		{"covered by, shorter", luaapi.Subscription{CoveredBy: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, bp("0.0.0.0/0", "ipv4-unicast", ""), false},
		{"peer", luaapi.Subscription{Peers: map[string]bool{"192.0.2.2": true}}, bp("10.0.0.0/8", "ipv4-unicast", "192.0.2.3"), false},
		{"community present", luaapi.Subscription{Communities: map[string]bool{"65000:1": true}}, bp("10.0.0.0/8", "ipv4-unicast", "", "65000:2", "65000:1"), true},
		{"community absent", luaapi.Subscription{Communities: map[string]bool{"65000:1": true}}, bp("10.0.0.0/8", "ipv4-unicast", ""), false},
		{"peer state on", luaapi.Subscription{PeerState: true}, ps, true},
		{"peer state off", luaapi.Subscription{}, ps, false},
		{"peer state of another peer", luaapi.Subscription{PeerState: true, Peers: map[string]bool{"192.0.2.9": true}}, ps, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sub.Match(tc.ev); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}
