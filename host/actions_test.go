package host_test

import (
	"context"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/internal/bgptest"
	"github.com/edbgpd/edbgpd/luaapi"
)

// receivedCommunities is what the router got for prefix from edbgpd.
func receivedCommunities(r *bgptest.Router, prefix string) ([]uint32, bool) {
	var comms []uint32
	found := false
	r.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: "127.0.0.1",
		Family:   &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Prefixes: []*api.TableLookupPrefix{{Prefix: prefix}},
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			found = true
			attrs, _ := apiutil.GetNativePathAttributes(p)
			for _, a := range attrs {
				if c, ok := a.(*bgp.PathAttributeCommunities); ok {
					comms = c.Value
				}
			}
		}
	})
	return comms, found
}

func TestDaemonActions(t *testing.T) {
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d := startDaemon(t, edbgpdConfig(port, t.TempDir(), "127.0.0.2"))
	r.Connect(port)
	r.WaitEstablished()

	med := uint32(5)
	if err := d.Speaker().Announce("rtbh.lua", luaapi.Route{Prefix: "192.0.2.1/32", Communities: []string{"65535:666"}, MED: &med, Prepend: 2}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool {
		c, ok := receivedCommunities(r, "192.0.2.1/32")
		return ok && slices.Equal(c, []uint32{65535<<16 | 666})
	}, "the announced /32 with 65535:666 at the router")

	bp, err := d.Speaker().BestPath("192.0.2.1/32")
	if err != nil || bp == nil || !slices.Equal(bp.Attrs().Communities, []string{"65535:666"}) || bp.Attrs().MED != 5 ||
		!slices.Equal(bp.Attrs().ASPath, []uint32{65001, 65001}) {
		t.Fatalf("BestPath = %+v, %v", bp, err)
	}
	if bp, _ := d.Speaker().Lookup("192.0.2.1"); bp == nil || bp.Prefix != "192.0.2.1/32" {
		t.Errorf("Lookup(192.0.2.1) = %+v", bp)
	}
	if bp, _ := d.Speaker().Lookup("198.51.100.7"); bp == nil || bp.Prefix != "0.0.0.0/0" {
		t.Errorf("Lookup(198.51.100.7) = %+v, want the default route", bp)
	}
	if bp, _ := d.Speaker().BestPath("198.51.100.0/24"); bp != nil {
		t.Errorf("BestPath of an unknown prefix = %+v", bp)
	}

	if err := d.Speaker().Withdraw("other.lua", "192.0.2.1/32"); err == nil {
		t.Error("another script withdrew rtbh.lua's route")
	}
	if err := d.Speaker().Withdraw("rtbh.lua", "192.0.2.1/32"); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { _, ok := receivedCommunities(r, "192.0.2.1/32"); return !ok }, "the withdrawal at the router")

	p, err := d.Speaker().Peer("127.0.0.2")
	if err != nil || p.State != "established" || p.ASN != 65002 || p.Advertised < 1 || p.Uptime <= 0 {
		t.Errorf("Peer = %+v, %v", p, err)
	}
	if _, err := d.Speaker().Peer("127.0.0.9"); err == nil {
		t.Error("Peer of an unknown neighbor succeeded")
	}
	if err := d.Speaker().ResetPeer("127.0.0.2", "soft-out"); err != nil || r.State() != "ESTABLISHED" {
		t.Errorf("soft-out reset: %v, state %s", err, r.State())
	}
	if err := d.Speaker().SetPeerEnabled("127.0.0.2", false); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" }, "the session to go down on disable")
	if p, _ := d.Speaker().Peer("127.0.0.2"); !p.AdminDown {
		t.Errorf("disabled peer not admin down: %+v", p)
	}
	if err := d.Speaker().SetPeerEnabled("127.0.0.2", true); err != nil {
		t.Fatal(err)
	}
	r.WaitEstablished()
}

// receivedLargeCommunities is what the router got for prefix from edbgpd.
func receivedLargeCommunities(r *bgptest.Router, prefix string) []string {
	var out []string
	r.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_ADJ_IN, Name: "127.0.0.1",
		Family:   &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Prefixes: []*api.TableLookupPrefix{{Prefix: prefix}},
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			attrs, _ := apiutil.GetNativePathAttributes(p)
			for _, a := range attrs {
				if lc, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
					for _, v := range lc.Values {
						out = append(out, v.String())
					}
				}
			}
		}
	})
	return out
}
