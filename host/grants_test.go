package host

import (
	"slices"
	"strings"
	"testing"

	"github.com/edbgpd/edbgpd/luaapi"
)

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

func TestGrantsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"empty", Options{}, ""},
		{"good", Options{
			Notify:  NotifyOptions{HTTPAllow: []string{"https://h.example/"}, ExecAllow: []string{"/bin/echo"}},
			Sandbox: SandboxOptions{Allow: []string{"io"}, RequirePaths: []string{"/usr/share/lua"}},
			Grants:  map[string]Grant{"a.lua": {HTTPAllow: []string{"http://127.0.0.1:9/"}, Allow: []string{"os", "debug"}}},
		}, ""},
		{"url without scheme", Options{Notify: NotifyOptions{HTTPAllow: []string{"hooks.example.net/"}}}, `[edbgpd.notify]: http-allow "hooks.example.net/"`},
		{"ftp", Options{Notify: NotifyOptions{HTTPAllow: []string{"ftp://h.example/"}}}, `http-allow "ftp://h.example/"`},
		{"relative command", Options{Notify: NotifyOptions{ExecAllow: []string{"page"}}}, `exec-allow "page": not an absolute path`},
		{"unknown lib", Options{Sandbox: SandboxOptions{Allow: []string{"ffi"}}}, `[edbgpd.sandbox]: allow "ffi": not one of io, os, debug, dofile, loadfile`},
		{"relative require path", Options{Sandbox: SandboxOptions{RequirePaths: []string{"lua"}}}, `require-paths "lua"`},
		{"grant for a non-script", Options{Grants: map[string]Grant{"a": {}}}, `[edbgpd.grants."a"]: not a script file name`},
		{"grant with a path", Options{Grants: map[string]Grant{"x/a.lua": {}}}, `not a script file name`},
		{"bad grant", Options{Grants: map[string]Grant{"a.lua": {ExecAllow: []string{"sh"}}}}, `[edbgpd.grants."a.lua"]: exec-allow "sh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestGrantFor(t *testing.T) {
	o := Options{
		Notify:  NotifyOptions{HTTPAllow: []string{"https://all.example/"}},
		Sandbox: SandboxOptions{RequirePaths: []string{"/shared"}},
		Grants:  map[string]Grant{"a.lua": {HTTPAllow: []string{"https://a.example/"}, Allow: []string{"io"}, RequirePaths: []string{"/a"}}},
	}
	a, b := o.grantFor("a.lua"), o.grantFor("b.lua")
	if !allowedURL(a.HTTPAllow, "https://a.example/x") || !allowedURL(a.HTTPAllow, "https://all.example/x") {
		t.Errorf("a.lua: %v", a.HTTPAllow)
	}
	if allowedURL(b.HTTPAllow, "https://a.example/x") || !allowedURL(b.HTTPAllow, "https://all.example/x") {
		t.Errorf("b.lua: %v", b.HTTPAllow)
	}
	if !slices.Contains(a.Allow, "io") || slices.Contains(b.Allow, "io") {
		t.Errorf("io: a %v, b %v", a.Allow, b.Allow)
	}
	if strings.Join(a.RequirePaths, ",") != "/shared,/a" || strings.Join(b.RequirePaths, ",") != "/shared" {
		t.Errorf("require paths: a %v, b %v", a.RequirePaths, b.RequirePaths)
	}
	if a.sandboxKey() == b.sandboxKey() || b.sandboxKey() != o.grantFor("c.lua").sandboxKey() {
		t.Errorf("sandbox keys: %q %q", a.sandboxKey(), b.sandboxKey())
	}
	// grantFor must not let one script's grant leak into the shared lists.
	if len(o.Notify.HTTPAllow) != 1 || len(o.grantFor("b.lua").HTTPAllow) != 1 {
		t.Errorf("shared list changed: %v", o.Notify.HTTPAllow)
	}
}

func TestAllowedNotification(t *testing.T) {
	o := Options{
		Notify: NotifyOptions{ExecAllow: []string{"/usr/local/bin/page"}},
		Grants: map[string]Grant{"a.lua": {ExecAllow: []string{"/usr/bin/logger"}, HTTPAllow: []string{"https://a.example/"}}},
	}
	for _, tc := range []struct {
		script string
		n      luaapi.Notification
		ok     bool
	}{
		{"a.lua", luaapi.Notification{Command: "/usr/local/bin/page"}, true},
		{"b.lua", luaapi.Notification{Command: "/usr/local/bin/page"}, true},
		{"a.lua", luaapi.Notification{Command: "/usr/bin/logger"}, true},
		{"b.lua", luaapi.Notification{Command: "/usr/bin/logger"}, false},
		{"a.lua", luaapi.Notification{Command: "logger"}, false}, // exact paths only
		{"a.lua", luaapi.Notification{Command: ""}, false},
		{"a.lua", luaapi.Notification{URL: "https://a.example/x"}, true},
		{"b.lua", luaapi.Notification{URL: "https://a.example/x"}, false},
	} {
		err := allowed(o.grantFor(tc.script), tc.script, tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("%s %+v: %v, want allowed %v", tc.script, tc.n, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `[edbgpd.grants."`+tc.script+`"]`) {
			t.Errorf("%s: %v does not say where to allow it", tc.script, err)
		}
	}
}
