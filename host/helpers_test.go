package host_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/edbgpd/edbgpd/host"
)

// testLogger logs to the test output when -v, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// edbgpdConfig is a gobgpd config for edbgpd on 127.0.0.1:port with the
// given routers as passive neighbours (they connect to us).
func edbgpdConfig(port int, scripts string, routers ...string) string {
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

func startDaemon(t *testing.T, config string) *host.Daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// router is a second GoBGP in the test process: the peer operators have.
type router struct {
	*server.BgpServer
	addr string
	t    *testing.T
}

func startRouter(t *testing.T, asn uint32, addr string, edbgpdPort int) *router {
	t.Helper()
	s := server.NewBgpServer(server.LoggerOption(quietLogger{}))
	go s.Serve()
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: addr, ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{LocalAddress: addr, RemotePort: uint32(edbgpdPort)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, IdleHoldTimeAfterReset: 1, HoldTime: 30, KeepaliveInterval: 10}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &router{BgpServer: s, addr: addr, t: t}
}

func (r *router) state() string {
	st := ""
	r.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
		st = p.GetState().GetSessionState().String()
	})
	return st
}

func (r *router) waitEstablished() {
	r.t.Helper()
	waitFor(r.t, 20*time.Second, func() bool { return r.state() == "ESTABLISHED" }, r.addr+" established")
}

// received lists the IPv4 prefixes the router has from edbgpd.
func (r *router) received() map[string]bool {
	got := map[string]bool{}
	r.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: "127.0.0.1",
		Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	}, func(d *api.Destination) { got[d.Prefix] = true })
	return got
}

// announce sends 10.0.0.0/8 (or any prefix) with communities.
func (r *router) announce(prefix string, communities ...string) {
	r.t.Helper()
	if _, err := r.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: testPath(r.t, prefix, r.addr, communities, false)}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *router) withdraw(prefix string) {
	r.t.Helper()
	if err := r.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: testPath(r.t, prefix, r.addr, nil, true)}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *router) reset() {
	r.t.Helper()
	if err := r.ResetPeer(context.Background(), &api.ResetPeerRequest{Address: "127.0.0.1", Communication: "konami"}); err != nil {
		r.t.Fatal(err)
	}
}

func testPath(t *testing.T, prefix, nexthop string, communities []string, withdraw bool) *api.Path {
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
			if cs[i], err = host.ParseCommunity(c); err != nil {
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

// addTable puts n /24 prefixes into edbgpd's own RIB, as
// `gobgp global rib add` would.
func addTable(t *testing.T, d *host.Daemon, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		prefix := fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256)
		if _, err := d.Server.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: testPath(t, prefix, "127.0.0.1", nil, false)}); err != nil {
			t.Fatal(err)
		}
	}
}

// ribCommunities returns the communities of edbgpd's best path for prefix,
// and whether there is one.
func ribCommunities(d daemonRIB, prefix string) ([]string, bool) {
	var comms []string
	found := false
	d.Server.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Prefixes: []*api.TableLookupPrefix{{Prefix: prefix}},
	}, func(dst *api.Destination) {
		for _, p := range dst.Paths {
			if !p.Best {
				continue
			}
			found = true
			attrs, _ := apiutil.GetNativePathAttributes(p)
			for _, a := range attrs {
				if c, ok := a.(*bgp.PathAttributeCommunities); ok {
					for _, v := range c.Value {
						comms = append(comms, fmt.Sprintf("%d:%d", v>>16, v&0xffff))
					}
				}
			}
		}
	})
	return comms, found
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type daemonRIB = *host.Daemon
