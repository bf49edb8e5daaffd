// Package event holds the two kinds of event edbgpd hands on: a change of
// a prefix's best path and a change of a peer's session state. The GoBGP
// side makes them; the script engine, the sinks and the offline runner
// take them. Plain structs: what a field means is said here once.
package event

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one event in the order GoBGP made them: exactly one of
// BestPath and PeerState is set.
type Event struct {
	BestPath  *BestPath
	PeerState *PeerState
}

// Of wraps a best path as an Event.
func Of(p *BestPath) Event { return Event{BestPath: p} }

// OfPeer wraps a peer-state change as an Event.
func OfPeer(p *PeerState) Event { return Event{PeerState: p} }

// Seq is the event's sequence number.
func (e Event) Seq() uint64 {
	if e.BestPath != nil {
		return e.BestPath.Seq
	}
	if e.PeerState != nil {
		return e.PeerState.Seq
	}
	return 0
}

// Time is when the event happened (the path was received, the state
// changed); zero if unknown.
func (e Event) Time() time.Time {
	if e.BestPath != nil {
		return e.BestPath.Timestamp
	}
	if e.PeerState != nil {
		return e.PeerState.Timestamp
	}
	return time.Time{}
}

// Sink takes events in order. Called on the one goroutine that produces
// them (GoBGP's watcher): an implementation queues and returns.
type Sink interface {
	Push(Event)
}

// Peer identifies the BGP neighbour a path was learned from (or the
// daemon itself for locally originated paths: address "" and asn 0).
type Peer struct {
	Address  string
	ASN      uint32
	RouterID string
}

// Attributes are the path attributes of a best path, as scripts read them.
type Attributes struct {
	Nexthop             string
	ASPath              []uint32 // AS_SEQUENCE and AS_SET members, in order
	Origin              string   // "igp", "egp", "incomplete"
	MED                 uint32
	HasMED              bool
	LocalPref           uint32
	HasLocalPref        bool
	Communities         []string // "65000:38"
	LargeCommunities    []string // "65000:1:2"
	ExtendedCommunities []string // "rt:65000:100", "soo:65000:1", else GoBGP's text
}

// BestPath is one change of the best path of a prefix. Events are shared
// by every script, so they are never modified after they are queued,
// except for the attributes, decoded once on first use.
type BestPath struct {
	Seq        uint64 // per daemon, increasing: order and gaps are visible
	Prefix     string // "10.0.0.0/8"
	Family     string // "ipv4-unicast", "ipv6-unicast", ...
	Withdrawal bool   // the prefix has no best path any more
	Peer       Peer
	Timestamp  time.Time // when the path was received or originated

	once   sync.Once
	decode Decoder
	attrs  Attributes
}

// Decoder fills a best path's attributes.
type Decoder interface{ Decode(*Attributes) }

// DecodeFunc is a function as a Decoder.
type DecodeFunc func(*Attributes)

func (f DecodeFunc) Decode(a *Attributes) { f(a) }

// DecodeFrom makes d fill the attributes on first use, as DecodeWith. A
// pointer that is a Decoder costs no allocation, where a closure does:
// this is the per-event path.
func (e *BestPath) DecodeFrom(d Decoder) *BestPath {
	e.decode = d
	return e
}

// DecodeWith makes decode fill the attributes on first use, on whichever
// script goroutine asks first: most handlers return after looking at the
// prefix and never pay for the decoding. Call it before the event is
// shared.
func (e *BestPath) DecodeWith(decode func(*Attributes)) *BestPath {
	e.decode = DecodeFunc(decode)
	return e
}

// WithAttributes sets attributes already known. Call it before the event
// is shared.
func (e *BestPath) WithAttributes(a Attributes) *BestPath {
	e.attrs, e.decode = a, nil
	return e
}

// Attrs returns the path attributes, decoding them the first time.
func (e *BestPath) Attrs() *Attributes {
	e.once.Do(func() {
		if e.decode != nil {
			e.decode.Decode(&e.attrs)
			e.decode = nil
		}
	})
	return &e.attrs
}

// PeerState is one session state change of a neighbour.
type PeerState struct {
	Seq       uint64
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
