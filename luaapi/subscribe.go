package luaapi

import (
	"fmt"
	"net/netip"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// Subscription is what a script asked to receive. The daemon applies it
// in Go, before queueing, so a script that cares about ten prefixes does
// not pay for a million. A zero field matches everything.
type Subscription struct {
	Families    map[string]bool // "ipv4-unicast", ...
	Prefixes    map[string]bool // exact prefixes, canonical form
	CoveredBy   []netip.Prefix  // or any prefix within one of these
	Peers       map[string]bool // source peer (best paths) or peer (states)
	Communities map[string]bool // best paths carrying at least one of these
	PeerState   bool            // deliver peer-state events
	Replay      bool            // replay the current table at load
}

// WantsPrevious tells whether events carry `previous`: only for scripts
// that subscribed to prefixes, so the memory it takes stays small.
func (s *Subscription) WantsPrevious() bool { return len(s.Prefixes) > 0 || len(s.CoveredBy) > 0 }

// Match tells whether the script wants ev.
func (s *Subscription) Match(ev event.Event) bool {
	if e := ev.BestPath; e != nil {
		return s.matchBestPath(e)
	}
	if e := ev.PeerState; e != nil {
		return s.PeerState && (len(s.Peers) == 0 || s.Peers[e.Peer.Address])
	}
	return true
}

func (s *Subscription) matchBestPath(e *event.BestPath) bool {
	if len(s.Families) > 0 && !s.Families[e.Family] {
		return false
	}
	if len(s.Peers) > 0 && !s.Peers[e.Peer.Address] {
		return false
	}
	if len(s.Prefixes) > 0 || len(s.CoveredBy) > 0 {
		ok := s.Prefixes[e.Prefix]
		if !ok && len(s.CoveredBy) > 0 {
			if p, err := netip.ParsePrefix(e.Prefix); err == nil {
				for _, c := range s.CoveredBy {
					if c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
						ok = true
						break
					}
				}
			}
		}
		if !ok {
			return false
		}
	}
	if len(s.Communities) > 0 {
		for _, c := range e.Attrs().Communities { // decodes: only for such scripts
			if s.Communities[c] {
				return true
			}
		}
		return false
	}
	return true
}

var subscribeKeys = map[string]bool{"families": true, "prefixes": true, "covered_by": true, "peers": true,
	"communities": true, "peer_state": true, "replay": true}

// bgp.subscribe{families=, prefixes=, covered_by=, peers=, communities=,
// peer_state=true, replay=false} -> true | nil, reason
func (m *Module) subscribe(L *lua.LState) int {
	const fn = "bgp.subscribe"
	t := L.CheckTable(1)
	t.ForEach(func(k, _ lua.LValue) {
		if ks, ok := k.(lua.LString); !ok || !subscribeKeys[string(ks)] {
			L.ArgError(1, fmt.Sprintf("%s: unknown field %s", fn, k.String()))
		}
	})
	s := &Subscription{PeerState: true}
	set := func(key string, check func(string) (string, error)) map[string]bool {
		l := optStrings(L, t, key, fn)
		if l == nil {
			return nil
		}
		out := make(map[string]bool, len(l))
		for _, x := range l {
			v, err := check(x)
			if err != nil {
				L.ArgError(1, fmt.Sprintf("%s: %s: %v", fn, key, err))
			}
			out[v] = true
		}
		return out
	}
	s.Families = set("families", func(x string) (string, error) { return x, nil }) // GoBGP's names
	s.Prefixes = set("prefixes", func(x string) (string, error) {
		p, err := ParsePrefixOrAddr(x)
		return p.String(), err
	})
	for _, x := range optStrings(L, t, "covered_by", fn) {
		p, err := ParsePrefixOrAddr(x)
		if err != nil {
			L.ArgError(1, fmt.Sprintf("%s: covered_by: %v", fn, err))
		}
		s.CoveredBy = append(s.CoveredBy, p)
	}
	s.Peers = set("peers", func(x string) (string, error) {
		a, err := netip.ParseAddr(x)
		return a.String(), err
	})
	s.Communities = set("communities", func(x string) (string, error) {
		h, l, err := ParseCommunity(x)
		return fmt.Sprintf("%d:%d", h, l), err
	})
	for key, dst := range map[string]*bool{"peer_state": &s.PeerState, "replay": &s.Replay} {
		switch v := t.RawGetString(key).(type) {
		case *lua.LNilType:
		case lua.LBool:
			*dst = bool(v)
		default:
			L.ArgError(1, fmt.Sprintf("%s: %s must be true or false", fn, key))
		}
	}
	if err := m.Runtime.Subscribe(s); err != nil {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}
