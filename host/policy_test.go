package host_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// labPolicy is a policy-definition of the config file that a script can
// name in set_export_policy.
const labPolicy = `
[[defined-sets.prefix-sets]]
  prefix-set-name = "lab"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "172.16.1.0/24"
[[policy-definitions]]
  name = "lab-only"
  [[policy-definitions.statements]]
    name = "lab"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "lab"
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
  [[policy-definitions.statements]]
    name = "rest"
    [policy-definitions.statements.actions]
      route-disposition = "reject-route"
`

func TestExportPolicies(t *testing.T) {
	const table = 300
	port := bgptest.FreePort(t)
	scripts := t.TempDir()
	config := edbgpdConfig(port, scripts, "127.0.0.2") + labPolicy
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	os.WriteFile(path, []byte(config), 0o644)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	r2 := bgptest.NewRouter(t, 65003, "127.0.0.3", bgptest.Quiet{}) // joins later
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	addTable(t, d, table)
	r.Connect(port)
	r.WaitEstablished()
	expectExactly(t, r, table+1) // no script, no policy: the full table

	for _, tc := range []struct {
		policy string
		want   int
	}{
		{"none", 0},
		{"lab-only", 1},
		{"default-only", 1},
		{"full", table + 1},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			if err := d.Speaker().SetExportPolicy("127.0.0.2", tc.policy); err != nil {
				t.Fatal(err)
			}
			resetAndWait(t, r)
			expectExactly(t, r, tc.want)
			if tc.policy == "lab-only" && !r.Received()["172.16.1.0/24"] {
				t.Errorf("lab-only sent %v", r.Received())
			}
		})
	}
	for _, bad := range []string{"no-such-policy", ""} {
		if err := d.Speaker().SetExportPolicy("127.0.0.2", bad); err == nil {
			t.Errorf("policy %q accepted", bad)
		}
	}
	if err := d.Speaker().SetExportPolicy("not-an-address", "full"); err == nil {
		t.Error("peer not-an-address accepted")
	}

	// A peer added to the config later gets the default a script chose,
	// from its first session on.
	t.Run("peer added by SIGHUP", func(t *testing.T) {
		if err := d.Speaker().SetDefaultExportPolicy("default-only"); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, []byte(edbgpdConfig(port, scripts, "127.0.0.2", "127.0.0.3")+labPolicy), 0o644)
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
		r2.Connect(port)
		r2.WaitEstablished()
		expectDefaultOnly(t, r2)
		// The peer a script set to full keeps it through the reload.
		if got := len(r.Received()); got != table+1 || r.State() != "ESTABLISHED" {
			t.Errorf("127.0.0.2 has %d routes, state %s after the reload", got, r.State())
		}
	})
}

// TestExportPolicyTakesEffectAtOnce: an established peer's received table
// follows a policy change without the peer doing anything: routes the new
// policy adds arrive by a soft reset out (no session reset), routes it takes
// away go (edbgpd resets the session, GoBGP v3 having no other way).
func TestExportPolicyTakesEffectAtOnce(t *testing.T) {
	const table = 200
	port := bgptest.FreePort(t)
	notes := &bgptest.Notes{}
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", notes)
	d := startDaemon(t, edbgpdConfig(port, t.TempDir(), "127.0.0.2"))
	addTable(t, d, table)
	r.Connect(port)
	r.WaitEstablished()
	expectExactly(t, r, table+1)

	// A dry run first: nothing changes at the router.
	for _, tc := range []struct {
		policy          string
		add, withdrawal int
	}{{"full", 0, 0}, {"default-only", 0, table}, {"none", 0, table + 1}} {
		add, withdraw, err := d.Speaker().PreviewExportPolicy("127.0.0.2", tc.policy)
		if err != nil || len(add) != tc.add || len(withdraw) != tc.withdrawal || slices.Contains(withdraw, "0.0.0.0/0") != (tc.policy == "none") {
			t.Errorf("preview %s: add %d withdraw %d (%v), want %d and %d", tc.policy, len(add), len(withdraw), err, tc.add, tc.withdrawal)
		}
	}
	if _, _, err := d.Speaker().PreviewExportPolicy("127.0.0.2", "lab-only"); err == nil {
		t.Error("preview of a named policy did not say it cannot")
	}
	expectExactly(t, r, table+1)

	if err := d.Speaker().SetExportPolicy("127.0.0.2", "default-only"); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 20*time.Second, func() bool { return r.State() == "ESTABLISHED" && len(r.Received()) == 1 }, "full -> default-only at the router")
	expectDefaultOnly(t, r)

	if add, withdraw, err := d.Speaker().PreviewExportPolicy("127.0.0.2", "full"); err != nil || len(add) != table || len(withdraw) != 0 {
		t.Errorf("preview back to full: add %d withdraw %d (%v), want %d and 0", len(add), len(withdraw), err, table)
	}
	resets := notes.Count()
	if err := d.Speaker().SetExportPolicy("127.0.0.2", "full"); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 10*time.Second, func() bool { return len(r.Received()) == table+1 }, "default-only -> full at the router")
	if notes.Count() != resets {
		t.Error("the session was reset for a policy change that only adds routes")
	}
}

func TestImportPolicy(t *testing.T) {
	port := bgptest.FreePort(t)
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d := startDaemon(t, edbgpdConfig(port, t.TempDir(), "127.0.0.2")+labPolicy)
	r.Connect(port)
	r.WaitEstablished()
	sent := []string{"10.0.0.0/8", "172.16.1.0/24", "198.51.100.0/24"}
	for _, p := range sent {
		r.Announce(p)
	}
	accepted := func() []string {
		var got []string
		for _, p := range sent {
			if bp, _ := d.Speaker().BestPath(p); bp != nil {
				got = append(got, p)
			}
		}
		return got
	}
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"full", sent},
		{"none", nil},
		{"lab-only", []string{"172.16.1.0/24"}},
		{"full", sent},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			if err := d.Speaker().SetImportPolicy("127.0.0.2", tc.policy); err != nil {
				t.Fatal(err)
			}
			bgptest.WaitFor(t, 5*time.Second, func() bool { return slices.Equal(accepted(), tc.want) },
				fmt.Sprintf("edbgpd to accept %v from the peer", tc.want))
			if p, err := d.Speaker().Peer("127.0.0.2"); err != nil {
				t.Error(err)
			} else if p.ImportPolicy != tc.policy || p.ExportPolicy != "full" {
				t.Errorf("peer shows import %q export %q, want %q and full", p.ImportPolicy, p.ExportPolicy, tc.policy)
			}
		})
	}
	// Scripts steer GoBGP's own policy engine through its defined sets.
	t.Run("defined set", func(t *testing.T) {
		if err := d.Speaker().SetImportPolicy("127.0.0.2", "lab-only"); err != nil {
			t.Fatal(err)
		}
		if err := d.Speaker().DefinedSet("add", "prefix", "lab", []string{"198.51.100.0/24 24..32"}); err != nil {
			t.Fatal(err)
		}
		d.Speaker().ResetPeer("127.0.0.2", "soft-in")
		bgptest.WaitFor(t, 5*time.Second, func() bool { return slices.Equal(accepted(), []string{"172.16.1.0/24", "198.51.100.0/24"}) }, "the added prefix-set entry to apply")
		if err := d.Speaker().DefinedSet("remove", "prefix", "lab", []string{"198.51.100.0/24 24..32"}); err != nil {
			t.Fatal(err)
		}
		d.Speaker().ResetPeer("127.0.0.2", "soft-in")
		bgptest.WaitFor(t, 5*time.Second, func() bool { return slices.Equal(accepted(), []string{"172.16.1.0/24"}) }, "the removed entry to apply")
		if err := d.Speaker().DefinedSet("add", "prefix", "lab", []string{"198.51.100.0/24 8..16"}); err == nil {
			t.Error("a mask range shorter than the prefix was accepted")
		}
	})
	// The export side is untouched: the router still gets the full table.
	if got := r.Received(); !got["0.0.0.0/0"] {
		t.Errorf("router lost the default route: %v", got)
	}
}

// TestWithdrawWithoutReset: routes learned from a peer are withdrawn from
// another peer by a policy change, without resetting anyone's session, and
// the bystanders keep everything.
func TestWithdrawWithoutReset(t *testing.T) {
	const table = 100
	port := bgptest.FreePort(t)
	customerNotes, upstreamNotes, bystanderNotes := &bgptest.Notes{}, &bgptest.Notes{}, &bgptest.Notes{}
	customer := bgptest.NewRouter(t, 65002, "127.0.0.2", customerNotes)
	upstream := bgptest.NewRouter(t, 65003, "127.0.0.3", upstreamNotes)
	bystander := bgptest.NewRouter(t, 65004, "127.0.0.4", bystanderNotes)
	d := startDaemon(t, edbgpdConfig(port, t.TempDir(), "127.0.0.2", "127.0.0.3", "127.0.0.4"))
	for _, r := range []*bgptest.Router{customer, upstream, bystander} {
		r.Connect(port)
	}
	for _, r := range []*bgptest.Router{customer, upstream, bystander} {
		r.WaitEstablished()
	}
	for i := 0; i < table; i++ {
		upstream.Announce(fmt.Sprintf("198.18.%d.0/24", i))
	}
	expectExactly(t, customer, table+1)
	expectExactly(t, bystander, table+1)

	if err := d.Speaker().SetExportPolicy("127.0.0.2", "default-only"); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { return len(customer.Received()) == 1 }, "the withdrawals at the customer")
	expectDefaultOnly(t, customer)
	expectExactly(t, bystander, table+1)
	if lc := receivedLargeCommunities(bystander, "198.18.7.0/24"); len(lc) != 0 {
		t.Errorf("the bystander got edbgpd's marker: %v", lc)
	}
	if got := upstream.Received(); len(got) != 1 {
		t.Errorf("upstream got %d routes (its own back?), want the default route only", len(got))
	}
	for name, n := range map[string]*bgptest.Notes{"customer": customerNotes, "upstream": upstreamNotes, "bystander": bystanderNotes} {
		if n.Count() != 0 {
			t.Errorf("the %s's session was reset", name)
		}
	}
	// And back: a soft reset out, still no reset.
	if err := d.Speaker().SetExportPolicy("127.0.0.2", "full"); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { return len(customer.Received()) == table+1 }, "the full table back at the customer")
	if customerNotes.Count() != 0 {
		t.Error("the customer's session was reset")
	}
}

// TestDefaultExportPolicyFromConfig: [edbgpd] default-export-policy holds
// from the first session on, with no script at all, and a SIGHUP that
// changes it takes effect at once.
func TestDefaultExportPolicyFromConfig(t *testing.T) {
	const table = 30
	port := bgptest.FreePort(t)
	scripts := t.TempDir()
	config := func(policy string) string {
		c := edbgpdConfig(port, scripts, "127.0.0.2") + labPolicy
		if policy != "" {
			c = strings.Replace(c, "[edbgpd]\n", "[edbgpd]\n  default-export-policy = \""+policy+"\"\n", 1)
		}
		return c
	}
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	d, path := startDaemonLogged(t, config("default-only"), testLogger(t))
	addTable(t, d, table)
	r.Connect(port)
	r.WaitEstablished()
	expectDefaultOnly(t, r)

	for _, tc := range []struct {
		policy string // in the config; "" for none
		want   []string
	}{
		{"", nil}, // no default from the config: the full table
		{"lab-only", []string{"172.16.1.0/24"}},
	} {
		os.WriteFile(path, []byte(config(tc.policy)), 0o644)
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
		bgptest.WaitFor(t, 20*time.Second, func() bool {
			got := r.Received()
			if tc.want == nil {
				return len(got) == table+1
			}
			return len(got) == len(tc.want) && got[tc.want[0]]
		}, fmt.Sprintf("default-export-policy %q at the router", tc.policy))
	}
	os.WriteFile(path, []byte(config("gold")), 0o644)
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), `default-export-policy "gold"`) {
		t.Errorf("SIGHUP with an unknown default policy: %v", err)
	}
}

// TestSlowPolicyChangeIsNotCutOff: on an established peer with a big
// table a policy change takes a while (edbgpd compares what the peer is
// sent before and after); that time does not count against the
// call-timeout of the handler that asked, which goes on after the call.
func TestSlowPolicyChangeIsNotCutOff(t *testing.T) {
	const table = 20000
	port := bgptest.FreePort(t)
	scripts := t.TempDir()
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	cfg := strings.Replace(edbgpdConfig(port, scripts, "127.0.0.2"), "[edbgpd]\n", "[edbgpd]\n  call-timeout = \"50ms\"\n", 1)
	d, logs := startDaemonLogs(t, cfg)
	addTable(t, d, table)
	r.Connect(port)
	r.WaitEstablished()
	bgptest.WaitFor(t, 60*time.Second, func() bool { return len(r.Received()) == table+1 }, "the full table at the router")
	os.WriteFile(filepath.Join(scripts, "p.lua"), []byte(`local bgp = require("bgp")
bgp.after(0.01, function()
  local ok, why = bgp.set_export_policy("127.0.0.2", "default-only")
  bgp.log("info", "AFTER", ok, why)
end)
`), 0o644)
	bgptest.WaitFor(t, 60*time.Second, func() bool { return strings.Contains(logs.String(), "AFTER") }, "the timer to go on after the call")
	if !strings.Contains(logs.String(), `"AFTER true nil"`) || strings.Contains(logs.String(), "cut off") {
		t.Errorf("the call or its handler failed:\n%s", logs.String())
	}
	bgptest.WaitFor(t, 30*time.Second, func() bool { return r.State() == "ESTABLISHED" && len(r.Received()) == 1 }, "default-only at the router")
}
