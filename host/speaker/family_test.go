package speaker

import (
	"slices"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/host/event"
)

// TestFamiliesAreGoBGPs: the family names the engine checks without
// GoBGP are exactly GoBGP's.
func TestFamiliesAreGoBGPs(t *testing.T) {
	var gobgp []string
	for name := range bgp.AddressFamilyValueMap {
		gobgp = append(gobgp, name)
	}
	ours := slices.Clone(event.Families)
	slices.Sort(gobgp)
	slices.Sort(ours)
	if !slices.Equal(ours, gobgp) {
		t.Errorf("event.Families %v\nGoBGP's %v", ours, gobgp)
	}
}
