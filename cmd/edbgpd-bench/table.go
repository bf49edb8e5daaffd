package main

import (
	"encoding/binary"
	"math/rand"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// table is a synthetic full table, encoded as the UPDATE messages a router
// would send: prefixes grouped by shared attribute sets, packed up to the
// 4096-byte message limit.
type table struct {
	prefixes []netip.Prefix
	updates  []byte // the announcements, back to back
	messages int
}

// attrSet is one set of path attributes shared by many prefixes.
type attrSet struct {
	asPath []uint32
	comms  []uint32
	large  []*bgp.LargeCommunity
	med    uint32
}

// genTable makes n distinct prefixes, deterministic for a seed. Lengths:
// about 60% /24, the rest /16-/23; AS paths of 1-8 hops; 0-6 communities;
// every eighth set with a large community; about n/20 attribute sets,
// shared with a skew as in real tables.
func genTable(n int, v6 bool, seed int64) *table {
	r := rand.New(rand.NewSource(seed))
	t := &table{}
	seen := make(map[netip.Prefix]bool, n)
	for len(t.prefixes) < n {
		bits := 24
		if r.Intn(10) >= 6 {
			bits = 16 + r.Intn(8)
		}
		var p netip.Prefix
		if v6 {
			var a [16]byte
			binary.BigEndian.PutUint32(a[:], 0x20010000|uint32(r.Intn(1<<16)))
			binary.BigEndian.PutUint32(a[4:], r.Uint32())
			p = netip.PrefixFrom(netip.AddrFrom16(a), 32+bits/2*2).Masked()
		} else {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], uint32(1+r.Intn(223))<<24|uint32(r.Intn(1<<24)))
			p = netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()
		}
		if !seen[p] {
			seen[p] = true
			t.prefixes = append(t.prefixes, p)
		}
	}
	sets := make([]attrSet, max(1, n/20))
	for i := range sets {
		s := &sets[i]
		s.asPath = []uint32{65002} // the feeder's own AS first
		for h := 1 + r.Intn(8); h > 1; h-- {
			s.asPath = append(s.asPath, uint32(1000+r.Intn(400000)))
		}
		for c := r.Intn(7); c > 0; c-- {
			s.comms = append(s.comms, uint32(r.Intn(65000)+1)<<16|uint32(r.Intn(1000)))
		}
		if i%8 == 0 {
			s.large = []*bgp.LargeCommunity{{ASN: uint32(r.Intn(400000) + 1), LocalData1: uint32(r.Intn(100)), LocalData2: uint32(r.Intn(100))}}
		}
		s.med = uint32(r.Intn(1000))
	}
	// Assign prefixes to sets with a skew (a few sets carry many prefixes).
	groups := make([][]netip.Prefix, len(sets))
	for _, p := range t.prefixes {
		i := int(float64(len(sets)) * r.Float64() * r.Float64())
		groups[i] = append(groups[i], p)
	}
	for i, g := range groups {
		if len(g) > 0 {
			t.encode(sets[i], g, v6)
		}
	}
	// The sentinel goes last: once it is in the RIB (or a script saw it),
	// everything before it has been handled too.
	t.updates = append(t.updates, updateFor(attrSet{asPath: []uint32{65002}}, []netip.Prefix{sentinel(v6)}, v6)...)
	t.messages++
	return t
}

// sentinel is the prefix sent after the table.
func sentinel(v6 bool) netip.Prefix {
	if v6 {
		return netip.MustParsePrefix("2001:db8:ffff::/48")
	}
	return netip.MustParsePrefix("192.0.2.254/32")
}

func (s attrSet) attrs(nexthop string) []bgp.PathAttributeInterface {
	a := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, s.asPath)}),
		bgp.NewPathAttributeMultiExitDisc(s.med),
	}
	if nexthop != "" {
		a = append(a, bgp.NewPathAttributeNextHop(nexthop))
	}
	if len(s.comms) > 0 {
		a = append(a, bgp.NewPathAttributeCommunities(s.comms))
	}
	if len(s.large) > 0 {
		a = append(a, bgp.NewPathAttributeLargeCommunities(s.large))
	}
	return a
}

// maxNLRI keeps each UPDATE well under 4096 bytes.
const maxNLRI = 400

func (t *table) encode(s attrSet, prefixes []netip.Prefix, v6 bool) {
	for len(prefixes) > 0 {
		n := min(len(prefixes), maxNLRI)
		if v6 {
			n = min(n, 200)
		}
		t.updates = append(t.updates, updateFor(s, prefixes[:n], v6)...)
		t.messages++
		prefixes = prefixes[n:]
	}
}

func updateFor(s attrSet, prefixes []netip.Prefix, v6 bool) []byte {
	var msg *bgp.BGPMessage
	if v6 {
		nlri := make([]bgp.AddrPrefixInterface, len(prefixes))
		for i, p := range prefixes {
			nlri[i] = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
		}
		attrs := append(s.attrs(""), bgp.NewPathAttributeMpReachNLRI("2001:db8::2", nlri))
		msg = bgp.NewBGPUpdateMessage(nil, attrs, nil)
	} else {
		nlri := make([]*bgp.IPAddrPrefix, len(prefixes))
		for i, p := range prefixes {
			nlri[i] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		}
		msg = bgp.NewBGPUpdateMessage(nil, s.attrs("127.0.0.2"), nlri)
	}
	b, err := msg.Serialize()
	if err != nil {
		panic(err)
	}
	return b
}

// churnUpdate re-announces one prefix with MED = send time in µs (mod
// 1e9), so a script can tell event-to-handler latency.
func churnUpdate(p netip.Prefix, us uint32) []byte {
	s := attrSet{asPath: []uint32{65002, 64999}, med: us}
	return updateFor(s, []netip.Prefix{p}, p.Addr().Is6())
}

func withdrawUpdate(p netip.Prefix) []byte {
	msg := bgp.NewBGPUpdateMessage([]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())}, nil, nil)
	b, err := msg.Serialize()
	if err != nil {
		panic(err)
	}
	return b
}
