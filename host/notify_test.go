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
		`SLOW false 0  Post`,
		`"REFUSED nil URL https://elsewhere.example/ is not allowed ([edbgpd.notify] http-allow)"`,
		`"REFUSED nil command /bin/sh is not allowed ([edbgpd.notify] exec-allow)"`,
	} {
		bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), want) }, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0]["event"] != "test" || got[0]["n"] != 1.0 {
		t.Errorf("webhook got %v", got)
	}
}
