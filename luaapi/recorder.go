package luaapi

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"github.com/edbgpd/edbgpd/host/event"
)

// Call is one action a script took, as the offline runner prints it.
type Call struct {
	Action string         `json:"action"`
	Args   map[string]any `json:"args,omitempty"`
	// Refused is why the daemon would have refused the call (a
	// notification off the allow-list); empty when it was taken.
	Refused string `json:"refused,omitempty"`
}

// String is the call as one line of JSON, keys in order.
func (c Call) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Recorder is an Actions that records what scripts ask instead of doing
// it. The offline test runner uses it; so do tests. Answers to queries
// (peers, best paths) come from its fields. Safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	calls []Call

	// PeerList answers Peers and Peer; Observe adds the peers of
	// peer-state events and keeps their state, and the policies scripts
	// set show in it.
	PeerList []PeerStatus
	Paths    map[string]*event.BestPath // prefix -> best path, for BestPath and Lookup
	// ReceivedPaths answers Received: peer address -> prefix -> path.
	ReceivedPaths map[string]map[string]*event.BestPath
	// CheckNotify, if set, refuses notifications as the daemon's
	// allow-lists would; nil allows all.
	CheckNotify func(script string, n Notification) error

	defaultExport string          // as set by SetDefaultExportPolicy; "" for full
	exportSet     map[string]bool // peers whose export policy a script set
}

// Observe keeps Paths and ReceivedPaths up to date with an event fed to
// a script, so queries answer as the daemon would have.
func (r *Recorder) Observe(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ps := ev.PeerState; ps != nil {
		p := r.peer(ps.Peer.Address, true)
		if ps.Peer.ASN != 0 {
			p.ASN = ps.Peer.ASN
		}
		if ps.Peer.RouterID != "" {
			p.RouterID = ps.Peer.RouterID
		}
		if p.State == "established" && ps.State != "established" {
			p.Flaps++
		}
		p.State = ps.State
		return
	}
	e := ev.BestPath
	if e == nil {
		return
	}
	if r.Paths == nil {
		r.Paths = make(map[string]*event.BestPath)
	}
	if r.ReceivedPaths == nil {
		r.ReceivedPaths = make(map[string]map[string]*event.BestPath)
	}
	if e.Withdrawal {
		delete(r.Paths, e.Prefix)
	} else {
		r.Paths[e.Prefix] = e
	}
	if e.Peer.Address == "" {
		return
	}
	if r.ReceivedPaths[e.Peer.Address] == nil {
		r.ReceivedPaths[e.Peer.Address] = make(map[string]*event.BestPath)
	}
	if e.Withdrawal {
		delete(r.ReceivedPaths[e.Peer.Address], e.Prefix)
	} else {
		r.ReceivedPaths[e.Peer.Address][e.Prefix] = e
	}
}

func (r *Recorder) Received(peer, prefix string) (*event.BestPath, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ReceivedPaths[peer][prefix], nil
}

var _ Actions = (*Recorder)(nil)

// Calls returns the calls recorded so far.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

func (r *Recorder) record(action string, args map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, Call{Action: action, Args: args})
}

// peer finds (or, with add, adds) a peer of PeerList. Caller holds mu.
func (r *Recorder) peer(address string, add bool) *PeerStatus {
	for i := range r.PeerList {
		if r.PeerList[i].Address == address {
			return &r.PeerList[i]
		}
	}
	if !add {
		return nil
	}
	export := r.defaultExport
	if export == "" {
		export = PolicyFull
	}
	r.PeerList = append(r.PeerList, PeerStatus{Address: address, ExportPolicy: export, ImportPolicy: PolicyFull})
	return &r.PeerList[len(r.PeerList)-1]
}

func (r *Recorder) SetExportPolicy(peer, policy string) error {
	r.record("set_export_policy", map[string]any{"peer": peer, "policy": policy})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exportSet == nil {
		r.exportSet = make(map[string]bool)
	}
	r.exportSet[peer] = true
	if p := r.peer(peer, false); p != nil {
		p.ExportPolicy = policy
	}
	return nil
}

func (r *Recorder) SetImportPolicy(peer, policy string) error {
	r.record("set_import_policy", map[string]any{"peer": peer, "policy": policy})
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.peer(peer, false); p != nil {
		p.ImportPolicy = policy
	}
	return nil
}

func (r *Recorder) SetDefaultExportPolicy(policy string) error {
	r.record("set_default_export_policy", map[string]any{"policy": policy})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.defaultExport = policy
	for i := range r.PeerList {
		if !r.exportSet[r.PeerList[i].Address] {
			r.PeerList[i].ExportPolicy = policy
		}
	}
	return nil
}

// Peers answers from PeerList, with the prefixes received counted from
// the best paths seen.
func (r *Recorder) Peers() ([]PeerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PeerStatus, len(r.PeerList))
	for i, p := range r.PeerList {
		if n := uint64(len(r.ReceivedPaths[p.Address])); n > p.Received {
			p.Received, p.Accepted = n, n
		}
		out[i] = p
	}
	return out, nil
}

func (r *Recorder) Peer(address string) (*PeerStatus, error) {
	peers, _ := r.Peers()
	for i := range peers {
		if peers[i].Address == address {
			return &peers[i], nil
		}
	}
	return nil, fmt.Errorf("no neighbor %s", address)
}

func (r *Recorder) ResetPeer(address, how string) error {
	r.record("reset_peer", map[string]any{"peer": address, "how": how})
	return nil
}

func (r *Recorder) SetPeerEnabled(address string, enabled bool) error {
	name := "disable_peer"
	if enabled {
		name = "enable_peer"
	}
	r.record(name, map[string]any{"peer": address})
	return nil
}

func (r *Recorder) Announce(script string, rt Route) error {
	args := map[string]any{"prefix": rt.Prefix}
	for k, v := range map[string]any{"nexthop": rt.Nexthop, "origin": rt.Origin} {
		if v != "" {
			args[k] = v
		}
	}
	if len(rt.ASPath) > 0 {
		args["as_path"] = rt.ASPath
	}
	if rt.Prepend > 0 {
		args["prepend"] = rt.Prepend
	}
	if len(rt.Communities) > 0 {
		args["communities"] = rt.Communities
	}
	if len(rt.LargeCommunities) > 0 {
		args["large_communities"] = rt.LargeCommunities
	}
	if rt.MED != nil {
		args["med"] = *rt.MED
	}
	if rt.LocalPref != nil {
		args["local_pref"] = *rt.LocalPref
	}
	r.record("announce", args)
	return nil
}

func (r *Recorder) Withdraw(script, prefix string) error {
	r.record("withdraw", map[string]any{"prefix": prefix})
	return nil
}

func (r *Recorder) BestPath(prefix string) (*event.BestPath, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Paths[prefix], nil
}

func (r *Recorder) Lookup(address string) (*event.BestPath, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.Paths))
	for k := range r.Paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var best *event.BestPath
	bits := -1
	for _, k := range keys {
		p, err := netip.ParsePrefix(k)
		if err == nil && p.Contains(a) && p.Bits() > bits {
			best, bits = r.Paths[k], p.Bits()
		}
	}
	return best, nil
}

// Notify records the notification and reports success at once, unless
// CheckNotify refuses it.
func (r *Recorder) Notify(script string, n Notification, done func(NotifyResult)) error {
	action, args := "exec", map[string]any{"command": n.Command}
	if n.URL != "" {
		var body any
		json.Unmarshal(n.Body, &body)
		action, args = "http_post", map[string]any{"url": n.URL, "body": body}
	} else if len(n.Args) > 0 {
		args["args"] = n.Args
	}
	if r.CheckNotify != nil {
		if err := r.CheckNotify(script, n); err != nil {
			r.mu.Lock()
			r.calls = append(r.calls, Call{Action: action, Args: args, Refused: err.Error()})
			r.mu.Unlock()
			return err
		}
	}
	r.record(action, args)
	status := 0
	if n.URL != "" {
		status = 200
	}
	done(NotifyResult{OK: true, Status: status})
	return nil
}

// Replay walks Paths in prefix order.
func (r *Recorder) Replay(families []string, fn func(*event.BestPath)) (uint64, error) {
	r.mu.Lock()
	keys := make([]string, 0, len(r.Paths))
	for k := range r.Paths {
		keys = append(keys, k)
	}
	paths := r.Paths
	r.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if len(families) == 0 || slices.Contains(families, paths[k].Family) {
			fn(paths[k])
		}
	}
	return 0, nil
}

func (r *Recorder) DefinedSet(op, kind, name string, entries []string) error {
	r.record("defined_set_"+op, map[string]any{"kind": kind, "name": name, "entries": entries})
	return nil
}

func (r *Recorder) RIBPrefixes(family string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k, p := range r.Paths {
		if p.Family == family {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (r *Recorder) BestPaths(prefixes []string) ([]*event.BestPath, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*event.BestPath
	for _, p := range prefixes {
		if bp := r.Paths[p]; bp != nil {
			out = append(out, bp)
		}
	}
	return out, nil
}

// PreviewExportPolicy answers that nothing would change: the recorder
// has no peers' tables.
func (r *Recorder) PreviewExportPolicy(peer, policy string) ([]string, []string, error) {
	return []string{}, []string{}, nil
}
