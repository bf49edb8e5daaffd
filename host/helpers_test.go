package host_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
	"github.com/edbgpd/edbgpd/luaapi"
)

// testLogger logs to the test output when -v, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// edbgpdConfig is bgptest.Config, shorter to write in these tests.
var edbgpdConfig = bgptest.Config

func startDaemon(t *testing.T, config string) *host.Daemon {
	t.Helper()
	d, _ := startDaemonLogged(t, config, testLogger(t))
	return d
}

// startDaemonLogs starts edbgpd with its log in a buffer, for assertions.
func startDaemonLogs(t *testing.T, config string) (*host.Daemon, *bgptest.Buffer) {
	t.Helper()
	logs := &bgptest.Buffer{}
	d, _ := startDaemonLogged(t, config, slogTo(logs))
	return d, logs
}

func startDaemonLogged(t *testing.T, config string, log *slog.Logger) (*host.Daemon, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d, path
}

// addTable puts n /24 prefixes into edbgpd's own RIB, as
// `gobgp global rib add` would.
func addTable(t *testing.T, d *host.Daemon, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		prefix := fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256)
		// An owner per 10,000 routes: that is the most one may announce.
		owner := fmt.Sprintf("table-%d", i/10_000)
		if err := d.Speaker().Announce(owner, luaapi.Route{Prefix: prefix, Nexthop: "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
