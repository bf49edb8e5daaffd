package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// TestKonamiWithStockGobgpd runs examples/konami exactly as the README
// says: a stock gobgpd as the router, driven by the stock gobgp CLI.
// .ci/run installs both; elsewhere the test is skipped without them.
func TestKonamiWithStockGobgpd(t *testing.T) {
	gobgp, err1 := exec.LookPath("gobgp")
	gobgpd, err2 := exec.LookPath("gobgpd")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install the stock gobgp and gobgpd (see .ci/run)")
		}
		t.Skip("stock gobgp/gobgpd not on PATH: go install github.com/osrg/gobgp/v3/cmd/...@v3.37.0")
	}
	root, _ := filepath.Abs("../..")
	start := func(name string, args ...string) *bgptest.Buffer {
		var out bgptest.Buffer
		c := exec.Command(name, args...)
		c.Dir, c.Stdout, c.Stderr = root, &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				c.Process.Kill()
			}
			if t.Failed() {
				t.Logf("%s:\n%s", name, out.String())
			}
		})
		return &out
	}
	start(binary, "-f", "examples/konami/edbgpd.toml", "--api-hosts", "127.0.0.1:50051")
	start(gobgpd, "-f", "examples/konami/router.toml", "--api-hosts", "127.0.0.1:50052")

	adjIn := func() string {
		out, _ := exec.Command(gobgp, "-p", "50052", "neighbor", "127.0.0.1", "adj-in").CombinedOutput()
		return string(out)
	}
	bgptest.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(adjIn(), "0.0.0.0/0") }, "the default route at the router")
	time.Sleep(500 * time.Millisecond)
	if got := adjIn(); strings.Contains(got, "192.0.2.0/24") {
		t.Fatalf("router got more than the default route before the code:\n%s", got)
	}

	// The stock CLI against edbgpd's own API.
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(gobgp, append([]string{"-p", "50051"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gobgp %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := cli("neighbor"); !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "Establ") {
		t.Errorf("gobgp neighbor:\n%s", out)
	}
	cli("global", "rib", "add", "192.0.2.128/25", "community", "65000:1")
	if out := cli("global", "rib"); !strings.Contains(out, "0.0.0.0/0") || !strings.Contains(out, "192.0.2.128/25") {
		t.Errorf("gobgp global rib:\n%s", out)
	}
	cli("global", "rib", "del", "192.0.2.128/25")
	// gobgp mrt inject global: the stock CLI returns without closing its
	// stream, so it loses the tail of a dump against stock gobgpd as well
	// (about 30% of 2,000 prefixes here); the head must arrive.
	dump := filepath.Join(t.TempDir(), "rib.mrt")
	writeRibDump(t, dump, 2000)
	cli("mrt", "inject", "global", dump)
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(cli("global", "rib", "100.64.0.0/24"), "64999") }, "routes injected from MRT")
	if out := cli("global", "policy", "export"); !strings.Contains(out, "edbgpd-export-g") {
		t.Errorf("gobgp global policy export does not show edbgpd's policy:\n%s", out)
	}

	send := exec.Command("examples/konami/send-code.sh")
	send.Dir = root
	send.Env = append(os.Environ(), "PATH="+filepath.Dir(gobgp)+":"+os.Getenv("PATH"), "STEP_DELAY=0.3")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("send-code.sh: %v\n%s", err, out)
	}
	full := []string{"0.0.0.0/0", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}
	bgptest.WaitFor(t, 30*time.Second, func() bool {
		got := adjIn()
		for _, p := range full {
			if !strings.Contains(got, p) {
				return false
			}
		}
		return true
	}, "the full table at the router after the code")
}

// writeRibDump writes an MRT TABLE_DUMPv2 file, as a route collector's RIB
// dump, with n /24s from 100.64.0.0 on, each with one path from AS64999.
func writeRibDump(t *testing.T, path string, n int) {
	t.Helper()
	var out []byte
	add := func(sub mrt.MRTSubTypeTableDumpv2, body mrt.Body) {
		m, err := mrt.NewMRTMessage(uint32(time.Now().Unix()), mrt.TABLE_DUMPv2, sub, body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	add(mrt.PEER_INDEX_TABLE, mrt.NewPeerIndexTable("192.0.2.9", "", []*mrt.Peer{mrt.NewPeer("192.0.2.9", "192.0.2.9", 64999, true)}))
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64999})}),
		bgp.NewPathAttributeNextHop("192.0.2.9"),
	}
	for i := 0; i < n; i++ {
		prefix := bgp.NewIPAddrPrefix(24, fmt.Sprintf("100.%d.%d.0", 64+i/256, i%256))
		entry := mrt.NewRibEntry(0, uint32(time.Now().Unix()), 0, attrs, false)
		add(mrt.RIB_IPV4_UNICAST, mrt.NewRib(uint32(i), prefix, []*mrt.RibEntry{entry}))
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
