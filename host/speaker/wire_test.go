package speaker

import (
	"net"
	"reflect"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/host/event"
)

// viaApiutil is the reference: GoBGP's own decoding.
func viaApiutil(t *testing.T, p *api.Path) (string, event.Attributes) {
	t.Helper()
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		t.Fatal(err)
	}
	var a event.Attributes
	setAttributes(&a, attrs)
	return nlri.String(), a
}

func viaWire(t *testing.T, p *api.Path) (string, event.Attributes) {
	t.Helper()
	prefix, ok := wirePrefix(p.Nlri)
	if !ok {
		t.Fatalf("NLRI %s not read from the wire", p.Nlri.TypeUrl)
	}
	var a event.Attributes
	if err := decodeRest(&a, decodeWire(&a, p.Pattrs)); err != nil {
		t.Fatal(err)
	}
	return prefix, a
}

// same treats nil and empty lists alike.
func same(a, b event.Attributes) bool {
	norm := func(a *event.Attributes) {
		if len(a.ASPath) == 0 {
			a.ASPath = nil
		}
		if len(a.Communities) == 0 {
			a.Communities = nil
		}
	}
	norm(&a)
	norm(&b)
	return reflect.DeepEqual(a, b)
}

// TestWireDecodingMatchesApiutil: edbgpd's own reading of the protobuf
// wire format gives what GoBGP's apiutil gives, on every path of a real
// RIPE RIS update stream and on paths with every attribute.
func TestWireDecodingMatchesApiutil(t *testing.T) {
	mp := func(prefix string, nexthop string) *bgp.PathAttributeMpReachNLRI {
		ip, n, _ := net.ParseCIDR(prefix)
		ones, _ := n.Mask.Size()
		return bgp.NewPathAttributeMpReachNLRI(nexthop, []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(uint8(ones), ip.String())})
	}
	rich := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(2),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64512, 4200000000, 3356}),
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SET, []uint32{1, 2}),
		}),
		bgp.NewPathAttributeNextHop("192.0.2.1"),
		bgp.NewPathAttributeMultiExitDisc(0),
		bgp.NewPathAttributeLocalPref(4294967295),
		bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 38, 0xffff029a, 0}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(4200000000, 1, 2), bgp.NewLargeCommunity(0, 0, 0)}),
		bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65000, 100, true)}),
	}
	var paths []*api.Path
	for _, tc := range []struct {
		nlri  bgp.AddrPrefixInterface
		attrs []bgp.PathAttributeInterface
	}{
		{bgp.NewIPAddrPrefix(24, "198.51.100.0"), rich},
		{bgp.NewIPAddrPrefix(0, "0.0.0.0"), []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("0.0.0.0")}},
		{bgp.NewIPv6AddrPrefix(32, "2001:db8::"), append([]bgp.PathAttributeInterface{mp("2001:db8::/32", "2001:db8::1")}, rich[:2]...)},
	} {
		p, err := apiutil.NewPath(tc.nlri, false, tc.attrs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ris, err := readRIS(50000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ris) < 10000 {
		t.Fatalf("%d paths from the RIS data (testdata/ris)", len(ris))
	}
	paths = append(paths, ris...)
	for i, p := range paths {
		wantPrefix, want := viaApiutil(t, p)
		gotPrefix, got := viaWire(t, p)
		if gotPrefix != wantPrefix || !same(got, want) {
			t.Fatalf("path %d:\nwire    %s %+v\napiutil %s %+v", i, gotPrefix, got, wantPrefix, want)
		}
	}
	t.Logf("%d paths decoded alike", len(paths))
}
