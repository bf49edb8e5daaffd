// Package luaapi is the surface Lua scripts see: the event tables handed to
// on_best_path/on_peer_state and the "bgp" module of bound functions. It does
// not import GoBGP; host/ implements the Actions interface it needs.
package luaapi

import (
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Peer identifies the BGP neighbour a path was learned from (or the
// daemon itself for locally originated paths: address "" and asn 0).
type Peer struct {
	Address  string
	ASN      uint32
	RouterID string
}

// BestPath is one change of the best path of a prefix. Events are shared
// by every script, so they are never modified after they are queued.
type BestPath struct {
	Prefix              string // "10.0.0.0/8"
	Family              string // "ipv4-unicast", "ipv6-unicast", ...
	Withdrawal          bool   // the prefix has no best path any more
	Nexthop             string
	ASPath              []uint32 // AS_SEQUENCE and AS_SET members, in order
	Origin              string   // "igp", "egp", "incomplete"
	MED                 uint32
	HasMED              bool
	LocalPref           uint32
	HasLocalPref        bool
	Communities         []string // "65000:38"
	LargeCommunities    []string // "65000:1:2"
	ExtendedCommunities []string // GoBGP's text form, e.g. "rt:65000:100"
	Peer                Peer
	Timestamp           time.Time // when the path was received or originated
}

// PeerState is one session state change of a neighbour.
type PeerState struct {
	Peer      Peer
	State     string // idle, connect, active, opensent, openconfirm, established
	OldState  string // "" when edbgpd has not seen the peer before
	Reason    string // why the session went down, when GoBGP said so
	Timestamp time.Time
}

// ASPathString renders an AS path as operators write it: "65001 65002".
func ASPathString(p []uint32) string {
	var b strings.Builder
	for i, as := range p {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(as), 10))
	}
	return b.String()
}

func stringList(L *lua.LState, l []string) *lua.LTable {
	t := L.CreateTable(len(l), 0)
	for _, s := range l {
		t.Append(lua.LString(s))
	}
	return t
}

func unixSeconds(t time.Time) lua.LNumber {
	if t.IsZero() {
		return 0
	}
	return lua.LNumber(float64(t.UnixNano()) / 1e9)
}

// Table turns the event into the table a script's on_best_path receives.
// Field names are the contract documented in README.md.
func (e *BestPath) Table(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 16)
	t.RawSetString("type", lua.LString("best_path"))
	t.RawSetString("prefix", lua.LString(e.Prefix))
	t.RawSetString("family", lua.LString(e.Family))
	t.RawSetString("withdrawal", lua.LBool(e.Withdrawal))
	t.RawSetString("nexthop", lua.LString(e.Nexthop))
	asp := L.CreateTable(len(e.ASPath), 0)
	for _, as := range e.ASPath {
		asp.Append(lua.LNumber(as))
	}
	t.RawSetString("as_path", asp)
	t.RawSetString("as_path_string", lua.LString(ASPathString(e.ASPath)))
	t.RawSetString("origin", lua.LString(e.Origin))
	if e.HasMED {
		t.RawSetString("med", lua.LNumber(e.MED))
	}
	if e.HasLocalPref {
		t.RawSetString("local_pref", lua.LNumber(e.LocalPref))
	}
	t.RawSetString("communities", stringList(L, e.Communities))
	t.RawSetString("large_communities", stringList(L, e.LargeCommunities))
	t.RawSetString("extended_communities", stringList(L, e.ExtendedCommunities))
	p := L.CreateTable(0, 3)
	p.RawSetString("address", lua.LString(e.Peer.Address))
	p.RawSetString("asn", lua.LNumber(e.Peer.ASN))
	p.RawSetString("router_id", lua.LString(e.Peer.RouterID))
	t.RawSetString("peer", p)
	t.RawSetString("timestamp", unixSeconds(e.Timestamp))
	if !e.Timestamp.IsZero() {
		t.RawSetString("age", lua.LNumber(time.Since(e.Timestamp).Seconds()))
	}
	return t
}

// Table turns the event into the table a script's on_peer_state receives.
func (e *PeerState) Table(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 8)
	t.RawSetString("type", lua.LString("peer_state"))
	t.RawSetString("peer", lua.LString(e.Peer.Address))
	t.RawSetString("asn", lua.LNumber(e.Peer.ASN))
	t.RawSetString("router_id", lua.LString(e.Peer.RouterID))
	t.RawSetString("state", lua.LString(e.State))
	if e.OldState != "" {
		t.RawSetString("old_state", lua.LString(e.OldState))
	}
	if e.Reason != "" {
		t.RawSetString("reason", lua.LString(e.Reason))
	}
	t.RawSetString("timestamp", unixSeconds(e.Timestamp))
	return t
}
