package host_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

func TestNotify(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
		w.Write([]byte("thanks"))
	}))
	defer srv.Close()
	defer close(slow)

	scripts := t.TempDir()
	os.WriteFile(filepath.Join(scripts, "n.lua"), []byte(`local bgp = require("bgp")
local function report(what) return function(r) bgp.log("info", what, r.ok, r.status, r.output, r.error) end end
function on_load()
  assert(bgp.http_post("`+srv.URL+`/hook", {event = "test", n = 1}, report("POST")))
  assert(bgp.http_post("`+srv.URL+`/slow", {}, report("SLOW")))
  assert(bgp.exec("/bin/echo", {"hello", "world"}, report("EXEC")))
  local ok, why = bgp.http_post("https://elsewhere.example/", {})
  bgp.log("info", "REFUSED", ok, why)
  ok, why = bgp.exec("/bin/sh", {"-c", "reboot"})
  bgp.log("info", "REFUSED", ok, why)
end
`), 0o644)
	port := bgptest.FreePort(t)
	cfg := edbgpdConfig(port, scripts) + `
  [edbgpd.notify]
    http-allow = ["` + srv.URL + `/"]
    exec-allow = ["/bin/echo"]
    timeout = "300ms"
`
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	os.WriteFile(path, []byte(cfg), 0o644)
	logs := &bgptest.Buffer{}
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: slogTo(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	for _, want := range []string{
		`"POST true 200 thanks "`,
		`"EXEC true 0 hello world\n "`,
		`"SLOW false 0  timed out after 300ms"`,
		`"REFUSED nil URL https://elsewhere.example/ is not allowed ([edbgpd.notify] or [edbgpd.grants.\"n.lua\"] http-allow)"`,
		`"REFUSED nil command /bin/sh is not allowed ([edbgpd.notify] or [edbgpd.grants.\"n.lua\"] exec-allow)"`,
	} {
		bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), want) }, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0]["event"] != "test" || got[0]["n"] != 1.0 {
		t.Errorf("webhook got %v", got)
	}
}

// TestNotifyGrants: a grant lets one script, not the others, reach a URL;
// a redirect must stay on the allow-list; a SIGHUP changes allow-lists
// and reloads the scripts whose sandbox it changes.
func TestNotifyGrants(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	offList := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a redirect reached an URL off the allow-list: %s", r.URL)
	}))
	defer offList.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a/out":
			http.Redirect(w, r, offList.URL+"/steal", http.StatusFound)
		case "/a/in":
			http.Redirect(w, r, "/a/hook", http.StatusTemporaryRedirect) // keeps the POST body
		default:
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			hooks = append(hooks, r.URL.Path+" "+string(b))
			mu.Unlock()
		}
	}))
	defer srv.Close()

	scripts := t.TempDir()
	post := func(name, path string) string {
		return `bgp.http_post("` + srv.URL + path + `", {from = "` + name + `"}, function(r) bgp.log("info", "` + name + path + `", r.ok, r.status) end)`
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(scripts, name), []byte("local bgp = require(\"bgp\")\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.lua", `function on_load()
  assert(`+post("a", "/a/hook")+`)
  assert(`+post("a", "/a/out")+`)
  assert(`+post("a", "/a/in")+`)
end
`)
	write("b.lua", `function on_load() bgp.log("info", "B", `+post("b", "/a/hook")+`) end
`)
	// c.lua needs io, d.lua runs with or without os.
	write("c.lua", `local open = io.open
function on_load() bgp.log("info", "C LOADED") end
`)
	write("d.lua", `function on_load() bgp.log("info", "D GETENV", os.getenv ~= nil) end
`)
	base := edbgpdConfig(bgptest.FreePort(t), scripts) + `
  [edbgpd.grants."a.lua"]
    http-allow = ["` + srv.URL + `/a/"]
`
	logs := &bgptest.Buffer{}
	d, path := startDaemonLogged(t, base, slogTo(logs))
	for _, want := range []string{
		`"a/a/hook true 200"`,
		`"a/a/out false 302"`, // the redirect leaves the allow-list: its answer is the result
		`"a/a/in true 200"`,
		`"B nil URL ` + srv.URL + `/a/hook is not allowed`,
		`c.lua:2: attempt to index a non-table object(nil) with key 'open'`,
		`"D GETENV false"`,
	} {
		bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), want) }, want)
	}

	// SIGHUP: b.lua may post everywhere below srv, c.lua gets io and
	// d.lua os. c.lua and d.lua reload because their sandbox changed;
	// b.lua, unchanged, does not, so it is saved to run on_load again.
	cfg := base + `
  [edbgpd.notify]
    http-allow = ["` + srv.URL + `/"]
  [edbgpd.grants."c.lua"]
    allow = ["io"]
  [edbgpd.grants."d.lua"]
    allow = ["os"]
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	write("b.lua", `function on_load() bgp.log("info", "B", `+post("b", "/b/hook")+`) end -- saved again
`)
	for _, want := range []string{`"B true"`, `"b/b/hook true 200"`, `"C LOADED"`, `"D GETENV true"`} {
		bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), want) }, want)
	}
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(hooks, "\n")
	if got != `/a/hook {"from":"a"}`+"\n"+`/a/hook {"from":"a"}`+"\n"+`/b/hook {"from":"b"}` {
		t.Errorf("webhooks got:\n%s", got)
	}
}
