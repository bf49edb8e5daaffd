package speaker

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edbgpd/edbgpd/host/event"
)

// sessionStates names GoBGP's API session states. The API numbers them one
// above the FSM (Established is 6 here, 5 in the FSM): never compare numbers.
var sessionStates = map[api.PeerState_SessionState]string{
	api.PeerState_UNKNOWN:     "unknown",
	api.PeerState_IDLE:        "idle",
	api.PeerState_CONNECT:     "connect",
	api.PeerState_ACTIVE:      "active",
	api.PeerState_OPENSENT:    "opensent",
	api.PeerState_OPENCONFIRM: "openconfirm",
	api.PeerState_ESTABLISHED: "established",
}

// converter turns GoBGP watch events into luaapi events. It is called from
// GoBGP's single watcher goroutine, so its state needs no lock.
type converter struct {
	log     *slog.Logger
	reasons interface{ takeDownReason(string) string }
	states  map[string]string // peer address -> last state seen
	seq     atomic.Uint64     // last sequence number given to an event

	// lastSource and lastPeer cache the event peer of the last path
	// source seen by the native source (see peerOf).
	lastSource       *gPeerInfo
	lastID, lastAddr net.IP
	lastPeer         event.Peer

	bestPaths  atomic.Uint64        // best-path events made
	peerEvents atomic.Uint64        // peer-state events made
	convTime   prometheus.Histogram // per best path, on GoBGP's watcher goroutine
}

// lastSeq is the sequence number of the newest event so far.
func (c *converter) lastSeq() uint64 { return c.seq.Load() }

func newConverter(log *slog.Logger, reasons interface{ takeDownReason(string) string }) *converter {
	return &converter{log: log, reasons: reasons, states: make(map[string]string),
		convTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edbgpd_event_conversion_seconds",
			Help:    "Time to turn one GoBGP best path into an event (attributes are decoded later, on first read).",
			Buckets: prometheus.ExponentialBuckets(250e-9, 4, 8), // 250 ns to 4 ms
		})}
}

// convert calls emit for each event in r, in order.
func (c *converter) convert(r *api.WatchEventResponse, emit func(event.Event)) {
	switch e := r.Event.(type) {
	case *api.WatchEventResponse_Table:
		for _, p := range e.Table.Paths {
			start := time.Now()
			ev, err := c.bestPathEvent(p)
			if err != nil {
				c.log.Error("cannot convert best path", "err", err)
				continue
			}
			c.convTime.Observe(time.Since(start).Seconds())
			c.bestPaths.Add(1)
			ev.Seq = c.seq.Add(1)
			emit(event.Of(ev))
		}
	case *api.WatchEventResponse_Peer:
		if ev := c.peerEvent(e.Peer); ev != nil {
			c.peerEvents.Add(1)
			ev.Seq = c.seq.Add(1)
			emit(event.OfPeer(ev))
		}
	}
}

func (c *converter) peerEvent(pe *api.WatchEventResponse_PeerEvent) *event.PeerState {
	p := pe.GetPeer()
	st := p.GetState()
	if st == nil {
		return nil
	}
	addr := st.NeighborAddress
	state := sessionStates[st.SessionState]
	if state == "" {
		state = strings.ToLower(st.SessionState.String())
	}
	switch pe.Type {
	case api.WatchEventResponse_PeerEvent_INIT:
		// The peers GoBGP had when we subscribed: remember, do not report.
		c.states[addr] = state
		return nil
	case api.WatchEventResponse_PeerEvent_STATE:
	default:
		return nil
	}
	old := c.states[addr]
	c.states[addr] = state
	ev := &event.PeerState{
		Peer:      event.Peer{Address: addr, ASN: st.PeerAsn, RouterID: cleanAddr(st.RouterId)},
		State:     state,
		OldState:  old,
		Timestamp: timeNow(),
	}
	if old == "established" {
		ev.Reason = c.reasons.takeDownReason(addr)
	}
	return ev
}

// cleanAddr maps Go's rendering of a nil IP to "".
func cleanAddr(s string) string {
	if s == "<nil>" {
		return ""
	}
	return s
}

var origins = [...]string{"igp", "egp", "incomplete"}

// bestPathEvent turns one API path into an event. Only the prefix is
// decoded here, on GoBGP's watcher goroutine; the attributes are decoded
// on a script's goroutine if and when a script reads one.
func (c *converter) bestPathEvent(p *api.Path) (*event.BestPath, error) {
	prefix, ok := wirePrefix(p.Nlri)
	if !ok {
		nlri, err := apiutil.GetNativeNlri(p)
		if err != nil {
			return nil, fmt.Errorf("nlri: %w", err)
		}
		prefix = nlri.String()
	}
	ev := &event.BestPath{
		Prefix:     prefix,
		Family:     apiutil.ToRouteFamily(p.Family).String(),
		Withdrawal: p.IsWithdraw,
		Peer: event.Peer{
			Address:  cleanAddr(p.NeighborIp),
			ASN:      p.SourceAsn,
			RouterID: cleanAddr(p.SourceId),
		},
	}
	if p.Age != nil {
		ev.Timestamp = p.Age.AsTime()
	}
	log := c.log
	return ev.DecodeWith(func(a *event.Attributes) {
		if err := decodeRest(a, decodeWire(a, p.Pattrs)); err != nil {
			log.Error("cannot decode path attributes", "prefix", ev.Prefix, "err", err)
		}
	}), nil
}

// setAttributes copies the attributes scripts read into ev.
func setAttributes(ev *event.Attributes, attrs []bgp.PathAttributeInterface) {
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeOrigin:
			if int(a.Value) < len(origins) {
				ev.Origin = origins[a.Value]
			}
		case *bgp.PathAttributeAsPath:
			n := 0
			for _, seg := range a.Value {
				n += seg.ASLen()
			}
			path := make([]uint32, 0, n)
			for _, seg := range a.Value {
				switch seg := seg.(type) {
				case *bgp.As4PathParam: // GetAS would copy it
					path = append(path, seg.AS...)
				default:
					path = append(path, seg.GetAS()...)
				}
			}
			ev.ASPath = path
		case *bgp.PathAttributeNextHop:
			ev.Nexthop = a.Value.String()
		case *bgp.PathAttributeMpReachNLRI:
			if a.Nexthop != nil {
				ev.Nexthop = a.Nexthop.String()
			}
		case *bgp.PathAttributeMultiExitDisc:
			ev.MED, ev.HasMED = a.Value, true
		case *bgp.PathAttributeLocalPref:
			ev.LocalPref, ev.HasLocalPref = a.Value, true
		case *bgp.PathAttributeCommunities:
			ev.Communities = make([]string, len(a.Value))
			for i, v := range a.Value {
				ev.Communities[i] = communityString(v)
			}
		case *bgp.PathAttributeLargeCommunities:
			ev.LargeCommunities = make([]string, len(a.Values))
			for i, v := range a.Values {
				ev.LargeCommunities[i] = v.String()
			}
		case *bgp.PathAttributeExtendedCommunities:
			ev.ExtendedCommunities = make([]string, len(a.Value))
			for i, v := range a.Value {
				ev.ExtendedCommunities[i] = extCommunity(v)
			}
		}
	}
}

// extCommunity renders an extended community with its kind, as in
// "rt:65000:100" or "soo:65000:1"; other kinds in GoBGP's own words.
func extCommunity(v bgp.ExtendedCommunityInterface) string {
	_, sub := v.GetTypes()
	switch sub {
	case bgp.EC_SUBTYPE_ROUTE_TARGET:
		return "rt:" + v.String()
	case bgp.EC_SUBTYPE_ROUTE_ORIGIN:
		return "soo:" + v.String()
	}
	return v.String()
}

// timeNow is time.Now, replaceable in tests.
var timeNow = time.Now
