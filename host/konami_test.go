package host_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

var konamiCode = bgptest.KonamiCode

func installKonami(t *testing.T, dir string) {
	t.Helper()
	src, err := os.ReadFile("../scripts/konami.lua")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "konami.lua"), src, 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectExactly waits for want to arrive and then checks that nothing else
// does for a while: "default only" is about what does not arrive.
func expectExactly(t *testing.T, r *bgptest.Router, want int) {
	t.Helper()
	bgptest.WaitFor(t, 15*time.Second, func() bool { return len(r.Received()) >= want }, "routes to arrive")
	settle := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(settle) {
		if got := r.Received(); len(got) != want {
			t.Fatalf("router %s has %d routes from edbgpd, want exactly %d", r.Addr, len(got), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectDefaultOnly checks that r has the default route and nothing else.
func expectDefaultOnly(t *testing.T, r *bgptest.Router) {
	t.Helper()
	expectExactly(t, r, 1)
	if !r.Received()["0.0.0.0/0"] {
		t.Fatalf("router %s did not get the default route: %v", r.Addr, r.Received())
	}
}

func resetAndWait(t *testing.T, r *bgptest.Router) {
	t.Helper()
	r.Reset()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" }, "session to go down")
	r.WaitEstablished()
}

func TestKonamiEndToEnd(t *testing.T) {
	const table = 1000
	scripts := t.TempDir()
	installKonami(t, scripts)
	port := bgptest.FreePort(t)
	r1 := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	r2 := bgptest.NewRouter(t, 65003, "127.0.0.3", bgptest.Quiet{})
	d := startDaemon(t, edbgpdConfig(port, scripts, "127.0.0.2", "127.0.0.3"))
	addTable(t, d, table)
	r1.Connect(port)
	r2.Connect(port)
	r1.WaitEstablished()
	r2.WaitEstablished()

	// Before anything: default route only, for both.
	expectDefaultOnly(t, r1)
	expectDefaultOnly(t, r2)

	wrongOrder := slices.Clone(konamiCode)
	wrongOrder[6], wrongOrder[7] = wrongOrder[7], wrongOrder[6] // right before left
	missing := slices.Concat(konamiCode[:2], konamiCode[3:])    // one "up" short

	for _, tc := range []struct {
		name   string
		sender *bgptest.Router
		steps  []string
		want   int
	}{
		{"wrong order", r1, wrongOrder, 1},
		{"missing step", r1, missing, 1},
		{"code from another peer", r2, konamiCode, 1},
		{"code", r1, konamiCode, table + 1},
		{"plain reset after unlock", r1, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.sender.Play(d.Speaker(), tc.steps)
			resetAndWait(t, r1)
			if tc.want == 1 {
				expectDefaultOnly(t, r1)
			} else {
				expectExactly(t, r1, tc.want)
			}
		})
	}
}
