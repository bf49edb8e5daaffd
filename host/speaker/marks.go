package speaker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	_ "unsafe" // go:linkname

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/edbgpd/edbgpd/host/event"
)

//go:linkname gobgpWatchMessage github.com/osrg/gobgp/v3/pkg/server.watchMessage
func gobgpWatchMessage(isSent bool) gWatchOption

// MarkKind says what a Mark marks.
type MarkKind int

const (
	MarkUpdate MarkKind = iota + 1 // GoBGP took in an UPDATE from the peer
	MarkUp                         // the peer's session came up
	MarkDown                       // the peer's session went down
)

// Mark is a step of GoBGP's main loop a replay waits for: GoBGP handles
// one message or state change at a time, so once the mark of a message
// is seen, whatever is sent after it is handled after it.
type Mark struct {
	Kind MarkKind
	Peer netip.Addr
}

// ErrNoNativeWatcher: marks need GoBGP's own watcher (its layout checked
// at Start), and it was not usable.
var ErrNoNativeWatcher = errors.New("replay needs GoBGP's own watcher, and this GoBGP's layout is not the one edbgpd knows")

// WatchMarks runs, until ctx is done, a watcher of GoBGP's own that
// calls mark for every UPDATE GoBGP takes in and every session that comes
// up or goes down, in GoBGP's order. With a sink, the same watcher also
// hands it the best path and peer events (as Watch does), in order with
// the marks: each best path follows the mark of the UPDATE that made it,
// which is how a replay gives events the time of the record they came
// from. Call it once a speaker, with a sink, instead of Watch. mark and
// the sink are called on the watcher's goroutine.
func (sp *Speaker) WatchMarks(ctx context.Context, mark func(Mark), sink event.Sink) error {
	if sp.native == nil {
		return ErrNoNativeWatcher
	}
	nt := *sp.native
	opts := []gWatchOption{gobgpWatchMessage(false), gobgpWatchPeer()}
	if sink != nil {
		opts = append(opts, gobgpWatchBestPath(false))
	}
	w := gobgpWatch(sp.srv, opts...)
	var msgType reflect.Type
	var msgField, addrField int
	go func() {
		defer gobgpWatcherStop(w)
		events := gobgpWatcherEvent(w)
		for {
			var ev any
			var ok bool
			select {
			case ev, ok = <-events:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			switch t := reflect.TypeOf(ev); t {
			case nt.bestPath:
				if sink == nil {
					continue
				}
				e := (*nativeBestPath)(reflect.ValueOf(ev).UnsafePointer())
				if len(e.MultiPathList) > 0 {
					for _, l := range e.MultiPathList {
						sp.conv.nativePaths(l, sink.Push)
					}
				} else {
					sp.conv.nativePaths(e.PathList, sink.Push)
				}
			case nt.peer:
				e := (*nativePeer)(reflect.ValueOf(ev).UnsafePointer())
				if e.Type == server.PEER_EVENT_STATE {
					switch {
					case e.State == bgp.BGP_FSM_ESTABLISHED:
						mark(Mark{MarkUp, addrOf(e.PeerAddress)})
					case e.OldState == bgp.BGP_FSM_ESTABLISHED:
						mark(Mark{MarkDown, addrOf(e.PeerAddress)})
					}
				}
				if sink != nil {
					if pe := sp.conv.nativePeerEvent(e); pe != nil {
						sp.conv.peerEvents.Add(1)
						pe.Seq = sp.conv.seq.Add(1)
						sink.Push(event.OfPeer(pe))
					}
				}
			default:
				// The received message event: read through reflect by
				// field name (two exported fields of public types), so
				// no layout of it is assumed.
				if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
					continue
				}
				if msgType != t {
					m, ok1 := t.Elem().FieldByName("Message")
					a, ok2 := t.Elem().FieldByName("PeerAddress")
					if !ok1 || !ok2 || m.Type != reflect.TypeOf((*bgp.BGPMessage)(nil)) || a.Type != reflect.TypeOf(net.IP(nil)) {
						continue
					}
					msgType, msgField, addrField = t, m.Index[0], a.Index[0]
				}
				v := reflect.ValueOf(ev).Elem()
				m, _ := v.Field(msgField).Interface().(*bgp.BGPMessage)
				if m != nil && m.Header.Type == bgp.BGP_MSG_UPDATE {
					mark(Mark{MarkUpdate, addrOf(v.Field(addrField).Interface().(net.IP))})
				}
			}
		}
	}()
	return nil
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// AddReplayPeer adds a passive neighbour for a replay feeder: the IPv4
// and IPv6 unicast families.
func (sp *Speaker) AddReplayPeer(ctx context.Context, addr netip.Addr, asn uint32) error {
	return sp.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: addr.String(), PeerAsn: asn},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{IdleHoldTimeAfterReset: 1}}, // a reset peer may come back at once
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}})
}
