package luaapi

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// bgp.json_encode(value) -> string | nil, reason
func jsonEncode(L *lua.LState) int {
	b, err := encodeJSONIn(L, L.CheckAny(1))
	if err != nil {
		return fail(L, fmt.Errorf("json_encode: %w", err))
	}
	L.Push(lua.LString(b))
	return 1
}

// bgp.json_decode(string) -> value | nil, reason
func jsonDecode(L *lua.LState) int {
	v, err := DecodeJSON(L, []byte(L.CheckString(1)))
	if err != nil {
		return fail(L, fmt.Errorf("json_decode: %w", err))
	}
	L.Push(v)
	return 1
}

// ParsePrefixOrAddr reads "10.0.0.0/8", or an address as a host prefix.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkPrefix(L *lua.LState, n int, fn string) netip.Prefix {
	p, err := ParsePrefixOrAddr(L.CheckString(n))
	if err != nil {
		L.ArgError(n, fn+": not a prefix or address: "+L.CheckString(n))
	}
	return p
}

// bgp.parse_prefix(s) -> {address, length, family} | nil, reason
func parsePrefix(L *lua.LState) int {
	p, err := ParsePrefixOrAddr(L.CheckString(1))
	if err != nil {
		return fail(L, err)
	}
	t := L.CreateTable(0, 4)
	t.RawSetString("address", lua.LString(p.Addr().String()))
	t.RawSetString("length", lua.LNumber(p.Bits()))
	t.RawSetString("prefix", lua.LString(p.String()))
	fam := "ipv6"
	if p.Addr().Is4() {
		fam = "ipv4"
	}
	t.RawSetString("family", lua.LString(fam))
	L.Push(t)
	return 1
}

// bgp.prefix_contains(outer, inner) -> bool: inner (prefix or address)
// lies within outer.
func prefixContains(L *lua.LState) int {
	outer := checkPrefix(L, 1, "bgp.prefix_contains")
	inner := checkPrefix(L, 2, "bgp.prefix_contains")
	L.Push(lua.LBool(outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())))
	return 1
}

// bgp.prefix_overlap(a, b) -> bool
func prefixOverlap(L *lua.LState) int {
	a := checkPrefix(L, 1, "bgp.prefix_overlap")
	b := checkPrefix(L, 2, "bgp.prefix_overlap")
	L.Push(lua.LBool(a.Overlaps(b)))
	return 1
}

// ParseCommunity reads "65000:38" (or a well-known name) into ASN, value.
func ParseCommunity(s string) (uint16, uint16, error) {
	switch s {
	case "no-export":
		return 0xffff, 0xff01, nil
	case "no-advertise":
		return 0xffff, 0xff02, nil
	case "no-export-subconfed":
		return 0xffff, 0xff03, nil
	case "blackhole":
		return 0xffff, 0x029a, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("community %q: want ASN:VALUE, both 0-65535", s)
	}
	return uint16(h), uint16(l), nil
}

// bgp.parse_community(s) -> asn, value | nil, reason
func parseCommunity(L *lua.LState) int {
	h, l, err := ParseCommunity(L.CheckString(1))
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LNumber(h))
	L.Push(lua.LNumber(l))
	return 2
}

// bgp.format_community(asn, value) -> "asn:value"
func formatCommunity(L *lua.LState) int {
	h, l := L.CheckInt(1), L.CheckInt(2)
	if h < 0 || h > 0xffff {
		L.ArgError(1, "bgp.format_community: asn must be 0-65535")
	}
	if l < 0 || l > 0xffff {
		L.ArgError(2, "bgp.format_community: value must be 0-65535")
	}
	L.Push(lua.LString(fmt.Sprintf("%d:%d", h, l)))
	return 1
}

// bgp.now() -> Unix seconds, with fractions, on the script's clock
func (m *Module) now(L *lua.LState) int {
	L.Push(unixSeconds(m.Runtime.Now()))
	return 1
}
