package event

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// The JSON Lines event format: one event per line, with the same field
// names as the Lua event tables. It is what `edbgpd record` writes and
// `edbgpd test` reads. Lines of type "advance" move the test clock.

// eventJSON is the union of both event kinds' fields.
type eventJSON struct {
	Version             int       `json:"version,omitempty"` // stream messages only: StreamVersion
	Type                string    `json:"type"`
	Router              string    `json:"router,omitempty"` // stream messages only: the edbgpd that saw it
	Seq                 uint64    `json:"seq,omitempty"`
	Prefix              string    `json:"prefix,omitempty"`
	Family              string    `json:"family,omitempty"`
	Withdrawal          bool      `json:"withdrawal,omitempty"`
	Nexthop             string    `json:"nexthop,omitempty"`
	ASPath              []uint32  `json:"as_path,omitempty"`
	Origin              string    `json:"origin,omitempty"`
	MED                 *uint32   `json:"med,omitempty"`
	LocalPref           *uint32   `json:"local_pref,omitempty"`
	Communities         []string  `json:"communities,omitempty"`
	LargeCommunities    []string  `json:"large_communities,omitempty"`
	ExtendedCommunities []string  `json:"extended_communities,omitempty"`
	Peer                *peerJSON `json:"peer,omitempty"`
	// ASN and RouterID are read only: version 1 wrote a peer_state's
	// peer as its address, with these beside it.
	ASN       uint32  `json:"asn,omitempty"`
	RouterID  string  `json:"router_id,omitempty"`
	State     string  `json:"state,omitempty"`
	OldState  string  `json:"old_state,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Timestamp float64 `json:"timestamp,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"` // for "advance"
}

// peerJSON is "peer" in both event kinds: {address, asn, router_id}.
// Reading, a plain address is taken too (version 1's peer_state).
type peerJSON struct {
	Address  string `json:"address"`
	ASN      uint32 `json:"asn,omitempty"`
	RouterID string `json:"router_id,omitempty"`
}

func (p *peerJSON) UnmarshalJSON(b []byte) error {
	var addr string
	if json.Unmarshal(b, &addr) == nil {
		p.Address = addr
		return nil
	}
	type plain peerJSON
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return fmt.Errorf("peer: want {address, asn, router_id}")
	}
	return nil
}

func toPeerJSON(p Peer) *peerJSON {
	return &peerJSON{Address: p.Address, ASN: p.ASN, RouterID: p.RouterID}
}

func unixFloat(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func fromUnix(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// StreamVersion is the version of the event stream's message schema: the
// JSON Lines format plus "version" and "router". Raise it when a field
// changes meaning or goes away; adding a field keeps it. Version 2: a
// peer_state's "peer" is {address, asn, router_id}, as a best_path's
// (version 1: the address, with "asn" and "router_id" beside it).
const StreamVersion = 2

// Marshal renders an event as one JSON line (without the newline).
// Best-path attributes are decoded for it.
func Marshal(ev Event) ([]byte, error) {
	j, err := toJSON(ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// MarshalStream renders an event as a stream message: the JSON line
// with the schema version and the router id of the edbgpd that saw it.
func MarshalStream(ev Event, router string) ([]byte, error) {
	j, err := toJSON(ev)
	if err != nil {
		return nil, err
	}
	j.Version, j.Router = StreamVersion, router
	return json.Marshal(j)
}

func toJSON(ev Event) (eventJSON, error) {
	if e := ev.BestPath; e != nil {
		a := e.Attrs()
		j := eventJSON{Type: "best_path", Seq: e.Seq, Prefix: e.Prefix, Family: e.Family, Withdrawal: e.Withdrawal,
			Nexthop: a.Nexthop, ASPath: a.ASPath, Origin: a.Origin, Communities: a.Communities,
			LargeCommunities: a.LargeCommunities, ExtendedCommunities: a.ExtendedCommunities,
			Peer: toPeerJSON(e.Peer), Timestamp: unixFloat(e.Timestamp)}
		if a.HasMED {
			j.MED = &a.MED
		}
		if a.HasLocalPref {
			j.LocalPref = &a.LocalPref
		}
		return j, nil
	}
	if e := ev.PeerState; e != nil {
		return eventJSON{Type: "peer_state", Seq: e.Seq, Peer: toPeerJSON(e.Peer),
			State: e.State, OldState: e.OldState, Reason: e.Reason, Timestamp: unixFloat(e.Timestamp)}, nil
	}
	return eventJSON{}, fmt.Errorf("an empty event")
}

// Line is one line of a JSON Lines file: an event, or a move of the test
// clock (Advance > 0).
type Line struct {
	Event
	Advance time.Duration
}

// Unmarshal reads one JSON line.
func Unmarshal(line []byte) (Line, error) {
	var j eventJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return Line{}, err
	}
	switch j.Type {
	case "best_path":
		p, err := netip.ParsePrefix(j.Prefix)
		if err != nil {
			return Line{}, fmt.Errorf("prefix %q: %v", j.Prefix, err)
		}
		family := j.Family
		if family == "" {
			family = map[bool]string{true: "ipv4-unicast", false: "ipv6-unicast"}[p.Addr().Is4()]
		}
		ev := &BestPath{Seq: j.Seq, Prefix: p.Masked().String(), Family: family, Withdrawal: j.Withdrawal, Timestamp: fromUnix(j.Timestamp)}
		if j.Peer != nil {
			ev.Peer = j.peer()
		}
		a := Attributes{Nexthop: j.Nexthop, ASPath: j.ASPath, Origin: j.Origin, Communities: j.Communities,
			LargeCommunities: j.LargeCommunities, ExtendedCommunities: j.ExtendedCommunities}
		if j.MED != nil {
			a.MED, a.HasMED = *j.MED, true
		}
		if j.LocalPref != nil {
			a.LocalPref, a.HasLocalPref = *j.LocalPref, true
		}
		return Line{Event: Of(ev.WithAttributes(a))}, nil
	case "peer_state":
		if j.Peer == nil || j.Peer.Address == "" || j.State == "" {
			return Line{}, fmt.Errorf("peer_state needs peer ({address, asn, router_id}) and state")
		}
		return Line{Event: OfPeer(&PeerState{Seq: j.Seq, Peer: j.peer(), State: j.State,
			OldState: j.OldState, Reason: j.Reason, Timestamp: fromUnix(j.Timestamp)})}, nil
	case "advance":
		if !(j.Seconds > 0) {
			return Line{}, fmt.Errorf("advance needs seconds > 0")
		}
		return Line{Advance: time.Duration(j.Seconds * float64(time.Second))}, nil
	}
	return Line{}, fmt.Errorf("type %q: want best_path, peer_state or advance", j.Type)
}

// peer is the event's peer, version 1's fields beside it included.
func (j *eventJSON) peer() Peer {
	p := Peer{Address: j.Peer.Address, ASN: j.Peer.ASN, RouterID: j.Peer.RouterID}
	if p.ASN == 0 {
		p.ASN = j.ASN
	}
	if p.RouterID == "" {
		p.RouterID = j.RouterID
	}
	return p
}
