package host

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

	"github.com/edbgpd/edbgpd/luaapi"
)

// This file is the daemon side of the bgp module: luaapi.Actions on GoBGP.
// Calls come from script goroutines; each is one or two GoBGP API calls.

var _ luaapi.Actions = (*Daemon)(nil)

// announcements remembers which script announced which prefix (the path
// uuid GoBGP gave it), so a script withdraws only its own routes.
type announcements struct {
	mu    sync.Mutex
	paths map[string]map[string][]byte // script -> prefix -> uuid
}

// SetExportPolicy implements luaapi.Actions. The change takes effect at
// once if the peer's session is up.
func (d *Daemon) SetExportPolicy(peer, policy string) error {
	if a, err := netip.ParseAddr(peer); err == nil {
		peer = a.String()
	}
	if d.policy.inForce(peer, policy) {
		return nil // nothing to change: skip listing what the peer is sent
	}
	return d.withPolicyEffect([]string{peer}, func() error { return d.policy.SetPeer(peer, policy) })
}

// SetImportPolicy implements luaapi.Actions. A soft reset in re-applies
// import policy to what the peer sent, so the change is immediate.
func (d *Daemon) SetImportPolicy(peer, policy string) error {
	if a, err := netip.ParseAddr(peer); err == nil {
		peer = a.String()
	}
	if d.imports.inForce(peer, policy) {
		return nil
	}
	if err := d.imports.SetPeer(peer, policy); err != nil {
		return err
	}
	if p, err := d.Peer(peer); err == nil && p.State == "established" {
		return d.ResetPeer(peer, "soft-in")
	}
	return nil
}

// SetDefaultExportPolicy implements luaapi.Actions. It takes effect at
// once for every established peer no script has set.
func (d *Daemon) SetDefaultExportPolicy(policy string) error {
	if d.policy.inForce("", policy) {
		// A script's on_load sets it on every reload: with nothing to
		// change, listing what every peer is sent would be all cost.
		return nil
	}
	var unset []string
	if ps, err := d.Peers(); err == nil {
		for _, p := range ps {
			if !d.policy.IsSet(p.Address) {
				unset = append(unset, p.Address)
			}
		}
	}
	return d.withPolicyEffect(unset, func() error { return d.policy.SetDefault(policy) })
}

// Peers implements luaapi.Actions.
func (d *Daemon) Peers() ([]luaapi.PeerStatus, error) {
	var out []luaapi.PeerStatus
	err := d.Server.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, d.peerStatus(p))
	})
	return out, err
}

// Peer implements luaapi.Actions.
func (d *Daemon) Peer(address string) (*luaapi.PeerStatus, error) {
	var st *luaapi.PeerStatus
	err := d.Server.ListPeer(context.Background(), &api.ListPeerRequest{Address: address, EnableAdvertised: true}, func(p *api.Peer) {
		s := d.peerStatus(p)
		st = &s
	})
	if err == nil && st == nil {
		err = fmt.Errorf("no neighbor %s", address)
	}
	return st, err
}

func (d *Daemon) peerStatus(p *api.Peer) luaapi.PeerStatus {
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
	st.ExportPolicy = d.policy.PeerPolicy(st.Address)
	st.ImportPolicy = d.imports.PeerPolicy(st.Address)
	return st
}

// ResetPeer implements luaapi.Actions.
func (d *Daemon) ResetPeer(address, how string) error {
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
	return d.Server.ResetPeer(context.Background(), r)
}

// SetPeerEnabled implements luaapi.Actions.
func (d *Daemon) SetPeerEnabled(address string, enabled bool) error {
	ctx := context.Background()
	if enabled {
		return d.Server.EnablePeer(ctx, &api.EnablePeerRequest{Address: address})
	}
	return d.Server.DisablePeer(ctx, &api.DisablePeerRequest{Address: address, Communication: "disabled by an edbgpd script"})
}

// Announce implements luaapi.Actions.
func (d *Daemon) Announce(script string, r luaapi.Route) error {
	asPath := r.ASPath
	if r.Prepend > 0 {
		g, err := d.Server.GetBgp(context.Background(), &api.GetBgpRequest{})
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
	res, err := d.Server.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
	if err != nil {
		return err
	}
	d.announced.mu.Lock()
	defer d.announced.mu.Unlock()
	if d.announced.paths == nil {
		d.announced.paths = make(map[string]map[string][]byte)
	}
	if d.announced.paths[script] == nil {
		d.announced.paths[script] = make(map[string][]byte)
	}
	d.announced.paths[script][r.Prefix] = res.Uuid
	return nil
}

// Withdraw implements luaapi.Actions.
func (d *Daemon) Withdraw(script, prefix string) error {
	d.announced.mu.Lock()
	defer d.announced.mu.Unlock()
	id, ok := d.announced.paths[script][prefix]
	if !ok {
		return fmt.Errorf("%s was not announced by %s", prefix, script)
	}
	if err := d.Server.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: id}); err != nil {
		return err
	}
	delete(d.announced.paths[script], prefix)
	return nil
}

// BestPath implements luaapi.Actions.
func (d *Daemon) BestPath(prefix string) (*luaapi.BestPath, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	best, _, err := d.bestCovering(p, api.TableLookupPrefix_EXACT)
	return best, err
}

// Lookup implements luaapi.Actions.
func (d *Daemon) Lookup(address string) (*luaapi.BestPath, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil, err
	}
	best, _, err := d.bestCovering(netip.PrefixFrom(a, a.BitLen()), api.TableLookupPrefix_SHORTER)
	return best, err
}

// Received implements luaapi.Actions.
func (d *Daemon) Received(peer, prefix string) (*luaapi.BestPath, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	var got *api.Path
	err = d.Server.ListPath(context.Background(), &api.ListPathRequest{
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
	return d.conv.bestPathEvent(got)
}

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// bestCovering returns the best path of the longest prefix that matches p
// under lookup (EXACT: p itself; SHORTER: p or any prefix covering it).
func (d *Daemon) bestCovering(p netip.Prefix, lookup api.TableLookupPrefix_Type) (*luaapi.BestPath, int, error) {
	family := familyOf(p)
	var best *api.Path
	bits := -1
	err := d.Server.ListPath(context.Background(), &api.ListPathRequest{
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
	ev, err := d.conv.bestPathEvent(best)
	return ev, bits, err
}

// Notify implements luaapi.Actions.
func (d *Daemon) Notify(script string, n luaapi.Notification, done func(luaapi.NotifyResult)) error {
	return d.notifier.start(script, n, done)
}

// Replay implements luaapi.Actions: a walk of the global RIB's best paths.
func (d *Daemon) Replay(families []string, fn func(*luaapi.BestPath)) (uint64, error) {
	seq := d.conv.lastSeq()
	if len(families) == 0 {
		families = []string{"ipv4-unicast", "ipv6-unicast"}
	}
	for _, f := range families {
		rf, err := bgp.GetRouteFamily(f)
		if err != nil {
			return 0, fmt.Errorf("family %q: %w", f, err)
		}
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		err = d.Server.ListPath(context.Background(), &api.ListPathRequest{
			TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)},
		}, func(dst *api.Destination) {
			for _, p := range dst.Paths {
				if p.Best {
					if ev, err := d.conv.bestPathEvent(p); err == nil {
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
func (d *Daemon) advertised(peer string) (map[string]bool, bool) {
	p, err := d.Peer(peer)
	if err != nil || p.State != "established" {
		return nil, false
	}
	out := make(map[string]bool)
	for _, f := range []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	} {
		// Prefixes only: the binary form spares GoBGP decoding attributes.
		d.Server.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: peer, Family: f, EnableOnlyBinary: true},
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
func (d *Daemon) DefinedSet(op, kind, name string, entries []string) error {
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
		return d.Server.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set})
	}
	return d.Server.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set})
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
func (d *Daemon) RIBPrefixes(family string) ([]string, error) {
	rf, err := bgp.GetRouteFamily(family)
	if err != nil {
		return nil, fmt.Errorf("family %q: %w", family, err)
	}
	afi, safi := bgp.RouteFamilyToAfiSafi(rf)
	var out []string
	err = d.Server.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)},
		EnableOnlyBinary: true, // GoBGP as a library ignores SortType
	}, func(dst *api.Destination) { out = append(out, dst.Prefix) })
	return out, err
}

// BestPaths implements luaapi.Actions.
func (d *Daemon) BestPaths(prefixes []string) ([]*luaapi.BestPath, error) {
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
	var out []*luaapi.BestPath
	err = d.Server.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: familyOf(first), Prefixes: lookups,
	}, func(dst *api.Destination) {
		for _, p := range dst.Paths {
			if p.Best {
				if ev, err := d.conv.bestPathEvent(p); err == nil {
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
func (d *Daemon) PreviewExportPolicy(peer, policy string) (add, withdraw []string, err error) {
	if !isBuiltin(policy) {
		return nil, nil, fmt.Errorf("preview covers full, default-only and none, not %q", policy)
	}
	if p, err := d.Peer(peer); err != nil {
		return nil, nil, err
	} else if p.State != "established" {
		return nil, nil, fmt.Errorf("session with %s is %s: nothing is advertised", peer, p.State)
	}
	candidates := map[string]bool{} // prefix -> accepted now
	for _, f := range []*api.Family{familyOf(netip.MustParsePrefix("0.0.0.0/0")), familyOf(netip.MustParsePrefix("::/0"))} {
		err := d.Server.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_OUT, Name: peer, Family: f, EnableFiltered: true, EnableOnlyBinary: true},
			func(dst *api.Destination) {
				for _, p := range dst.Paths {
					candidates[dst.Prefix] = candidates[dst.Prefix] || !p.Filtered
				}
			})
		if err != nil {
			return nil, nil, err
		}
	}
	d.policy.mu.Lock()
	userRules := len(d.policy.userExport) > 0 || d.policy.userDefault != api.RouteAction_ACCEPT
	d.policy.mu.Unlock()
	onFull := d.policy.PeerPolicy(peer) == luaapi.PolicyFull
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

// The checks below let the throttle refuse at once what the daemon would
// refuse later (see checker).

func (d *Daemon) checkPolicy(policy string) error { return checkPolicy(d.Server, policy) }

func (d *Daemon) checkPeer(address string) error {
	found := false
	err := d.Server.ListPeer(context.Background(), &api.ListPeerRequest{Address: address}, func(*api.Peer) { found = true })
	if err == nil && !found {
		err = fmt.Errorf("no neighbor %s", address)
	}
	return err
}

func (d *Daemon) checkRoute(r luaapi.Route) error {
	_, err := routeOf(r, r.ASPath).path()
	return err
}

// routeOf is a script's route in the config's form, with its final AS path.
func routeOf(r luaapi.Route, asPath []uint32) Route {
	return Route{Prefix: r.Prefix, Nexthop: r.Nexthop, Origin: r.Origin, ASPath: asPath, Communities: r.Communities,
		LargeCommunities: r.LargeCommunities, MED: r.MED, LocalPref: r.LocalPref}
}

func (d *Daemon) checkWithdraw(script, prefix string) error {
	d.announced.mu.Lock()
	defer d.announced.mu.Unlock()
	if _, ok := d.announced.paths[script][prefix]; !ok {
		return fmt.Errorf("%s was not announced by %s", prefix, script)
	}
	return nil
}
