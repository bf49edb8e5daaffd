package speaker

import "testing"

// TestInForce: a policy change that changes nothing is recognised, so
// that it costs nothing (scripts set their default in every on_load).
func TestInForce(t *testing.T) {
	e := &exportPolicy{modes: map[string]string{"192.0.2.2": "none", "192.0.2.3": "full"}, defaultMode: "default-only"}
	for _, tc := range []struct {
		peer, policy string
		want         bool
	}{
		{"", "default-only", true},
		{"", "full", false},
		{"192.0.2.2", "none", true},
		{"192.0.2.2", "full", false},
		{"192.0.2.3", "full", true},
		{"192.0.2.9", "default-only", false}, // on the default, but not set: setting it pins it
	} {
		if got := e.inForce(tc.peer, tc.policy); got != tc.want {
			t.Errorf("inForce(%q, %q) = %v, want %v", tc.peer, tc.policy, got, tc.want)
		}
	}
	e.defaultMode = ""
	if !e.inForce("", "full") {
		t.Error("full is the default when none is set")
	}
}
