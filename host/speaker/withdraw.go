package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/luaapi"
)

// Making an export policy change take effect at once.
//
// GoBGP v3 sends what a new policy adds on a soft reset out, but never the
// withdrawals of what it takes away, and it has no call to withdraw a route
// from one peer. It does send a peer a withdrawal when a prefix's best path
// changes to one the peer's policy rejects while the old one was accepted.
// edbgpd uses that. For each prefix to withdraw, under the old policy, it
// adds a transient copy of the best path carrying a marker community. The
// copy is local, so it becomes the best path. edbgpd's policy rejects it
// for the peers losing the prefix (they get the withdrawal) and strips the
// marker for everyone else (they get the same route again). Then it puts
// the new policy in force and deletes the copies: the old best path comes
// back, the losing peers' new policy rejects it, and the others get the
// same route again.
//
// A locally originated best path cannot be copied, since a local copy
// would replace it. Nor can more than maxMarkerWithdrawals prefixes be
// withdrawn this way: each costs the other peers two UPDATEs. In those
// cases edbgpd resets the losing peers' sessions instead.

// maxMarkerWithdrawals bounds the withdrawals done with transient paths.
const maxMarkerWithdrawals = 5000

var errCannotMark = errors.New("cannot withdraw with transient paths")

// withPolicyEffect runs change (a policy change that puts peers on
// target) and makes it take effect at once for the established peers
// among peers.
func (sp *Speaker) withPolicyEffect(peers []string, target string, change func() error) error {
	sp.policyOp.Lock()
	defer sp.policyOp.Unlock()
	before := make(map[string]map[string]bool)
	var reset []string
	for _, p := range peers {
		// A peer put on default-only or none loses all it has but the
		// default routes. Past maxMarkerWithdrawals that ends in a reset
		// anyway: skip listing a full table twice (a minute at 1M).
		if target == luaapi.PolicyDefaultOnly || target == luaapi.PolicyNone {
			if st, err := sp.Peer(p); err == nil && st.State == "established" && st.Advertised > maxMarkerWithdrawals+2 {
				reset = append(reset, p)
				continue
			}
		}
		if adv, up := sp.advertised(p); up {
			before[p] = adv
		}
	}
	changed := false
	defer func() {
		if !changed {
			return // the policy did not change: nobody loses anything
		}
		for _, p := range reset {
			sp.log.Warn("export policy change takes routes away; resetting the session so the peer drops them",
				"peer", p, "policy", target, "why", "more than 5000 prefixes to withdraw")
			if err := sp.srv.ResetPeer(context.Background(), &api.ResetPeerRequest{Address: p, Communication: "export policy changed by edbgpd"}); err != nil {
				sp.log.Error("policy change: reset failed", "peer", p, "err", err)
			}
		}
	}()
	saved := sp.policy.save()
	if err := change(); err != nil {
		return err
	}
	changed = true
	removed := make(map[string][]string) // peer -> prefixes it loses
	for p, was := range before {
		now, up := sp.advertised(p)
		if !up {
			continue
		}
		for prefix := range was {
			if !now[prefix] {
				removed[p] = append(removed[p], prefix)
			}
		}
	}
	if len(removed) > 0 {
		after := sp.policy.save()
		err := sp.policy.restore(saved) // back to the old policy for the marking
		if err == nil {
			err = sp.markerWithdraw(removed, func() error { return sp.policy.restore(after) })
		}
		if err != nil {
			if rerr := sp.policy.restore(after); rerr != nil {
				return rerr
			}
			for p, gone := range removed {
				sp.log.Warn("export policy change takes routes away; resetting the session so the peer drops them",
					"peer", p, "withdrawn", len(gone), "why", err)
				if err := sp.srv.ResetPeer(context.Background(), &api.ResetPeerRequest{Address: p, Communication: "export policy changed by edbgpd"}); err != nil {
					sp.log.Error("policy change: reset failed", "peer", p, "err", err)
				}
				delete(before, p)
			}
		}
	}
	for p := range before {
		if err := sp.ResetPeer(p, "soft-out"); err != nil { // what the new policy adds
			sp.log.Error("policy change: soft reset out failed", "peer", p, "err", err)
		}
	}
	return nil
}

// markerWithdraw withdraws removed[peer] from each peer without a session
// reset (see above); apply puts the new policy in force.
func (sp *Speaker) markerWithdraw(removed map[string][]string, apply func() error) (err error) {
	ctx := context.Background()
	prefixes := map[string]bool{}
	hold := map[string]bool{}
	for p, l := range removed {
		hold[p] = true
		for _, x := range l {
			prefixes[x] = true
		}
	}
	if len(prefixes) > maxMarkerWithdrawals {
		return fmt.Errorf("%w: %d prefixes, more than %d", errCannotMark, len(prefixes), maxMarkerWithdrawals)
	}
	var copies []*api.Path
	for prefix := range prefixes {
		best, err := sp.rawBestPath(prefix)
		if err != nil || best == nil {
			continue // gone meanwhile: nothing to withdraw
		}
		src := cleanAddr(best.NeighborIp)
		if src == "" || src == "0.0.0.0" || src == "::" {
			return fmt.Errorf("%w: %s is originated here", errCannotMark, prefix)
		}
		hold[src] = true // the copy must not go to where the route came from
		c, err := markedCopy(best)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errCannotMark, prefix, err)
		}
		copies = append(copies, c)
	}
	holdList := make([]string, 0, len(hold))
	for p := range hold {
		holdList = append(holdList, p)
	}
	sort.Strings(holdList)
	if err := sp.policy.setHold(holdList); err != nil {
		return err
	}
	defer func() {
		if herr := sp.policy.setHold(nil); herr != nil && err == nil {
			err = herr
		}
	}()
	var added [][]byte
	defer func() {
		for _, id := range added {
			if derr := sp.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: id}); derr != nil && err == nil {
				err = derr
			}
		}
	}()
	for _, c := range copies {
		res, err := sp.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: c})
		if err != nil {
			return err
		}
		added = append(added, res.Uuid)
	}
	// The withdrawals are queued; the new policy goes in before the copies
	// go, so the old best paths coming back are judged by it.
	if err := apply(); err != nil {
		return err
	}
	n := 0
	for _, l := range removed {
		n += len(l)
	}
	sp.log.Info("export policy change: routes withdrawn without a session reset", "peers", len(removed), "withdrawals", n)
	return nil
}

// rawBestPath is the best path of exactly prefix, in GoBGP's API form.
func (sp *Speaker) rawBestPath(prefix string) (*api.Path, error) {
	pfx, err := netip.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	var best *api.Path
	err = sp.srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: familyOf(pfx),
		Prefixes: []*api.TableLookupPrefix{{Prefix: pfx.String(), Type: api.TableLookupPrefix_EXACT}},
	}, func(dst *api.Destination) {
		for _, p := range dst.Paths {
			if p.Best {
				best = p
			}
		}
	})
	return best, err
}

// markedCopy is a local copy of p with the marker large community added.
func markedCopy(p *api.Path) (*api.Path, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return nil, err
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return nil, err
	}
	marker, err := bgp.ParseLargeCommunity(markerCommunity)
	if err != nil {
		return nil, err
	}
	out := make([]bgp.PathAttributeInterface, 0, len(attrs)+1)
	marked := false
	for _, a := range attrs {
		if lc, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
			a = bgp.NewPathAttributeLargeCommunities(append(append([]*bgp.LargeCommunity(nil), lc.Values...), marker))
			marked = true
		}
		out = append(out, a)
	}
	if !marked {
		out = append(out, bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{marker}))
	}
	return apiutil.NewPath(nlri, false, out, p.Age.AsTime())
}
