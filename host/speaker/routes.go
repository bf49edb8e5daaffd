package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/edbgpd/edbgpd/luaapi"
)

// Route is a route the daemon originates from config.
type Route struct {
	Prefix           string   `toml:"prefix" yaml:"prefix"`
	Nexthop          string   `toml:"nexthop" yaml:"nexthop"`
	Origin           string   `toml:"origin" yaml:"origin"`
	ASPath           []uint32 `toml:"as-path" yaml:"as-path"`
	Communities      []string `toml:"communities" yaml:"communities"`
	LargeCommunities []string `toml:"large-communities" yaml:"large-communities"`
	MED              *uint32  `toml:"med" yaml:"med"`
	LocalPref        *uint32  `toml:"local-pref" yaml:"local-pref"`
}

// Check tells whether r builds a route.
func (r Route) Check() error {
	_, err := r.path()
	return err
}

// path builds the GoBGP path for an originated route.
func (r Route) path() (*api.Path, error) {
	pfx, err := netip.ParsePrefix(r.Prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix: %w", err)
	}
	pfx = pfx.Masked()
	origin := uint8(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	switch r.Origin {
	case "", "igp":
	case "egp":
		origin = bgp.BGP_ORIGIN_ATTR_TYPE_EGP
	case "incomplete":
		origin = bgp.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE
	default:
		return nil, fmt.Errorf("origin %q: want igp, egp or incomplete", r.Origin)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(origin)}
	if len(r.ASPath) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, r.ASPath)}))
	}
	var nlri bgp.AddrPrefixInterface
	if pfx.Addr().Is4() {
		nh := r.Nexthop
		if nh == "" {
			nh = "0.0.0.0" // GoBGP puts its own address in
		}
		if a, err := netip.ParseAddr(nh); err != nil || !a.Is4() {
			return nil, fmt.Errorf("nexthop %q: want an IPv4 address", r.Nexthop)
		}
		nlri = bgp.NewIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	} else {
		nh := r.Nexthop
		if nh == "" {
			nh = "::"
		}
		if a, err := netip.ParseAddr(nh); err != nil || !a.Is6() {
			return nil, fmt.Errorf("nexthop %q: want an IPv6 address", r.Nexthop)
		}
		nlri = bgp.NewIPv6AddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	if r.MED != nil {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(*r.MED))
	}
	if r.LocalPref != nil {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(*r.LocalPref))
	}
	if len(r.Communities) > 0 {
		cs := make([]uint32, len(r.Communities))
		for i, s := range r.Communities {
			hi, lo, err := luaapi.ParseCommunity(s)
			if err != nil {
				return nil, err
			}
			cs[i] = uint32(hi)<<16 | uint32(lo)
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(cs))
	}
	if len(r.LargeCommunities) > 0 {
		ls := make([]*bgp.LargeCommunity, len(r.LargeCommunities))
		for i, s := range r.LargeCommunities {
			if ls[i], err = bgp.ParseLargeCommunity(s); err != nil {
				return nil, fmt.Errorf("large community %q: %w", s, err)
			}
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(ls))
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

// originator keeps the routes of the config in the global RIB.
type originator struct {
	srv   *server.BgpServer
	log   *slog.Logger
	added map[string][]byte // route key -> path uuid
}

func newOriginator(srv *server.BgpServer, log *slog.Logger) *originator {
	return &originator{srv: srv, log: log, added: make(map[string][]byte)}
}

func routeKey(r Route) string {
	return fmt.Sprintf("%s|%s|%s|%v|%v|%v|%v|%v", r.Prefix, r.Nexthop, r.Origin, r.ASPath, r.Communities, r.LargeCommunities, deref(r.MED), deref(r.LocalPref))
}

func deref(p *uint32) any {
	if p == nil {
		return nil
	}
	return *p
}

// sync adds routes that are new and removes those no longer configured.
func (o *originator) sync(routes []Route) error {
	ctx := context.Background()
	want := make(map[string]Route, len(routes))
	for _, r := range routes {
		want[routeKey(r)] = r
	}
	for k, r := range want {
		if _, ok := o.added[k]; ok {
			continue
		}
		p, err := r.path()
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Prefix, err)
		}
		res, err := o.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Prefix, err)
		}
		o.added[k] = res.Uuid
		o.log.Info("originating route", "prefix", r.Prefix)
	}
	for k, id := range o.added {
		if _, ok := want[k]; ok {
			continue
		}
		if err := o.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: id}); err != nil {
			return err
		}
		delete(o.added, k)
		o.log.Info("no longer originating route", "route", k)
	}
	return nil
}
