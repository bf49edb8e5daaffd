package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"

	"github.com/edbgpd/edbgpd/luaapi"
)

// Export policy per peer.
//
// GoBGP v3 keeps per-peer policy assignments for route-server clients only,
// so edbgpd puts one policy of its own first in the global export list. It
// matches peers through neighbor-sets: peers set to "none" are rejected,
// peers set to "default-only" get 0.0.0.0/0 and ::/0 only, peers set to a
// named policy get that policy's statements (each scoped to them), and peers
// no script has set get the default policy a script chose, if any. Peers on
// "full" pass on to the export policies of the config file.
//
// GoBGP treats an empty neighbor-set as "match every peer", so a set is only
// created with members, and the policy is rebuilt when its shape changes.
// Each rebuild is a new generation (new names), swapped in with one
// assignment change, so a peer never sees a half-built policy.

const (
	prefixSetDefaultV4 = "edbgpd-default-v4"
	prefixSetDefaultV6 = "edbgpd-default-v6"
	// markerSet matches the large community edbgpd puts on the transient
	// paths it uses to withdraw routes from one peer (see withdraw.go).
	// ASN 4294967295 is reserved (RFC 7300), so no real route carries it.
	markerSet       = "edbgpd-marker"
	markerCommunity = "4294967295:0:1"
)

type exportPolicy struct {
	srv *server.BgpServer
	log *slog.Logger
	dir api.PolicyDirection // EXPORT, or IMPORT for the same machinery on what peers send

	mu          sync.Mutex
	defaultMode string            // for peers no script has set; "" = full
	modes       map[string]string // peer address -> policy
	gen         int
	installed   *builtPolicy // nil when nothing is installed
	userExport  []string     // export policies of the config file
	userDefault api.RouteAction
	hold        []string // peers that must not get marker paths (export only)
	// asking is what scripts asked for and is not in force yet (queued
	// changes): peer address, or "" for the default, -> policy.
	asking map[string]string
}

// ask notes that policy was asked for peer ("": the default); PeerPolicy
// reports it from now on.
func (e *exportPolicy) ask(peer, policy string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.asking == nil {
		e.asking = make(map[string]string)
	}
	e.asking[peer] = policy
}

// asked notes that the change asking for policy is done (in force, or
// failed), unless a later one for the same peer waits.
func (e *exportPolicy) asked(peer, policy string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.asking[peer] == policy {
		delete(e.asking, peer)
	}
}

func newExportPolicy(srv *server.BgpServer, log *slog.Logger) *exportPolicy {
	return &exportPolicy{srv: srv, log: log, dir: api.PolicyDirection_EXPORT, modes: make(map[string]string), userDefault: api.RouteAction_ACCEPT}
}

// newImportPolicy is the same per-peer machinery on the global import list:
// what edbgpd accepts from each peer.
func newImportPolicy(srv *server.BgpServer, log *slog.Logger) *exportPolicy {
	return &exportPolicy{srv: srv, log: log, dir: api.PolicyDirection_IMPORT, modes: make(map[string]string), userDefault: api.RouteAction_ACCEPT}
}

// names returns the policy name and the prefix of set and statement
// names for generation gen.
func (e *exportPolicy) names(gen int) (policy, prefix string) {
	if e.dir == api.PolicyDirection_IMPORT {
		return fmt.Sprintf("edbgpd-import-g%d", gen), fmt.Sprintf("edbgpd-ig%d-", gen)
	}
	return fmt.Sprintf("edbgpd-export-g%d", gen), fmt.Sprintf("edbgpd-g%d-", gen)
}

// builtPolicy is one generation of edbgpd's export policy.
type builtPolicy struct {
	name       string
	sets       []*api.DefinedSet
	policy     *api.Policy
	ocSets     []oc.NeighborSet
	ocPolicy   oc.PolicyDefinition
	ocComplete bool // false when named policies were left out of the oc form
}

func isBuiltin(p string) bool {
	return p == luaapi.PolicyFull || p == luaapi.PolicyDefaultOnly || p == luaapi.PolicyNone
}

// SetPeer sets the export policy of one peer.
func (e *exportPolicy) SetPeer(peer, policy string) error {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return fmt.Errorf("peer %q is not an IP address", peer)
	}
	if policy == "" {
		return fmt.Errorf("empty policy name")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	key := addr.String()
	if e.modes[key] == policy {
		return nil
	}
	old, had := e.modes[key]
	e.modes[key] = policy
	if err := e.apply(); err != nil {
		if had {
			e.modes[key] = old
		} else {
			delete(e.modes, key)
		}
		return err
	}
	return nil
}

// SetDefault sets the export policy of every peer no script has set.
func (e *exportPolicy) SetDefault(policy string) error {
	if policy == "" {
		return fmt.Errorf("empty policy name")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if policy == luaapi.PolicyFull {
		policy = ""
	}
	if e.defaultMode == policy {
		return nil
	}
	old := e.defaultMode
	e.defaultMode = policy
	if err := e.apply(); err != nil {
		e.defaultMode = old
		return err
	}
	return nil
}

// policyState is what scripts set, saved to undo a change.
type policyState struct {
	defaultMode string
	modes       map[string]string
}

func (e *exportPolicy) save() policyState {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]string, len(e.modes))
	for k, v := range e.modes {
		m[k] = v
	}
	return policyState{defaultMode: e.defaultMode, modes: m}
}

// restore puts a saved state back in force.
func (e *exportPolicy) restore(st policyState) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.defaultMode, e.modes = st.defaultMode, st.modes
	return e.apply()
}

// setHold puts peers on (or, nil, off) the marker-path rejection.
func (e *exportPolicy) setHold(peers []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hold = peers
	return e.apply()
}

// inForce tells whether setting peer's policy (peer "": the default)
// would change nothing.
func (e *exportPolicy) inForce(peer, policy string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if peer == "" {
		if policy == luaapi.PolicyFull {
			policy = ""
		}
		return e.defaultMode == policy
	}
	mode, ok := e.modes[peer]
	return ok && mode == policy
}

// IsSet tells whether a script set peer's policy (as opposed to the
// default), or asked to.
func (e *exportPolicy) IsSet(peer string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.modes[peer]
	_, asked := e.asking[peer]
	return ok || asked
}

// PeerPolicy reports a peer's export policy as scripts set it, or last
// asked for it.
func (e *exportPolicy) PeerPolicy(peer string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.asking[peer]; ok {
		return p
	}
	if p, ok := e.modes[peer]; ok {
		return p
	}
	if p, ok := e.asking[""]; ok {
		return p
	}
	if e.defaultMode != "" {
		return e.defaultMode
	}
	return luaapi.PolicyFull
}

// apply installs the policy for the current state. Caller holds mu.
func (e *exportPolicy) apply() error {
	ctx := context.Background()
	named, err := e.namedPolicies(ctx)
	if err != nil {
		return err
	}
	b, err := e.build(e.gen+1, named)
	if err != nil {
		return err
	}
	old := e.installed
	if b != nil {
		for _, s := range b.sets {
			if err := e.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: s, Replace: true}); err != nil {
				e.remove(ctx, b)
				return fmt.Errorf("adding %s: %w", s.Name, err)
			}
		}
		if err := e.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: b.policy}); err != nil {
			e.remove(ctx, b)
			return fmt.Errorf("adding policy %s: %w", b.name, err)
		}
	}
	if err := e.assign(ctx, b); err != nil {
		e.remove(ctx, b)
		return err
	}
	e.gen++
	e.installed = b
	e.remove(ctx, old)
	return nil
}

// assign puts b first in the global export list, before the config's own.
func (e *exportPolicy) assign(ctx context.Context, b *builtPolicy) error {
	list := make([]*api.Policy, 0, len(e.userExport)+1)
	if b != nil {
		list = append(list, &api.Policy{Name: b.name})
	}
	for _, n := range e.userExport {
		list = append(list, &api.Policy{Name: n})
	}
	return e.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     e.dir,
		Policies:      list,
		DefaultAction: e.userDefault,
	}})
}

// remove deletes a generation that is no longer assigned.
func (e *exportPolicy) remove(ctx context.Context, b *builtPolicy) {
	if b == nil {
		return
	}
	if err := e.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: b.name}, All: true}); err != nil {
		e.log.Debug("removing old export policy", "policy", b.name, "err", err)
	}
	for _, s := range b.sets {
		if err := e.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: s.DefinedType, Name: s.Name}, All: true}); err != nil {
			e.log.Debug("removing old neighbor-set", "set", s.Name, "err", err)
		}
	}
}

// namedPolicies fetches, from GoBGP, every named policy in use.
func (e *exportPolicy) namedPolicies(ctx context.Context) (map[string]*api.Policy, error) {
	want := map[string]bool{}
	if e.defaultMode != "" && !isBuiltin(e.defaultMode) {
		want[e.defaultMode] = true
	}
	for _, p := range e.modes {
		if !isBuiltin(p) {
			want[p] = true
		}
	}
	named := make(map[string]*api.Policy, len(want))
	for name := range want {
		found, err := namedPolicy(ctx, e.srv, name)
		if err != nil {
			return nil, err
		}
		named[name] = found
	}
	return named, nil
}

// namedPolicy fetches a policy-definition a script may assign to a peer.
func namedPolicy(ctx context.Context, srv *server.BgpServer, name string) (*api.Policy, error) {
	var found *api.Policy
	err := srv.ListPolicy(ctx, &api.ListPolicyRequest{Name: name}, func(p *api.Policy) { found = p })
	if err != nil || found == nil || strings.HasPrefix(name, "edbgpd-") {
		return nil, fmt.Errorf("unknown policy %q: want full, default-only, none, or a policy-definition of the config file", name)
	}
	for _, st := range found.Statements {
		if st.Conditions != nil && st.Conditions.NeighborSet != nil {
			return nil, fmt.Errorf("policy %q: statement %q already matches a neighbor-set, so edbgpd cannot scope it to one peer", name, st.Name)
		}
	}
	return found, nil
}

// checkPolicy tells at once whether policy can be assigned, so that a
// throttled assignment does not fail later, out of the script's sight.
func checkPolicy(srv *server.BgpServer, policy string) error {
	if isBuiltin(policy) {
		return nil
	}
	if policy == "" {
		return fmt.Errorf("empty policy name")
	}
	_, err := namedPolicy(context.Background(), srv, policy)
	return err
}

// build renders the state as generation gen; nil when no peer is restricted.
func (e *exportPolicy) build(gen int, named map[string]*api.Policy) (*builtPolicy, error) {
	name, pfx := e.names(gen)
	b := &builtPolicy{name: name, ocComplete: true}
	b.policy = &api.Policy{Name: b.name}
	b.ocPolicy = oc.PolicyDefinition{Name: b.name}

	groups := map[string][]string{}
	var assigned []string
	for peer, mode := range e.modes {
		assigned = append(assigned, peer)
		if mode != luaapi.PolicyFull {
			groups[mode] = append(groups[mode], peer)
		}
	}
	sort.Strings(assigned)
	addSet := func(name string, peers []string) string {
		// GoBGP's neighbor-set API takes prefixes.
		members := make([]string, len(peers))
		for i, p := range peers {
			a := netip.MustParseAddr(p)
			members[i] = netip.PrefixFrom(a, a.BitLen()).String()
		}
		sort.Strings(members)
		b.sets = append(b.sets, &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: pfx + name, List: members})
		b.ocSets = append(b.ocSets, oc.NeighborSet{NeighborSetName: pfx + name, NeighborInfoList: members})
		return pfx + name
	}
	// restrict appends the statements of one mode for peers matching
	// (set, invert); set "" means every peer.
	var restrict func(mode, set string, invert bool) error
	restrict = func(mode, set string, invert bool) error {
		id := pfx + mode
		if invert {
			id = pfx + "unset-" + mode
		}
		switch mode {
		case luaapi.PolicyNone:
			b.add(id, set, invert, "", api.RouteAction_REJECT)
		case luaapi.PolicyDefaultOnly:
			b.add(id+"-v4", set, invert, prefixSetDefaultV4, api.RouteAction_ACCEPT)
			b.add(id+"-v6", set, invert, prefixSetDefaultV6, api.RouteAction_ACCEPT)
			b.add(id+"-rest", set, invert, "", api.RouteAction_REJECT)
		default:
			p := named[mode]
			for i, st := range p.Statements {
				c := cloneStatement(st)
				c.Name = fmt.Sprintf("%s-%d", id, i)
				if set != "" {
					c.Conditions.NeighborSet = matchSet(set, invert)
				}
				b.policy.Statements = append(b.policy.Statements, c)
			}
			// In the config's own form, a named policy stands in as "none"
			// (see reconcileConfig), the safe side.
			b.ocComplete = false
			b.addOC(id+"-oc", set, invert, "", oc.ROUTE_DISPOSITION_REJECT_ROUTE)
		}
		return nil
	}
	if len(e.hold) > 0 {
		// Marker paths: rejected for the held peers (which then get a
		// withdrawal), sent to the others without the marker. Runtime only:
		// config changes wait for the withdrawal to finish.
		set := addSet("hold", append([]string(nil), e.hold...))
		b.policy.Statements = append(b.policy.Statements,
			&api.Statement{Name: pfx + "hold", Conditions: &api.Conditions{
				NeighborSet:       matchSet(set, false),
				LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: markerSet},
			}, Actions: &api.Actions{RouteAction: api.RouteAction_REJECT}},
			&api.Statement{Name: pfx + "unmark", Conditions: &api.Conditions{
				LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: markerSet},
			}, Actions: &api.Actions{LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: []string{"^" + markerCommunity + "$"}}}})
	}
	for _, mode := range []string{luaapi.PolicyNone, luaapi.PolicyDefaultOnly} {
		if peers := groups[mode]; len(peers) > 0 {
			restrict(mode, addSet(mode, peers), false)
		}
	}
	var names []string
	for mode := range groups {
		if !isBuiltin(mode) {
			names = append(names, mode)
		}
	}
	sort.Strings(names)
	for _, mode := range names {
		restrict(mode, addSet("p-"+mode, groups[mode]), false)
	}
	if e.defaultMode != "" {
		set := ""
		if len(assigned) > 0 {
			set = addSet("assigned", assigned)
		}
		restrict(e.defaultMode, set, set != "")
	}
	if len(b.policy.Statements) == 0 {
		return nil, nil
	}
	return b, nil
}

// add appends a statement in both forms.
func (b *builtPolicy) add(name, set string, invert bool, prefixSet string, action api.RouteAction) {
	st := &api.Statement{Name: name, Conditions: &api.Conditions{}, Actions: &api.Actions{RouteAction: action}}
	if set != "" {
		st.Conditions.NeighborSet = matchSet(set, invert)
	}
	if prefixSet != "" {
		st.Conditions.PrefixSet = &api.MatchSet{Type: api.MatchSet_ANY, Name: prefixSet}
	}
	b.policy.Statements = append(b.policy.Statements, st)
	disp := oc.ROUTE_DISPOSITION_REJECT_ROUTE
	if action == api.RouteAction_ACCEPT {
		disp = oc.ROUTE_DISPOSITION_ACCEPT_ROUTE
	}
	b.addOC(name, set, invert, prefixSet, disp)
}

func (b *builtPolicy) addOC(name, set string, invert bool, prefixSet string, disp oc.RouteDisposition) {
	st := oc.Statement{Name: name}
	if set != "" {
		st.Conditions.MatchNeighborSet = oc.MatchNeighborSet{NeighborSet: set, MatchSetOptions: oc.MATCH_SET_OPTIONS_RESTRICTED_TYPE_ANY}
		if invert {
			st.Conditions.MatchNeighborSet.MatchSetOptions = oc.MATCH_SET_OPTIONS_RESTRICTED_TYPE_INVERT
		}
	}
	if prefixSet != "" {
		st.Conditions.MatchPrefixSet = oc.MatchPrefixSet{PrefixSet: prefixSet, MatchSetOptions: oc.MATCH_SET_OPTIONS_RESTRICTED_TYPE_ANY}
	}
	st.Actions.RouteDisposition = disp
	b.ocPolicy.Statements = append(b.ocPolicy.Statements, st)
}

func matchSet(name string, invert bool) *api.MatchSet {
	if invert {
		return &api.MatchSet{Type: api.MatchSet_INVERT, Name: name}
	}
	return &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
}

func cloneStatement(st *api.Statement) *api.Statement {
	c := proto.Clone(st).(*api.Statement)
	if c.Conditions == nil {
		c.Conditions = &api.Conditions{}
	}
	return c
}

// setUser records the export policies of the config file. Caller holds mu.
func (e *exportPolicy) setUser(c *oc.BgpConfigSet) {
	a := c.Global.ApplyPolicy.Config
	list, def := a.ExportPolicyList, a.DefaultExportPolicy
	if e.dir == api.PolicyDirection_IMPORT {
		list, def = a.ImportPolicyList, a.DefaultImportPolicy
	}
	e.userExport = append([]string(nil), list...)
	e.userDefault = api.RouteAction_ACCEPT
	if def == oc.DEFAULT_POLICY_TYPE_REJECT_ROUTE {
		e.userDefault = api.RouteAction_REJECT
	}
}

// inject returns a copy of the file's config with edbgpd's export policy
// in it, so that GoBGP's InitialConfig/UpdateConfig (which replace all
// policies at once) keep it. Caller holds mu.
func (e *exportPolicy) inject(c *oc.BgpConfigSet) *oc.BgpConfigSet {
	n := *c
	if !hasLargeCommunitySet(c, markerSet) {
		n.DefinedSets.BgpDefinedSets.LargeCommunitySets = append(append([]oc.LargeCommunitySet(nil), c.DefinedSets.BgpDefinedSets.LargeCommunitySets...),
			oc.LargeCommunitySet{LargeCommunitySetName: markerSet, LargeCommunityList: []string{"^" + markerCommunity + "$"}})
	}
	if !hasPrefixSet(c, prefixSetDefaultV4) {
		n.DefinedSets.PrefixSets = append(append([]oc.PrefixSet(nil), c.DefinedSets.PrefixSets...),
			oc.PrefixSet{PrefixSetName: prefixSetDefaultV4, PrefixList: []oc.Prefix{{IpPrefix: "0.0.0.0/0", MasklengthRange: "0..0"}}},
			oc.PrefixSet{PrefixSetName: prefixSetDefaultV6, PrefixList: []oc.Prefix{{IpPrefix: "::/0", MasklengthRange: "0..0"}}},
		)
	}
	if b := e.installed; b != nil {
		n.DefinedSets.NeighborSets = append(append([]oc.NeighborSet(nil), c.DefinedSets.NeighborSets...), b.ocSets...)
		n.PolicyDefinitions = append(append([]oc.PolicyDefinition(nil), c.PolicyDefinitions...), b.ocPolicy)
		if e.dir == api.PolicyDirection_IMPORT {
			n.Global.ApplyPolicy.Config.ImportPolicyList = append([]string{b.name}, c.Global.ApplyPolicy.Config.ImportPolicyList...)
		} else {
			n.Global.ApplyPolicy.Config.ExportPolicyList = append([]string{b.name}, c.Global.ApplyPolicy.Config.ExportPolicyList...)
		}
	}
	return &n
}

func hasLargeCommunitySet(c *oc.BgpConfigSet, name string) bool {
	for _, s := range c.DefinedSets.BgpDefinedSets.LargeCommunitySets {
		if s.LargeCommunitySetName == name {
			return true
		}
	}
	return false
}

func hasPrefixSet(c *oc.BgpConfigSet, name string) bool {
	for _, p := range c.DefinedSets.PrefixSets {
		if p.PrefixSetName == name {
			return true
		}
	}
	return false
}

// reconcile re-installs the runtime form after a config change, when the
// config form could not hold it (named policies) or the file's policies
// changed under it. Caller holds mu.
func (e *exportPolicy) reconcile() error {
	if e.installed == nil || e.installed.ocComplete {
		return nil
	}
	return e.apply()
}
