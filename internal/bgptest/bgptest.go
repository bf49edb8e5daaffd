// Package bgptest has the peers edbgpd's tests and demo talk to: GoBGP
// servers in the same process, on 127.0.0.x addresses.
package bgptest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/edbgpd/edbgpd/host/event"
)

// T is what the helpers need of a *testing.T; the demo has its own.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Router is a GoBGP in the same process: the router operators have.
type Router struct {
	*server.BgpServer
	Addr string
	// HoldTime of the session Connect sets up, in seconds; 0: 30. Tests
	// that must show a session never stalls use 9, as routers do.
	HoldTime uint64
	// IPv6 adds ipv6-unicast to the session Connect sets up.
	IPv6 bool
	t    T
}

// NewRouter starts a router with AS asn on addr, with no session yet.
// GoBGP's StartBgp writes package globals (route selection options) that
// every server in the process reads, edbgpd's own included: start all
// routers of a test before the daemon and before any session comes up
// (NewRouter, start the daemon, then Connect), or the race detector rightly
// complains. It stops when the test ends.
func NewRouter(t T, asn uint32, addr string, logger gobgplog.Logger) *Router {
	t.Helper()
	s := server.NewBgpServer(server.LoggerOption(logger))
	go s.Serve()
	if err := s.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: addr, ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopRouter(s) })
	return &Router{BgpServer: s, Addr: addr, t: t}
}

// stopRouter stops a router without racing GoBGP: StopBgp resets the
// global config that a session's receive goroutine reads for every
// UPDATE, so the sessions are taken down first (no reconnect), and Stop
// waits until none is established (GoBGP's session handler returns only
// once its receive goroutine has).
func stopRouter(s *server.BgpServer) {
	ctx := context.Background()
	established := func() (addrs []string) {
		s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.State != nil && p.State.SessionState == api.PeerState_ESTABLISHED {
				addrs = append(addrs, p.Conf.NeighborAddress)
			}
		})
		return addrs
	}
	for _, a := range established() {
		s.DisablePeer(ctx, &api.DisablePeerRequest{Address: a})
	}
	for deadline := time.Now().Add(5 * time.Second); len(established()) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling GoBGP's own peer state
	}
	s.Stop()
}

// Connect peers the router with edbgpd (AS 65001) at 127.0.0.1:edbgpdPort.
func (r *Router) Connect(edbgpdPort int) *Router {
	r.t.Helper()
	hold := r.HoldTime
	if hold == 0 {
		hold = 30
	}
	var families []*api.AfiSafi
	if r.IPv6 {
		for _, afi := range []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6} {
			families = append(families, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}})
		}
	}
	err := r.AddPeer(context.Background(), &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{LocalAddress: r.Addr, RemotePort: uint32(edbgpdPort)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, IdleHoldTimeAfterReset: 1, HoldTime: hold, KeepaliveInterval: hold / 3}},
		AfiSafis:  families,
	}})
	if err != nil {
		r.t.Fatal(err)
	}
	return r
}

// StartRouter is NewRouter and Connect, for a test whose daemon runs in
// another process.
func StartRouter(t T, asn uint32, addr string, edbgpdPort int, logger gobgplog.Logger) *Router {
	t.Helper()
	return NewRouter(t, asn, addr, logger).Connect(edbgpdPort)
}

// Uptime is when the session towards edbgpd last came up; a session
// that never dropped keeps it.
func (r *Router) Uptime() time.Time {
	var up time.Time
	r.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
		up = p.GetTimers().GetState().GetUptime().AsTime()
	})
	return up
}

// State is the session state towards edbgpd, in GoBGP API words.
func (r *Router) State() string {
	st := ""
	r.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
		st = p.GetState().GetSessionState().String()
	})
	return st
}

// WaitEstablished waits up to 20 s for the session.
func (r *Router) WaitEstablished() {
	r.t.Helper()
	WaitFor(r.t, 20*time.Second, func() bool { return r.State() == "ESTABLISHED" }, r.Addr+" established")
}

// Received lists the IPv4 prefixes the router has from edbgpd.
func (r *Router) Received() map[string]bool {
	got := map[string]bool{}
	r.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: "127.0.0.1",
		Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	}, func(d *api.Destination) { got[d.Prefix] = true })
	return got
}

// Announce sends 10.0.0.0/8 (or any prefix) with communities.
func (r *Router) Announce(prefix string, communities ...string) {
	r.t.Helper()
	if _, err := r.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: Path(r.t, prefix, r.Addr, communities, false)}); err != nil {
		r.t.Fatal(err)
	}
}

// Withdraw withdraws prefix.
func (r *Router) Withdraw(prefix string) {
	r.t.Helper()
	if err := r.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: Path(r.t, prefix, r.Addr, nil, true)}); err != nil {
		r.t.Fatal(err)
	}
}

// Reset hard-resets the session (Cease, administrative reset).
func (r *Router) Reset() {
	r.t.Helper()
	if err := r.ResetPeer(context.Background(), &api.ResetPeerRequest{Address: "127.0.0.1", Communication: "konami"}); err != nil {
		r.t.Fatal(err)
	}
}

// Path builds an IPv4 unicast path.
func Path(t T, prefix, nexthop string, communities []string, withdraw bool) *api.Path {
	t.Helper()
	_, n, err := net.ParseCIDR(prefix)
	if err != nil {
		t.Fatal(err)
	}
	ones, _ := n.Mask.Size()
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop(nexthop)}
	if len(communities) > 0 {
		cs := make([]uint32, len(communities))
		for i, c := range communities {
			if cs[i], err = parseCommunity(c); err != nil {
				t.Fatal(err)
			}
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(cs))
	}
	p, err := apiutil.NewPath(bgp.NewIPAddrPrefix(uint8(ones), n.IP.String()), withdraw, attrs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(t T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func parseCommunity(s string) (uint32, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%d:%d", &hi, &lo); err != nil {
		return 0, err
	}
	return hi<<16 | lo, nil
}

// Quiet is a GoBGP logger that says nothing.
type Quiet struct{}

func (Quiet) Panic(msg string, _ gobgplog.Fields) { panic(msg) }
func (Quiet) Fatal(msg string, _ gobgplog.Fields) { panic(msg) }
func (Quiet) Error(string, gobgplog.Fields)       {}
func (Quiet) Warn(string, gobgplog.Fields)        {}
func (Quiet) Info(string, gobgplog.Fields)        {}
func (Quiet) Debug(string, gobgplog.Fields)       {}
func (Quiet) SetLevel(gobgplog.LogLevel)          {}
func (Quiet) GetLevel() gobgplog.LogLevel         { return gobgplog.ErrorLevel }

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may give a port just closed again: two ports asked
		// for before either is bound must differ.
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// handedOut are the ports FreePort has returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Buffer collects output (logs, a process's stderr) for assertions; safe
// for concurrent writes and reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Notes is a GoBGP logger that records the NOTIFICATIONs its router
// receives, as "code/subcode".
type Notes struct {
	Quiet
	mu    sync.Mutex
	notes []string
}

func (l *Notes) Warn(msg string, f gobgplog.Fields) {
	if msg == "received notification" {
		l.mu.Lock()
		l.notes = append(l.notes, fmt.Sprintf("%v/%v", f["Code"], f["Subcode"]))
		l.mu.Unlock()
	}
}

// Received tells whether a NOTIFICATION code/subcode arrived.
func (l *Notes) Received(note string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.notes {
		if n == note {
			return true
		}
	}
	return false
}

// Count is the number of NOTIFICATIONs received.
func (l *Notes) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.notes)
}

// Config is a gobgpd config for edbgpd (AS 65001) on 127.0.0.1:port, with
// the routers as passive neighbours (AS 65002, 65003, ... in order: they
// connect to edbgpd), scripts from the folder, and a default route.
func Config(port int, scripts string, routers ...string) string {
	c := fmt.Sprintf(`[global.config]
  as = 65001
  router-id = "127.0.0.1"
  port = %d
  local-address-list = ["127.0.0.1"]
`, port)
	for i, r := range routers {
		c += fmt.Sprintf(`
[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
    local-address = "127.0.0.1"
  [neighbors.timers.config]
    connect-retry = 1
    idle-hold-time-after-reset = 1
`, r, 65002+i)
	}
	c += fmt.Sprintf(`
[edbgpd]
  scripts = %q
  [[edbgpd.routes]]
    prefix = "0.0.0.0/0"
`, scripts)
	return c
}

// KonamiCode is up up down down left right left right B A as communities
// on 10.0.0.0/8, with a withdrawal ("") wherever a direction repeats and
// at the end.
var KonamiCode = []string{"65000:38", "", "65000:38", "65000:40", "", "65000:40",
	"65000:37", "65000:39", "65000:37", "65000:39", "65000:66", "65000:65", ""}

// Play sends steps for 10.0.0.0/8 (a community to announce it with, or ""
// to withdraw it) and waits until edbgpd's RIB shows each one, so that
// every step is a best-path change of its own.
func (r *Router) Play(edbgpd RIB, steps []string) {
	r.t.Helper()
	for _, s := range steps {
		if s == "" {
			r.Withdraw("10.0.0.0/8")
			WaitFor(r.t, 5*time.Second, func() bool { _, ok := BestCommunities(edbgpd, "10.0.0.0/8"); return !ok }, "withdrawal of 10.0.0.0/8")
			continue
		}
		r.Announce("10.0.0.0/8", s)
		WaitFor(r.t, 5*time.Second, func() bool {
			c, ok := BestCommunities(edbgpd, "10.0.0.0/8")
			return ok && len(c) == 1 && c[0] == s
		}, "10.0.0.0/8 with "+s)
	}
}

// RIB is what the tests read of edbgpd's RIB: the speaker has it.
type RIB interface {
	BestPath(prefix string) (*event.BestPath, error)
}

// BestCommunities returns the communities of the best path for prefix in
// rib, and whether there is one.
func BestCommunities(rib RIB, prefix string) ([]string, bool) {
	p, err := rib.BestPath(prefix)
	if err != nil || p == nil {
		return nil, false
	}
	return p.Attrs().Communities, true
}

// ReplayConfig is a config for edbgpd on 127.0.0.1:port to be replayed
// to: AS 4294967294 (no collector path carries it), no export to the
// feeders, neighbours and route selection as `edbgpd replay
// --print-config` prints them (replayPart), scripts from the folder.
func ReplayConfig(port int, replayPart, scripts string) string {
	return fmt.Sprintf(`[global.config]
  as = 4294967294
  router-id = "192.0.2.254"
  port = %d
  local-address-list = ["127.0.0.1"]
%s
[edbgpd]
  scripts = %q
  default-export-policy = "none"
`, port, replayPart, scripts)
}

// RISFile is the path of one of the RIPE RIS update files in the
// repository's testdata/ris (updates.20160811.1600.gz,
// updates.20070211.0141.gz), from any package's tests.
func RISFile(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "testdata", "ris", name)
}
