package event

import (
	"fmt"
	"slices"
)

// Families are the address families events name, in GoBGP's words
// ("ipv4-unicast"). The GoBGP side tests that the list is GoBGP's own, so
// the parts that must not import GoBGP can check a family name here.
var Families = []string{
	"ipv4-unicast", "ipv6-unicast", "ipv4-multicast", "ipv6-multicast",
	"ipv4-labelled-unicast", "ipv6-labelled-unicast",
	"l3vpn-ipv4-unicast", "l3vpn-ipv6-unicast", "l3vpn-ipv4-multicast", "l3vpn-ipv6-multicast",
	"l2vpn-vpls", "l2vpn-evpn", "rtc", "ipv4-encap", "ipv6-encap",
	"ipv4-flowspec", "l3vpn-ipv4-flowspec", "ipv6-flowspec", "l3vpn-ipv6-flowspec", "l2vpn-flowspec",
	"opaque", "ls", "ipv4-srpolicy", "ipv6-srpolicy", "ipv4-mup", "ipv6-mup",
}

// CheckFamily refuses a family name that no event can carry.
func CheckFamily(name string) error {
	if !slices.Contains(Families, name) {
		return fmt.Errorf("unknown family %q (GoBGP's names: ipv4-unicast, ipv6-unicast, l3vpn-ipv4-unicast, ...)", name)
	}
	return nil
}
