package speaker

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// collect is a sink that keeps every event.
type collect struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *collect) Push(ev event.Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
}

func (c *collect) has(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		if ev.BestPath != nil && ev.BestPath.Prefix == prefix {
			return true
		}
	}
	return false
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startSpeaker runs a speaker (AS 65001 on 127.0.0.1:port) with the
// router at 127.0.0.2 (AS 65002) as its passive neighbour.
func startSpeaker(t *testing.T, port int, o Options) *Speaker {
	t.Helper()
	sp, cfg := startBare(t, port, o)
	if err := sp.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return sp
}

// startBare is startSpeaker before the neighbour is added: apply cfg to
// add it.
func startBare(t *testing.T, port int, o Options) (*Speaker, *Config) {
	t.Helper()
	text := fmt.Sprintf(`[global.config]
  as = 65001
  router-id = "127.0.0.1"
  port = %d
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65002
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.1"
  [neighbors.timers.config]
    connect-retry = 1
[[neighbors.afi-safis]]
  [neighbors.afi-safis.config]
    afi-safi-name = "ipv4-unicast"
[[neighbors.afi-safis]]
  [neighbors.afi-safis.config]
    afi-safi-name = "ipv6-unicast"
`, port)
	cfg, err := ReadConfig("speaker.toml", "toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
	sp := New(o)
	t.Cleanup(sp.Stop)
	if err := sp.Start(cfg, false); err != nil {
		t.Fatal(err)
	}
	return sp, cfg
}

// replayMRT sends every UPDATE of an MRT file of RIPE RIS through the
// router, as `gobgp mrt inject global` would: announcements added to its
// RIB, withdrawals deleted. It returns what it sent.
func replayMRT(t *testing.T, r *bgptest.Router, path string) (announced, withdrawn int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("RIS data: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hdr := make([]byte, mrt.MRT_COMMON_HEADER_LEN)
	for {
		if _, err := io.ReadFull(z, hdr); err != nil {
			return
		}
		h := &mrt.MRTHeader{}
		if err := h.DecodeFromBytes(hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
		if _, err := io.ReadFull(z, body); err != nil {
			return
		}
		m, err := mrt.ParseMRTBody(h, body)
		if err != nil {
			continue
		}
		msg, ok := m.Body.(*mrt.BGP4MPMessage)
		if !ok || msg.BGPMessage == nil {
			continue
		}
		u, ok := msg.BGPMessage.Body.(*bgp.BGPUpdate)
		if !ok {
			continue
		}
		var add, del []*api.Path
		var withdrawals []bgp.AddrPrefixInterface
		for _, n := range u.WithdrawnRoutes {
			withdrawals = append(withdrawals, n)
		}
		var plain []bgp.PathAttributeInterface
		var reach *bgp.PathAttributeMpReachNLRI
		for _, a := range u.PathAttributes {
			switch a := a.(type) {
			case *bgp.PathAttributeMpReachNLRI:
				reach = a
			case *bgp.PathAttributeMpUnreachNLRI:
				withdrawals = append(withdrawals, a.Value...)
			default:
				plain = append(plain, a)
			}
		}
		for _, n := range u.NLRI {
			if p, err := apiutil.NewPath(n, false, plain, time.Now()); err == nil {
				add = append(add, p)
			}
		}
		if reach != nil {
			for _, n := range reach.Value {
				attrs := append([]bgp.PathAttributeInterface{bgp.NewPathAttributeMpReachNLRI(reach.Nexthop.String(), []bgp.AddrPrefixInterface{n})}, plain...)
				if p, err := apiutil.NewPath(n, false, attrs, time.Now()); err == nil {
					add = append(add, p)
				}
			}
		}
		for _, n := range withdrawals {
			if p, err := apiutil.NewPath(n, true, nil, time.Now()); err == nil {
				del = append(del, p)
			}
		}
		for _, p := range del {
			if r.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: p}) == nil {
				withdrawn++
			}
		}
		for _, p := range add {
			if _, err := r.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err == nil {
				announced++
			}
		}
	}
}

// TestSourcesAgreeOnRIS: the two RIPE RIS files replayed into a speaker
// over a real session, watched by both event sources at once: the native
// source and the public WatchEvent hand over the same events, field for
// field, in the same order (the peer-state timestamps aside: both sources
// stamp those when they see them).
func TestSourcesAgreeOnRIS(t *testing.T) {
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	r.IPv6 = true
	sp, cfg := startBare(t, port, Options{})
	if sp.native == nil {
		t.Fatal("the native source did not pass its checks")
	}
	native, public := &collect{}, &collect{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sp.watchNative(ctx, newConverter(quiet(), sp.glog), *sp.native, native, nil)
	if err := sp.watchPublic(ctx, newConverter(quiet(), sp.glog), public, nil); err != nil {
		t.Fatal(err)
	}
	// The neighbour comes after both watchers: both see all its states.
	if err := sp.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	r.Connect(port)
	r.WaitEstablished()
	for _, f := range []string{"updates.20160811.1600.gz", "updates.20070211.0141.gz"} {
		a, w := replayMRT(t, r, bgptest.RISFile(f))
		t.Logf("%s: %d announcements, %d withdrawals sent", f, a, w)
	}
	r.Announce("198.18.255.255/32") // the sentinel: sent last
	bgptest.WaitFor(t, 120*time.Second, func() bool { return native.has("198.18.255.255/32") && public.has("198.18.255.255/32") }, "the sentinel at both sources")
	r.Stop() // a peer-state change with a down reason, last
	// Compare up to the session's end: what GoBGP does after it (trying
	// the peer again) may reach one source before the other.
	var span int
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, p := native.downAfter("198.18.255.255/32"), public.downAfter("198.18.255.255/32")
		if n > 0 && n == p {
			span = n
			break
		}
		if time.Now().After(deadline) {
			native.mu.Lock()
			public.mu.Lock()
			first := -1
			for i := range min(len(native.events), len(public.events)) {
				nj, _ := event.Marshal(native.events[i])
				pj, _ := event.Marshal(public.events[i])
				if native.events[i].PeerState == nil && string(nj) != string(pj) {
					first = i
					break
				}
			}
			t.Fatalf("the session's end not at the same place: native %d of %d events, public %d of %d; first difference at %d:\nnative %s\npublic %s",
				n, len(native.events), p, len(public.events), first, around(native.events, first), around(public.events, first))
		}
		time.Sleep(20 * time.Millisecond)
	}

	native.mu.Lock()
	public.mu.Lock()
	defer native.mu.Unlock()
	defer public.mu.Unlock()
	seen := map[string]int{}
	for i := range span {
		n, p := native.events[i], public.events[i]
		if n.PeerState != nil && p.PeerState != nil {
			p.PeerState.Timestamp = n.PeerState.Timestamp
		}
		nj, err1 := event.Marshal(n)
		pj, err2 := event.Marshal(p)
		if err1 != nil || err2 != nil || string(nj) != string(pj) {
			t.Fatalf("event %d differs:\nnative %s\npublic %s", i, nj, pj)
		}
		if b := n.BestPath; b != nil {
			a := b.Attrs()
			for kind, ok := range map[string]bool{
				"ipv6": b.Family == "ipv6-unicast", "withdrawal": b.Withdrawal, "large community": len(a.LargeCommunities) > 0,
				"extended community": len(a.ExtendedCommunities) > 0, "community": len(a.Communities) > 0, "med": a.HasMED,
				"long AS path": len(a.ASPath) > 6,
			} {
				if ok {
					seen[kind]++
				}
			}
		} else if n.PeerState.Reason != "" {
			seen["down reason"]++
		}
	}
	t.Logf("%d events alike: %v", span, seen)
	// The files predate large communities (RFC 8092, 2017): the replay
	// cannot show them; the wire tests do.
	for _, kind := range []string{"ipv6", "withdrawal", "extended community", "community", "med", "long AS path", "down reason"} {
		if seen[kind] == 0 {
			t.Errorf("the replay had no event with %s: it proves less than it should", kind)
		}
	}
}

// around renders the events around i, for a failure.
func around(evs []event.Event, i int) string {
	var b strings.Builder
	for _, ev := range evs[max(0, i-2):min(len(evs), i+3)] {
		j, _ := event.Marshal(ev)
		b.WriteString("\n  " + string(j))
	}
	return b.String()
}

// downAfter is the number of events up to and including the first
// session end after the best path of prefix, 0 if there is none yet.
func (c *collect) downAfter(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	after := false
	for i, ev := range c.events {
		if ev.BestPath != nil && ev.BestPath.Prefix == prefix {
			after = true
		}
		if after && ev.PeerState != nil && ev.PeerState.OldState == "established" {
			return i + 1
		}
	}
	return 0
}

// TestLayoutCheck: GoBGP's real types pass; a mirror that differs in a
// field's name, offset or type does not.
func TestLayoutCheck(t *testing.T) {
	port := bgptest.FreePort(t)
	sp := startSpeaker(t, port, Options{EventSource: SourceWatchEvent})
	nt, err := probeNative(sp.srv, 2*time.Second)
	if err != nil {
		t.Fatalf("GoBGP v3.37.0's own layout refused: %v", err)
	}
	type swapped struct { // Vrf and MultiPathList swapped
		PathList      []*gPath
		Vrf           map[uint32]bool
		MultiPathList [][]*gPath
	}
	type renamed struct {
		PathList      []*gPath
		MultiPathList [][]*gPath
		VRF           map[uint32]bool
	}
	type narrower struct {
		PathList      []*gPath
		MultiPathList [][]*gPath
	}
	type wrongElem struct {
		PathList      []*gPeerInfo
		MultiPathList [][]*gPath
		Vrf           map[uint32]bool
	}
	for _, tc := range []struct {
		mirror reflect.Type
		want   string
	}{
		{reflect.TypeFor[swapped](), "field 1: MultiPathList"},
		{reflect.TypeFor[renamed](), "edbgpd expects VRF"},
		{reflect.TypeFor[narrower](), "3 fields"},
		{reflect.TypeFor[wrongElem](), "PathList"},
	} {
		if err := sameLayout(nt.bestPath.Elem(), tc.mirror); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.mirror, err, tc.want)
		}
	}
	// A layout one level down: a field of table.Path.
	type pathWithoutWithdraw struct {
		info             *gOriginInfo
		parent           *pathWithoutWithdraw
		pathAttrs        []bgp.PathAttributeInterface
		dels             []bgp.BGPAttrType
		attrsHash        uint32
		rejected         bool
		dropped          bool
		IsNexthopInvalid bool
		IsStale          bool
	}
	saved := mirrors["table.Path"]
	mirrors["table.Path"] = reflect.TypeFor[pathWithoutWithdraw]()
	defer func() { mirrors["table.Path"] = saved }()
	type bestPathOf struct {
		PathList      []*pathWithoutWithdraw
		MultiPathList [][]*pathWithoutWithdraw
		Vrf           map[uint32]bool
	}
	if err := sameLayout(nt.bestPath.Elem(), reflect.TypeFor[bestPathOf]()); err == nil || !strings.Contains(err.Error(), "IsWithdraw") {
		t.Errorf("a renamed field of table.Path: %v", err)
	}
}

// TestWrongLayoutFallsBack: with a mirror that is not GoBGP's layout, the
// speaker says so and runs on the public WatchEvent, and events still
// flow.
func TestWrongLayoutFallsBack(t *testing.T) {
	type tooShort struct{ PathList []*gPath }
	saved := mirrors["server.watchEventBestPath"]
	mirrors["server.watchEventBestPath"] = reflect.TypeFor[tooShort]()
	defer func() { mirrors["server.watchEventBestPath"] = saved }()
	var logs bgptest.Buffer
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	sp := startSpeaker(t, port, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if sp.native != nil || sp.Stats().Source != SourceWatchEvent {
		t.Fatalf("source %s with a wrong layout", sp.Stats().Source)
	}
	if !strings.Contains(logs.String(), "using the public WatchEvent") || !strings.Contains(logs.String(), "watchEventBestPath") {
		t.Errorf("no warning naming the type:\n%s", logs.String())
	}
	got := &collect{}
	if err := sp.Watch(got, nil); err != nil {
		t.Fatal(err)
	}
	r.Connect(port)
	r.WaitEstablished()
	r.Announce("10.0.0.0/8", "65000:38")
	bgptest.WaitFor(t, 10*time.Second, func() bool { return got.has("10.0.0.0/8") }, "a best path through the fallback")
}
