package host_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// eventLogger writes one line per event with every field a script reads.
const eventLogger = `local bgp = require("bgp")
function on_best_path(ev)
  if ev.prefix ~= "10.0.0.0/8" then return end
  bgp.log("info", "BEST", ev.type, ev.prefix, ev.family, tostring(ev.withdrawal), ev.nexthop,
    "[" .. ev.as_path_string .. "]", #ev.as_path, ev.as_path[1], ev.origin, ev.med, ev.local_pref,
    table.concat(ev.communities, ","), table.concat(ev.large_communities, ","),
    table.concat(ev.extended_communities, ","), ev.peer.address, ev.peer.asn, ev.peer.router_id,
    ev.timestamp > 0)
end
function on_peer_state(ev)
  bgp.log("info", "PEER", ev.type, ev.peer.address, ev.peer.asn, tostring(ev.old_state), "->", ev.state, "reason=" .. tostring(ev.reason))
end
`

// TestEventsCarryEveryField: every field and the down reason, from each
// event source: GoBGP's own watcher (auto) and the public WatchEvent
// (the fallback, forced by the config).
func TestEventsCarryEveryField(t *testing.T) {
	for _, source := range []string{"auto", "watch-event"} {
		t.Run(source, func(t *testing.T) { eventsCarryEveryField(t, source) })
	}
}

func eventsCarryEveryField(t *testing.T, source string) {
	scripts := t.TempDir()
	if err := os.WriteFile(filepath.Join(scripts, "events.lua"), []byte(eventLogger), 0o644); err != nil {
		t.Fatal(err)
	}
	port := bgptest.FreePort(t)
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	cfg := strings.Replace(edbgpdConfig(port, scripts, "127.0.0.2"), "[edbgpd]\n", "[edbgpd]\n  event-source = \""+source+"\"\n", 1)
	os.WriteFile(path, []byte(cfg), 0o644)
	logs := &bgptest.Buffer{}
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	want := map[string]string{"auto": "native", "watch-event": "watch-event"}[source]
	if got := d.Status().Events.Source; got != want {
		t.Fatalf("event source %q, want %q", got, want)
	}
	r.Connect(port)
	r.WaitEstablished()

	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_EGP),
		bgp.NewPathAttributeNextHop("127.0.0.2"),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64512, 4200000000})}),
		bgp.NewPathAttributeMultiExitDisc(42),
		bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 38, 65535<<16 | 666}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{{ASN: 4200000000, LocalData1: 1, LocalData2: 2}}),
		bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65000, 100, true)}),
	}
	p, _ := apiutil.NewPath(bgp.NewIPAddrPrefix(8, "10.0.0.0"), false, attrs, time.Now())
	if _, err := r.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
		t.Fatal(err)
	}
	// The router prepends its AS on eBGP; an eBGP path has no LOCAL_PREF.
	wantBest := "BEST best_path 10.0.0.0/8 ipv4-unicast false 127.0.0.2 [65002 64512 4200000000] 3 65002 egp 42 nil " +
		"65000:38,65535:666 4200000000:1:2 rt:65000:100 127.0.0.2 65002 127.0.0.2 true"
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), wantBest) }, "best path event:\n"+wantBest)

	r.Withdraw("10.0.0.0/8")
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "BEST best_path 10.0.0.0/8 ipv4-unicast true") }, "withdrawal event")

	r.Reset()
	wantDown := `PEER peer_state 127.0.0.2 65002 established -> idle reason=notification-received code 6(cease) subcode 4(administrative reset)`
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), wantDown) }, "peer down event:\n"+wantDown)
	for _, want := range []string{"PEER peer_state 127.0.0.2 65002 openconfirm -> established reason=nil", "-> active"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in\n%s", want, logs.String())
		}
	}
}

func TestIPv6BestPaths(t *testing.T) {
	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "v6.lua"), []byte(`local bgp = require("bgp")
function on_best_path(ev)
  bgp.log("info", "BEST", ev.prefix, ev.family, ev.nexthop, table.concat(ev.communities, ","), ev.peer.address == "")
end
`), 0o644)
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	os.WriteFile(path, []byte(`[global.config]
  as = 65001
  router-id = "127.0.0.1"
  port = -1
[edbgpd]
  scripts = "`+scripts+`"
  [[edbgpd.routes]]
    prefix = "::/0"
  [[edbgpd.routes]]
    prefix = "2001:db8::/32"
    nexthop = "2001:db8::1"
    communities = ["65000:6"]
`), 0o644)
	logs := &bgptest.Buffer{}
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	for _, want := range []string{"BEST ::/0 ipv6-unicast :: ", "BEST 2001:db8::/32 ipv6-unicast 2001:db8::1 65000:6 true"} {
		bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), want) }, want)
	}
}
