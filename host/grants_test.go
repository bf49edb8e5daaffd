package host

import (
	"slices"
	"strings"
	"testing"

	"github.com/edbgpd/edbgpd/host/notify"
	"github.com/edbgpd/edbgpd/luaapi"
)

func TestGrantsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // "" for valid
	}{
		{"empty", Options{}, ""},
		{"good", Options{
			Notify:  notify.Options{HTTPAllow: []string{"https://h.example/"}, ExecAllow: []string{"/bin/echo"}},
			Sandbox: SandboxOptions{Allow: []string{"io"}, RequirePaths: []string{"/usr/share/lua"}},
			Grants:  map[string]Grant{"a.lua": {HTTPAllow: []string{"http://127.0.0.1:9/"}, Allow: []string{"os", "debug"}}},
		}, ""},
		{"url without scheme", Options{Notify: notify.Options{HTTPAllow: []string{"hooks.example.net/"}}}, `[edbgpd.notify]: http-allow "hooks.example.net/"`},
		{"ftp", Options{Notify: notify.Options{HTTPAllow: []string{"ftp://h.example/"}}}, `http-allow "ftp://h.example/"`},
		{"relative command", Options{Notify: notify.Options{ExecAllow: []string{"page"}}}, `exec-allow "page": not an absolute path`},
		{"unknown lib", Options{Sandbox: SandboxOptions{Allow: []string{"ffi"}}}, `[edbgpd.sandbox]: allow "ffi": not one of io, os, debug, dofile, loadfile`},
		{"relative require path", Options{Sandbox: SandboxOptions{RequirePaths: []string{"lua"}}}, `require-paths "lua"`},
		{"grant for a non-script", Options{Grants: map[string]Grant{"a": {}}}, `[edbgpd.grants."a"]: not a script file name`},
		{"grant with a path", Options{Grants: map[string]Grant{"x/a.lua": {}}}, `not a script file name`},
		{"bad grant", Options{Grants: map[string]Grant{"a.lua": {ExecAllow: []string{"sh"}}}}, `[edbgpd.grants."a.lua"]: exec-allow "sh"`},
		{"max-routes", Options{MaxRoutes: 50_000, Grants: map[string]Grant{"a.lua": {MaxRoutes: -1}}}, ""},
		{"max-routes below -1", Options{MaxRoutes: -2}, `[edbgpd]: max-routes -2: want a count of routes, or -1 for no bound`},
		{"a grant's max-routes below -1", Options{Grants: map[string]Grant{"a.lua": {MaxRoutes: -10}}}, `[edbgpd.grants."a.lua"]: max-routes -10`},
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
		Notify:  notify.Options{HTTPAllow: []string{"https://all.example/"}},
		Sandbox: SandboxOptions{RequirePaths: []string{"/shared"}},
		Grants:  map[string]Grant{"a.lua": {HTTPAllow: []string{"https://a.example/"}, Allow: []string{"io"}, RequirePaths: []string{"/a"}}},
	}
	a, b := o.grantFor("a.lua"), o.grantFor("b.lua")
	allowed := func(g Grant, url string) bool {
		return g.notifyAllow().Check("x.lua", luaapi.Notification{URL: url}) == nil
	}
	if !allowed(a, "https://a.example/x") || !allowed(a, "https://all.example/x") {
		t.Errorf("a.lua: %v", a.HTTPAllow)
	}
	if allowed(b, "https://a.example/x") || !allowed(b, "https://all.example/x") {
		t.Errorf("b.lua: %v", b.HTTPAllow)
	}
	if !slices.Contains(a.Allow, "io") || slices.Contains(b.Allow, "io") {
		t.Errorf("io: a %v, b %v", a.Allow, b.Allow)
	}
	if strings.Join(a.RequirePaths, ",") != "/shared,/a" || strings.Join(b.RequirePaths, ",") != "/shared" {
		t.Errorf("require paths: a %v, b %v", a.RequirePaths, b.RequirePaths)
	}
	if a.sandbox().Key() == b.sandbox().Key() || b.sandbox().Key() != o.grantFor("c.lua").sandbox().Key() {
		t.Errorf("sandbox keys: %q %q", a.sandbox().Key(), b.sandbox().Key())
	}
	for _, tc := range []struct{ all, own, want int }{{0, 0, 0}, {500, 0, 500}, {500, -1, -1}, {-1, 20, 20}, {0, 7, 7}} {
		o := Options{MaxRoutes: tc.all, Grants: map[string]Grant{"a.lua": {MaxRoutes: tc.own}}}
		if got := o.grantFor("a.lua").MaxRoutes; got != tc.want {
			t.Errorf("max-routes %d, grant %d: %d, want %d", tc.all, tc.own, got, tc.want)
		}
	}
	// grantFor must not let one script's grant leak into the shared lists.
	if len(o.Notify.HTTPAllow) != 1 || len(o.grantFor("b.lua").HTTPAllow) != 1 {
		t.Errorf("shared list changed: %v", o.Notify.HTTPAllow)
	}
}

func TestAllowedNotification(t *testing.T) {
	o := Options{
		Notify: notify.Options{ExecAllow: []string{"/usr/local/bin/page"}},
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
		err := o.grantFor(tc.script).notifyAllow().Check(tc.script, tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("%s %+v: %v, want allowed %v", tc.script, tc.n, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `[edbgpd.grants."`+tc.script+`"]`) {
			t.Errorf("%s: %v does not say where to allow it", tc.script, err)
		}
	}
}
