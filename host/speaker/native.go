package speaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"time"
	_ "unsafe" // go:linkname

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/edbgpd/edbgpd/host/event"
)

// The native event source: GoBGP's own watcher, the one its public
// WatchEvent wraps, read without WatchEvent's protobuf conversion of every
// path (toPathApi), which measured costs a full-table load most of what a
// script costs. GoBGP v3 keeps that watcher unexported, so edbgpd reaches
// it with //go:linkname pulls (allowed by Go's linker outside the
// standard library) and reads its events through mirrors of GoBGP's
// structs. go.mod pins GoBGP v3.37.0; at start every mirrored layout is
// checked against GoBGP's real types (checkLayouts), and on any
// difference edbgpd says so once and uses the public WatchEvent.
//
// Paths in these events are clones made for watchers (notifyBestWatcher:
// clonePathList), as GoBGP's own BMP and zebra clients receive them: GoBGP
// never changes a path once it is handed out (a new best path is a new
// path), so edbgpd may read them on its own goroutines while GoBGP goes on.

// gWatcher and gWatchOptions are GoBGP's watcher and its options, only
// ever handled by pointer.
type (
	gWatcher      struct{}
	gWatchOptions struct{}
	gWatchOption  func(*gWatchOptions)
)

//go:linkname gobgpWatch github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).watch
func gobgpWatch(s *server.BgpServer, opts ...gWatchOption) *gWatcher

//go:linkname gobgpWatchBestPath github.com/osrg/gobgp/v3/pkg/server.watchBestPath
func gobgpWatchBestPath(current bool) gWatchOption

//go:linkname gobgpWatchPeer github.com/osrg/gobgp/v3/pkg/server.watchPeer
func gobgpWatchPeer() gWatchOption

//go:linkname gobgpWatcherEvent github.com/osrg/gobgp/v3/pkg/server.(*watcher).Event
func gobgpWatcherEvent(w *gWatcher) <-chan any

//go:linkname gobgpWatcherStop github.com/osrg/gobgp/v3/pkg/server.(*watcher).Stop
func gobgpWatcherStop(w *gWatcher)

//go:linkname gobgpReasonString github.com/osrg/gobgp/v3/pkg/server.fsmStateReason.String
func gobgpReasonString(r nativeReason) string

// table.Path (an internal package of GoBGP's) and its getters.
type gPath struct {
	info             *gOriginInfo
	parent           *gPath
	pathAttrs        []bgp.PathAttributeInterface
	dels             []bgp.BGPAttrType
	attrsHash        uint32
	rejected         bool
	dropped          bool
	IsNexthopInvalid bool
	IsWithdraw       bool
}

type gOriginInfo struct {
	nlri               bgp.AddrPrefixInterface
	source             *gPeerInfo
	timestamp          int64
	noImplicitWithdraw bool
	isFromExternal     bool
	eor                bool
	stale              bool
}

type gPeerInfo struct {
	AS                      uint32
	ID                      net.IP
	LocalAS                 uint32
	LocalID                 net.IP
	Address                 net.IP
	LocalAddress            net.IP
	RouteReflectorClient    bool
	RouteReflectorClusterID net.IP
	MultihopTtl             uint8
	Confederation           bool
}

//go:linkname pathNlri github.com/osrg/gobgp/v3/internal/pkg/table.(*Path).GetNlri
func pathNlri(p *gPath) bgp.AddrPrefixInterface

//go:linkname pathAttrs github.com/osrg/gobgp/v3/internal/pkg/table.(*Path).GetPathAttrs
func pathAttrs(p *gPath) []bgp.PathAttributeInterface

//go:linkname pathSource github.com/osrg/gobgp/v3/internal/pkg/table.(*Path).GetSource
func pathSource(p *gPath) *gPeerInfo

//go:linkname pathTimestamp github.com/osrg/gobgp/v3/internal/pkg/table.(*Path).GetTimestamp
func pathTimestamp(p *gPath) time.Time

// nativeBestPath mirrors server.watchEventBestPath.
type nativeBestPath struct {
	PathList      []*gPath
	MultiPathList [][]*gPath
	Vrf           map[uint32]bool
}

// nativePeer mirrors server.watchEventPeer.
type nativePeer struct {
	Type          server.PeerEventType
	PeerAS        uint32
	LocalAS       uint32
	PeerAddress   net.IP
	LocalAddress  net.IP
	PeerPort      uint16
	LocalPort     uint16
	PeerID        net.IP
	SentOpen      *bgp.BGPMessage
	RecvOpen      *bgp.BGPMessage
	State         bgp.FSMState
	OldState      bgp.FSMState
	StateReason   *nativeReason
	AdminState    int
	Timestamp     time.Time
	PeerInterface string
}

// nativeReason mirrors server.fsmStateReason.
type nativeReason struct {
	Type            uint8
	BGPNotification *bgp.BGPMessage
	Data            []byte
}

// mirrors pairs GoBGP's types with edbgpd's, by GoBGP's type name; the
// event types are found at start (probe), the others from them.
var mirrors = map[string]reflect.Type{
	"server.watchEventBestPath": reflect.TypeFor[nativeBestPath](),
	"server.watchEventPeer":     reflect.TypeFor[nativePeer](),
	"server.fsmStateReason":     reflect.TypeFor[nativeReason](),
	"table.Path":                reflect.TypeFor[gPath](),
	"table.originInfo":          reflect.TypeFor[gOriginInfo](),
	"table.PeerInfo":            reflect.TypeFor[gPeerInfo](),
}

// sameLayout tells how GoBGP's struct theirs differs from edbgpd's mirror
// ours: every field in the same order with the same name, offset and
// type. A type both can name must be the same type; one only GoBGP can
// name (its unexported or internal types) must have the same kind and
// size, and a struct (or pointer to one) the same layout in turn.
func sameLayout(theirs, ours reflect.Type) error {
	return layoutCheck{seen: map[[2]reflect.Type]bool{}}.structs(theirs, ours)
}

type layoutCheck struct{ seen map[[2]reflect.Type]bool }

func (c layoutCheck) structs(theirs, ours reflect.Type) error {
	if c.seen[[2]reflect.Type{theirs, ours}] {
		return nil // checked, or being checked (table.Path's parent)
	}
	c.seen[[2]reflect.Type{theirs, ours}] = true
	if theirs.Kind() != reflect.Struct || ours.Kind() != reflect.Struct {
		return fmt.Errorf("%s: not a struct", theirs)
	}
	if theirs.NumField() != ours.NumField() || theirs.Size() != ours.Size() {
		return fmt.Errorf("%s: %d fields, %d bytes; edbgpd expects %d fields, %d bytes", theirs, theirs.NumField(), theirs.Size(), ours.NumField(), ours.Size())
	}
	for i := range theirs.NumField() {
		t, o := theirs.Field(i), ours.Field(i)
		if t.Name != o.Name || t.Offset != o.Offset {
			return fmt.Errorf("%s field %d: %s at %d; edbgpd expects %s at %d", theirs, i, t.Name, t.Offset, o.Name, o.Offset)
		}
		if err := c.types(t.Type, o.Type); err != nil {
			return fmt.Errorf("%s.%s: %w", theirs, t.Name, err)
		}
	}
	return nil
}

func (c layoutCheck) types(theirs, ours reflect.Type) error {
	if theirs == ours {
		return nil
	}
	if theirs.Kind() != ours.Kind() || theirs.Size() != ours.Size() {
		return fmt.Errorf("type %s; edbgpd expects %s", theirs, ours)
	}
	switch theirs.Kind() {
	case reflect.Pointer, reflect.Slice:
		return c.types(theirs.Elem(), ours.Elem())
	case reflect.Struct:
		if want, ok := mirrors[theirs.String()]; !ok || want != ours {
			return fmt.Errorf("type %s; edbgpd expects %s", theirs, ours)
		}
		return c.structs(theirs, ours)
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.String:
		if ours.PkgPath() != "" {
			return fmt.Errorf("type %s; edbgpd expects %s", theirs, ours) // two named types, not the same
		}
		return nil // one of GoBGP's unexported basic types (adminState, fsmStateReasonType), as its kind
	}
	return fmt.Errorf("type %s; edbgpd expects %s", theirs, ours)
}

// nativeTypes are GoBGP's event types, as found by the probe.
type nativeTypes struct {
	bestPath, peer reflect.Type // pointer types, as events carry them
}

// errNoProbe: the probe watcher did not hand over both event kinds.
var errNoProbe = errors.New("GoBGP's watcher did not hand over its two event kinds")

// probeNative registers a watcher of GoBGP's own, reads the events it
// sends at once (the end of the initial peer list, the current best
// paths: BGP must have started, and with no neighbours and no routes yet
// both are small), and checks every mirrored layout against them.
func probeNative(srv *server.BgpServer, timeout time.Duration) (nativeTypes, error) {
	w := gobgpWatch(srv, gobgpWatchBestPath(true), gobgpWatchPeer())
	defer gobgpWatcherStop(w)
	var nt nativeTypes
	deadline := time.After(timeout)
	for nt.bestPath == nil || nt.peer == nil {
		select {
		case ev, ok := <-gobgpWatcherEvent(w):
			if !ok {
				return nt, errNoProbe
			}
			t := reflect.TypeOf(ev)
			if t == nil || t.Kind() != reflect.Pointer {
				continue
			}
			switch t.Elem().String() {
			case "server.watchEventBestPath":
				nt.bestPath = t
			case "server.watchEventPeer":
				nt.peer = t
			}
		case <-deadline:
			return nt, errNoProbe
		}
	}
	return nt, checkLayouts(nt)
}

// checkLayouts compares GoBGP's event types with edbgpd's mirrors, and
// the types they lead to (table.Path, its origin info and peer info,
// the state reason).
func checkLayouts(nt nativeTypes) error {
	for _, t := range []reflect.Type{nt.bestPath.Elem(), nt.peer.Elem()} {
		ours, ok := mirrors[t.String()]
		if !ok {
			return fmt.Errorf("no mirror of %s", t)
		}
		if err := sameLayout(t, ours); err != nil {
			return err
		}
	}
	return nil
}

// watchNative runs GoBGP's own watcher until ctx is done, its events
// turned into events by conv on one goroutine, as the public path does.
func (sp *Speaker) watchNative(ctx context.Context, conv *converter, nt nativeTypes, sink event.Sink, idle func() bool) {
	w := gobgpWatch(sp.srv, gobgpWatchBestPath(false), gobgpWatchPeer())
	go func() {
		defer gobgpWatcherStop(w)
		events := gobgpWatcherEvent(w)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				switch t := reflect.TypeOf(ev); t {
				case nt.bestPath:
					if idle != nil && idle() {
						continue // nobody listens: skip the conversion
					}
					e := (*nativeBestPath)(reflect.ValueOf(ev).UnsafePointer())
					if len(e.MultiPathList) > 0 {
						for _, l := range e.MultiPathList {
							conv.nativePaths(l, sink.Push)
						}
					} else {
						conv.nativePaths(e.PathList, sink.Push)
					}
				case nt.peer:
					e := (*nativePeer)(reflect.ValueOf(ev).UnsafePointer())
					if pe := conv.nativePeerEvent(e); pe != nil {
						conv.peerEvents.Add(1)
						pe.Seq = conv.seq.Add(1)
						sink.Push(event.OfPeer(pe))
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// nativePaths emits an event for each path, in order.
func (c *converter) nativePaths(paths []*gPath, emit func(event.Event)) {
	for _, p := range paths {
		start := time.Now()
		ev := c.nativeBestPath(p)
		c.convTime.Observe(time.Since(start).Seconds())
		c.bestPaths.Add(1)
		ev.Seq = c.seq.Add(1)
		emit(event.Of(ev))
	}
}

// nativeBestPath reads a path through table.Path's getters. Only the
// prefix is read here; the attributes are read on a script's goroutine
// if and when a script reads one.
func (c *converter) nativeBestPath(p *gPath) *event.BestPath {
	nlri := pathNlri(p)
	ev := &event.BestPath{
		Prefix:     nlri.String(),
		Family:     bgp.AfiSafiToRouteFamily(nlri.AFI(), nlri.SAFI()).String(),
		Withdrawal: p.IsWithdraw,
		Peer:       c.peerOf(pathSource(p)),
		Timestamp:  pathTimestamp(p),
	}
	return ev.DecodeFrom((*pathDecoder)(p))
}

// pathDecoder reads a path's attributes when a script first asks for one.
type pathDecoder gPath

func (p *pathDecoder) Decode(a *event.Attributes) { setAttributes(a, pathAttrs((*gPath)(p))) }

// peerOf is the event's peer for a path's source, remembered for the
// last source seen: paths come in runs from one peer, and the address
// strings would otherwise be made anew for every path.
func (c *converter) peerOf(src *gPeerInfo) event.Peer {
	if src == nil {
		return event.Peer{}
	}
	// The same source may stand for a peer that came back with another
	// router id: compare what the cached peer was made from.
	if src == c.lastSource && src.AS == c.lastPeer.ASN && src.ID.Equal(c.lastID) && src.Address.Equal(c.lastAddr) {
		return c.lastPeer
	}
	c.lastSource, c.lastID, c.lastAddr = src, src.ID, src.Address
	c.lastPeer = event.Peer{Address: cleanAddr(src.Address.String()), ASN: src.AS, RouterID: cleanAddr(src.ID.String())}
	return c.lastPeer
}

// fsmStates names GoBGP's FSM states as events do.
var fsmStates = map[bgp.FSMState]string{
	bgp.BGP_FSM_IDLE:        "idle",
	bgp.BGP_FSM_CONNECT:     "connect",
	bgp.BGP_FSM_ACTIVE:      "active",
	bgp.BGP_FSM_OPENSENT:    "opensent",
	bgp.BGP_FSM_OPENCONFIRM: "openconfirm",
	bgp.BGP_FSM_ESTABLISHED: "established",
}

// nativePeerEvent turns GoBGP's peer event into an event, nil for the
// initial list of peers (remembered). The old state and the down reason
// are GoBGP's own, from the event ("" for a peer edbgpd has not seen, as
// with the public source).
func (c *converter) nativePeerEvent(e *nativePeer) *event.PeerState {
	addr := e.PeerAddress.String()
	state, ok := fsmStates[e.State]
	if !ok {
		state = "unknown"
	}
	switch e.Type {
	case server.PEER_EVENT_INIT:
		c.states[addr] = state
		return nil
	case server.PEER_EVENT_STATE:
	default:
		return nil
	}
	// GoBGP's old state, for a peer edbgpd has seen; "" for one it has
	// not, as the public source says (and the event's contract).
	old := ""
	if _, known := c.states[addr]; known {
		if old = fsmStates[e.OldState]; old == "" {
			old = "unknown"
		}
	}
	c.states[addr] = state
	ev := &event.PeerState{
		Peer:      event.Peer{Address: addr, ASN: e.PeerAS, RouterID: cleanAddr(e.PeerID.String())},
		State:     state,
		OldState:  old,
		Timestamp: timeNow(),
	}
	if old == "established" && e.StateReason != nil {
		ev.Reason = gobgpReasonString(*e.StateReason)
	}
	return ev
}
