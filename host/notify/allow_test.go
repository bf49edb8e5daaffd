package notify

import "testing"

func TestAllowedURL(t *testing.T) {
	allow := []string{"https://hooks.example.net/bgp/", "http://127.0.0.1:8080/alert", "https://whole.example/"}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://hooks.example.net/bgp/", true},
		{"https://hooks.example.net/bgp/lost?x=1", true},
		{"https://HOOKS.example.net/bgp/a/b", true},
		{"https://hooks.example.net/bgpx", false},
		{"https://hooks.example.net/", false},
		{"http://hooks.example.net/bgp/", false},            // scheme
		{"https://hooks.example.net.evil.test/bgp/", false}, // host is not a prefix match
		{"https://hooks.example.net:8443/bgp/", false},      // port
		{"https://hooks.example.net/bgp/../admin", false},   // dot segments
		{"https://user:pw@hooks.example.net/bgp/", false},   // credentials smuggled in
		{"http://127.0.0.1:8080/alert", true},               // exact path
		{"http://127.0.0.1:8080/alert/sub", true},           // below it
		{"http://127.0.0.1:8080/alerts", false},             // not at a / boundary
		{"http://127.0.0.1/alert", false},                   // other port
		{"https://whole.example/anything/at/all", true},     // whole host
		{"/relative/path", false},                           // no host
		{"https://whole.example\x7f/", false},               // does not parse
	} {
		if got := allowedURL(allow, tc.url); got != tc.want {
			t.Errorf("allowedURL(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
