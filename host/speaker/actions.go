package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// This file is the BGP side of the bgp module: luaapi.Actions on GoBGP,
// all but Notify (host puts the two together). Calls come from script
// goroutines; each is one or two GoBGP API calls.

// announcements remembers which script announced which prefix (the path
// uuid GoBGP gave it), so a script withdraws only its own routes.
type announcements struct {
	mu    sync.Mutex
	paths map[string]map[string][]byte // script -> prefix -> uuid
}

// SetExportPolicy implements luaapi.Actions. What can be refused is
// refused at once (a peer that is not an address, an unknown policy); the
// change itself is queued and returns: making it take effect on an
// established session lists what the peer is sent before and after,
// seconds at a full table, which no script waits for. Changes take effect
// one at a time, in the order asked, and bgp.peer reports the policy
// asked for at once.
func (sp *Speaker) SetExportPolicy(peer, policy string) error {
	a, err := netip.ParseAddr(peer)
	if err != nil {
		return fmt.Errorf("peer %q is not an IP address", peer)
	}
	peer = a.String()
	if err := sp.CheckPolicy(policy); err != nil {
		return err
	}
	sp.policy.ask(peer, policy)
	sp.policyJobs.run(func() {
		defer sp.policy.asked(peer, policy)
		if sp.policy.inForce(peer, policy) {
			return // nothing to change: skip listing what the peer is sent
		}
		start := time.Now()
		if err := sp.withPolicyEffect([]string{peer}, policy, func() error { return sp.policy.SetPeer(peer, policy) }); err != nil {
			sp.log.Error("export policy change failed", "peer", peer, "policy", policy, "err", err)
			return
		}
		sp.log.Info("export policy in force", "peer", peer, "policy", policy, "took", time.Since(start).Round(time.Millisecond))
	})
	return nil
}

// SetImportPolicy implements luaapi.Actions. A soft reset in re-applies
// import policy to what the peer sent, so the change is immediate.
func (sp *Speaker) SetImportPolicy(peer, policy string) error {
	if a, err := netip.ParseAddr(peer); err == nil {
		peer = a.String()
	}
	if sp.imports.inForce(peer, policy) {
		return nil
	}
	if err := sp.imports.SetPeer(peer, policy); err != nil {
		return err
	}
	if p, err := sp.Peer(peer); err == nil && p.State == "established" {
		return sp.ResetPeer(peer, "soft-in")
	}
	return nil
}

// SetDefaultExportPolicy implements luaapi.Actions. It takes effect on
// every established peer no script has set, queued as SetExportPolicy is.
func (sp *Speaker) SetDefaultExportPolicy(policy string) error {
	if err := sp.CheckPolicy(policy); err != nil {
		return err
	}
	sp.policy.ask("", policy)
	sp.policyJobs.run(func() {
		defer sp.policy.asked("", policy)
		if sp.policy.inForce("", policy) {
			// A script's on_load sets it on every reload: with nothing to
			// change, listing what every peer is sent would be all cost.
			return
		}
		var unset []string
		if ps, err := sp.Peers(); err == nil {
			for _, p := range ps {
				if !sp.policy.IsSet(p.Address) {
					unset = append(unset, p.Address)
				}
			}
		}
		start := time.Now()
		if err := sp.withPolicyEffect(unset, policy, func() error { return sp.policy.SetDefault(policy) }); err != nil {
			sp.log.Error("default export policy change failed", "policy", policy, "err", err)
			return
		}
		sp.log.Info("default export policy in force", "policy", policy, "peers", len(unset), "took", time.Since(start).Round(time.Millisecond))
	})
	return nil
}

// PolicyChangesDone waits until the queued export policy changes are in
// force.
func (sp *Speaker) PolicyChangesDone() { sp.policyJobs.wait() }

// Peers implements luaapi.Actions.
func (sp *Speaker) Peers() ([]luaapi.PeerStatus, error) {
	var out []luaapi.PeerStatus
	err := sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, sp.peerStatus(p))
	})
	return out, err
}

// Peer implements luaapi.Actions.
func (sp *Speaker) Peer(address string) (*luaapi.PeerStatus, error) {
	var st *luaapi.PeerStatus
	err := sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: address, EnableAdvertised: true}, func(p *api.Peer) {
		s := sp.peerStatus(p)
		st = &s
	})
	if err == nil && st == nil {
		err = fmt.Errorf("no neighbor %s", address)
	}
	return st, err
}

func (sp *Speaker) peerStatus(p *api.Peer) luaapi.PeerStatus {
	st := luaapi.PeerStatus{Address: p.GetConf().GetNeighborAddress(), ASN: p.GetConf().GetPeerAsn(), Description: p.GetConf().GetDescription()}
	if s := p.GetState(); s != nil {
		st.State = sessionStates[s.SessionState]
		st.RouterID = cleanAddr(s.RouterId)
		st.AdminDown = s.AdminState == api.PeerState_DOWN
		st.Flaps = s.Flops
		if st.ASN == 0 {
			st.ASN = s.PeerAsn
		}
	}
	for _, a := range p.GetAfiSafis() {
		if s := a.GetState(); s != nil {
			st.Received += s.Received
			st.Accepted += s.Accepted
			st.Advertised += s.Advertised
		}
	}
	if up := p.GetTimers().GetState().GetUptime(); up != nil && st.State == "established" {
		st.Uptime = time.Since(up.AsTime()).Seconds()
	}
	st.ExportPolicy = sp.policy.PeerPolicy(st.Address)
	st.ImportPolicy = sp.imports.PeerPolicy(st.Address)
	return st
}

// ResetPeer implements luaapi.Actions.
func (sp *Speaker) ResetPeer(address, how string) error {
	r := &api.ResetPeerRequest{Address: address, Communication: "reset by an edbgpd script"}
	switch how {
	case "hard":
	case "soft":
		r.Soft, r.Direction = true, api.ResetPeerRequest_BOTH
	case "soft-in":
		r.Soft, r.Direction = true, api.ResetPeerRequest_IN
	case "soft-out":
		r.Soft, r.Direction = true, api.ResetPeerRequest_OUT
	default:
		return fmt.Errorf("reset %q: want hard, soft, soft-in or soft-out", how)
	}
	return sp.srv.ResetPeer(context.Background(), r)
}

// SetPeerEnabled implements luaapi.Actions.
func (sp *Speaker) SetPeerEnabled(address string, enabled bool) error {
	ctx := context.Background()
	if enabled {
		return sp.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: address})
	}
	return sp.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: address, Communication: "disabled by an edbgpd script"})
}

// routeBound is how many routes script may have announced, < 0 none.
func (sp *Speaker) routeBound(script string) int {
	if sp.maxRoutes != nil {
		if n := sp.maxRoutes(script); n != 0 {
			return n
		}
	}
	return DefaultMaxRoutes
}

// Announce implements luaapi.Actions. Past the script's max-routes a new
// prefix is refused; announcing one it has again (a changed route) never
// is, and a bound lowered on SIGHUP takes nothing away.
func (sp *Speaker) Announce(script string, r luaapi.Route) error {
	if err := sp.checkBound(script, r.Prefix); err != nil {
		return err
	}
	asPath := r.ASPath
	if r.Prepend > 0 {
		g, err := sp.srv.GetBgp(context.Background(), &api.GetBgpRequest{})
		if err != nil {
			return err
		}
		own := make([]uint32, r.Prepend, r.Prepend+len(asPath))
		for i := range own {
			own[i] = g.Global.Asn
		}
		asPath = append(own, asPath...)
	}
	p, err := routeOf(r, asPath).path()
	if err != nil {
		return err
	}
	res, err := sp.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
	if err != nil {
		return err
	}
	sp.announced.mu.Lock()
	defer sp.announced.mu.Unlock()
	if sp.announced.paths == nil {
		sp.announced.paths = make(map[string]map[string][]byte)
	}
	if sp.announced.paths[script] == nil {
		sp.announced.paths[script] = make(map[string][]byte)
	}
	sp.announced.paths[script][r.Prefix] = res.Uuid
	return nil
}

// Withdraw implements luaapi.Actions.
func (sp *Speaker) Withdraw(script, prefix string) error {
	sp.announced.mu.Lock()
	defer sp.announced.mu.Unlock()
	id, ok := sp.announced.paths[script][prefix]
	if !ok {
		return fmt.Errorf("%s was not announced by %s", prefix, script)
	}
	if err := sp.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: id}); err != nil {
		return err
	}
	delete(sp.announced.paths[script], prefix)
	return nil
}

// BestPath implements luaapi.Actions.
func (sp *Speaker) BestPath(prefix string) (*event.BestPath, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	best, _, err := sp.bestCovering(p, api.TableLookupPrefix_EXACT)
	return best, err
}

// Lookup implements luaapi.Actions.
func (sp *Speaker) Lookup(address string) (*event.BestPath, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil, err
	}
	best, _, err := sp.bestCovering(netip.PrefixFrom(a, a.BitLen()), api.TableLookupPrefix_SHORTER)
	return best, err
}

// Received implements luaapi.Actions.
func (sp *Speaker) Received(peer, prefix string) (*event.BestPath, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	var got *api.Path
	err = sp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: peer, Family: familyOf(p),
		Prefixes: []*api.TableLookupPrefix{{Prefix: p.String(), Type: api.TableLookupPrefix_EXACT}},
	}, func(dst *api.Destination) {
		for _, path := range dst.Paths {
			if !path.Filtered && !path.IsWithdraw {
				got = path
			}
		}
	})
	if err != nil || got == nil {
		return nil, err
	}
	return sp.conv.bestPathEvent(got)
}

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// bestCovering returns the best path of the longest prefix that matches p
// under lookup (EXACT: p itself; SHORTER: p or any prefix covering it).
func (sp *Speaker) bestCovering(p netip.Prefix, lookup api.TableLookupPrefix_Type) (*event.BestPath, int, error) {
	family := familyOf(p)
	var best *api.Path
	bits := -1
	err := sp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: family,
		Prefixes: []*api.TableLookupPrefix{{Prefix: p.String(), Type: lookup}},
	}, func(dst *api.Destination) {
		dp, err := netip.ParsePrefix(dst.Prefix)
		if err != nil || dp.Bits() <= bits {
			return
		}
		for _, path := range dst.Paths {
			if path.Best {
				best, bits = path, dp.Bits()
			}
		}
	})
	if err != nil || best == nil {
		return nil, bits, err
	}
	ev, err := sp.conv.bestPathEvent(best)
	return ev, bits, err
}

// Replay implements luaapi.Actions: a walk of the global RIB's best paths.
func (sp *Speaker) Replay(families []string, fn func(*event.BestPath)) (uint64, error) {
	seq := sp.conv.lastSeq()
	if len(families) == 0 {
		families = []string{"ipv4-unicast", "ipv6-unicast"}
	}
	for _, f := range families {
		rf, err := bgp.GetRouteFamily(f)
		if err != nil {
			return 0, fmt.Errorf("family %q: %w", f, err)
		}
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		err = sp.srv.ListPath(context.Background(), &api.ListPathRequest{
			TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)},
		}, func(dst *api.Destination) {
			for _, p := range dst.Paths {
				if p.Best {
					if ev, err := sp.conv.bestPathEvent(p); err == nil {
						fn(ev)
					}
				}
			}
		})
		if err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// advertised lists the prefixes GoBGP sends to peer under the current
// export policy (its Adj-RIB-Out, both unicast families), and whether the
// session is up.
func (sp *Speaker) advertised(peer string) (map[string]bool, bool) {
	p, err := sp.Peer(peer)
	if err != nil || p.State != "established" {
		return nil, false
	}
	out := make(map[string]bool)
	for _, f := range []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	} {
		// Prefixes only: the binary form spares GoBGP decoding attributes.
		sp.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: peer, Family: f, EnableOnlyBinary: true},
			func(dst *api.Destination) { out[dst.Prefix] = true })
	}
	return out, true
}

var setTypes = map[string]api.DefinedType{
	"prefix": api.DefinedType_PREFIX, "neighbor": api.DefinedType_NEIGHBOR, "community": api.DefinedType_COMMUNITY,
	"ext-community": api.DefinedType_EXT_COMMUNITY, "large-community": api.DefinedType_LARGE_COMMUNITY, "as-path": api.DefinedType_AS_PATH,
}

// DefinedSet implements luaapi.Actions. Prefix entries are "10.0.0.0/8" or
// "10.0.0.0/8 24..32" (a mask length range); the others are taken as GoBGP
// takes them in its config. GoBGP evaluates the sets on routes processed
// from then on; a soft reset (bgp.reset_peer) re-applies them to the rest.
func (sp *Speaker) DefinedSet(op, kind, name string, entries []string) error {
	typ, ok := setTypes[kind]
	if !ok {
		return fmt.Errorf("defined-set kind %q", kind)
	}
	set := &api.DefinedSet{DefinedType: typ, Name: name}
	if typ == api.DefinedType_PREFIX {
		for _, e := range entries {
			p, err := parseSetPrefix(e)
			if err != nil {
				return err
			}
			set.Prefixes = append(set.Prefixes, p)
		}
	} else {
		set.List = entries
	}
	ctx := context.Background()
	if op == "remove" {
		return sp.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set})
	}
	return sp.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set})
}

// parseSetPrefix reads "10.0.0.0/8" or "10.0.0.0/8 24..32".
func parseSetPrefix(s string) (*api.Prefix, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return nil, fmt.Errorf("prefix-set entry %q: want PREFIX [MIN..MAX]", s)
	}
	p, err := netip.ParsePrefix(fields[0])
	if err != nil {
		return nil, fmt.Errorf("prefix-set entry %q: %v", s, err)
	}
	out := &api.Prefix{IpPrefix: p.Masked().String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())}
	if len(fields) == 2 {
		var lo, hi uint32
		if _, err := fmt.Sscanf(fields[1], "%d..%d", &lo, &hi); err != nil || lo > hi || hi > uint32(p.Addr().BitLen()) || lo < uint32(p.Bits()) {
			return nil, fmt.Errorf("prefix-set entry %q: mask length range %q", s, fields[1])
		}
		out.MaskLengthMin, out.MaskLengthMax = lo, hi
	}
	return out, nil
}

// RIBPrefixes implements luaapi.Actions.
func (sp *Speaker) RIBPrefixes(family string) ([]string, error) {
	rf, err := bgp.GetRouteFamily(family)
	if err != nil {
		return nil, fmt.Errorf("family %q: %w", family, err)
	}
	afi, safi := bgp.RouteFamilyToAfiSafi(rf)
	var out []string
	err = sp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)},
		EnableOnlyBinary: true, // GoBGP as a library ignores SortType
	}, func(dst *api.Destination) { out = append(out, dst.Prefix) })
	return out, err
}

// BestPaths implements luaapi.Actions.
func (sp *Speaker) BestPaths(prefixes []string) ([]*event.BestPath, error) {
	if len(prefixes) == 0 {
		return nil, nil
	}
	first, err := netip.ParsePrefix(prefixes[0])
	if err != nil {
		return nil, err
	}
	lookups := make([]*api.TableLookupPrefix, len(prefixes))
	for i, p := range prefixes {
		lookups[i] = &api.TableLookupPrefix{Prefix: p, Type: api.TableLookupPrefix_EXACT}
	}
	var out []*event.BestPath
	err = sp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: familyOf(first), Prefixes: lookups,
	}, func(dst *api.Destination) {
		for _, p := range dst.Paths {
			if p.Best {
				if ev, err := sp.conv.bestPathEvent(p); err == nil {
					out = append(out, ev)
				}
			}
		}
	})
	return out, err
}

// PreviewExportPolicy implements luaapi.Actions for the built-in policies.
// From GoBGP it reads what the peer is eligible for (the candidates of its
// Adj-RIB-Out, each marked as accepted or filtered by the export policy
// now). From those it works out what the peer would get. That is exact as
// long as the config file has no export policies of its own, or the peer
// is on "full" now; otherwise it says it cannot tell.
func (sp *Speaker) PreviewExportPolicy(peer, policy string) (add, withdraw []string, err error) {
	if !isBuiltin(policy) {
		return nil, nil, fmt.Errorf("preview covers full, default-only and none, not %q", policy)
	}
	sp.PolicyChangesDone() // preview from the policy in force
	if p, err := sp.Peer(peer); err != nil {
		return nil, nil, err
	} else if p.State != "established" {
		return nil, nil, fmt.Errorf("session with %s is %s: nothing is advertised", peer, p.State)
	}
	candidates := map[string]bool{} // prefix -> accepted now
	for _, f := range []*api.Family{familyOf(netip.MustParsePrefix("0.0.0.0/0")), familyOf(netip.MustParsePrefix("::/0"))} {
		err := sp.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: peer, Family: f, EnableFiltered: true, EnableOnlyBinary: true},
			func(dst *api.Destination) {
				for _, p := range dst.Paths {
					candidates[dst.Prefix] = candidates[dst.Prefix] || !p.Filtered
				}
			})
		if err != nil {
			return nil, nil, err
		}
	}
	sp.policy.mu.Lock()
	userRules := len(sp.policy.userExport) > 0 || sp.policy.userDefault != api.RouteAction_ACCEPT
	sp.policy.mu.Unlock()
	onFull := sp.policy.PeerPolicy(peer) == luaapi.PolicyFull
	if userRules && !onFull {
		return nil, nil, fmt.Errorf("cannot preview: the config has export policies of its own and %s is not on full", peer)
	}
	allowed := func(prefix string, accepted bool) bool { // what "full" would send
		if userRules {
			return accepted // the peer is on full: what it gets now
		}
		return true
	}
	for prefix, accepted := range candidates {
		var target bool
		switch policy {
		case luaapi.PolicyFull:
			target = allowed(prefix, accepted)
		case luaapi.PolicyDefaultOnly:
			target = (prefix == "0.0.0.0/0" || prefix == "::/0") && allowed(prefix, accepted)
		}
		switch {
		case target && !accepted:
			add = append(add, prefix)
		case !target && accepted:
			withdraw = append(withdraw, prefix)
		}
	}
	slices.Sort(add)
	slices.Sort(withdraw)
	return add, withdraw, nil
}

// The checks below let the throttle refuse at once what the speaker would
// refuse later (engine.Checker).

// CheckPolicy refuses a policy name that is neither built in nor defined.
func (sp *Speaker) CheckPolicy(policy string) error { return checkPolicy(sp.srv, policy) }

// CheckPeer refuses an address that is not a configured neighbour.
func (sp *Speaker) CheckPeer(address string) error {
	found := false
	err := sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: address}, func(*api.Peer) { found = true })
	if err == nil && !found {
		err = fmt.Errorf("no neighbor %s", address)
	}
	return err
}

// CheckRoute refuses a route that does not build, or one past the
// script's max-routes.
func (sp *Speaker) CheckRoute(script string, r luaapi.Route) error {
	if _, err := routeOf(r, r.ASPath).path(); err != nil {
		return err
	}
	return sp.checkBound(script, r.Prefix)
}

// checkBound refuses a new prefix past script's max-routes.
func (sp *Speaker) checkBound(script, prefix string) error {
	sp.announced.mu.Lock()
	_, again := sp.announced.paths[script][prefix]
	n := len(sp.announced.paths[script])
	sp.announced.mu.Unlock()
	if bound := sp.routeBound(script); !again && bound >= 0 && n >= bound {
		return fmt.Errorf("%s has %d routes announced, the most it may have (max-routes %d); withdraw some first", script, n, bound)
	}
	return nil
}

// routeOf is a script's route in the config's form, with its final AS path.
func routeOf(r luaapi.Route, asPath []uint32) Route {
	return Route{Prefix: r.Prefix, Nexthop: r.Nexthop, Origin: r.Origin, ASPath: asPath, Communities: r.Communities,
		LargeCommunities: r.LargeCommunities, MED: r.MED, LocalPref: r.LocalPref}
}

// CheckWithdraw refuses to withdraw what script did not announce.
func (sp *Speaker) CheckWithdraw(script, prefix string) error {
	sp.announced.mu.Lock()
	defer sp.announced.mu.Unlock()
	if _, ok := sp.announced.paths[script][prefix]; !ok {
		return fmt.Errorf("%s was not announced by %s", prefix, script)
	}
	return nil
}
