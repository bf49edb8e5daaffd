package host_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// TestRTBHExample runs examples/rtbh/rtbh.lua with real peers: a customer
// (127.0.0.2) triggers a blackhole, the upstream (127.0.0.3) gets the /32
// with 65535:666, and loses it when the customer withdraws the trigger.
func TestRTBHExample(t *testing.T) {
	scripts := t.TempDir()
	src, err := os.ReadFile("../examples/rtbh/rtbh.lua")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(scripts, "rtbh.lua"), src, 0o644)
	port := bgptest.FreePort(t)
	customer := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	upstream := bgptest.NewRouter(t, 65003, "127.0.0.3", bgptest.Quiet{})
	startDaemon(t, edbgpdConfig(port, scripts, "127.0.0.2", "127.0.0.3"))
	customer.Connect(port)
	upstream.Connect(port)
	customer.WaitEstablished()
	upstream.WaitEstablished()

	customer.Announce("192.0.2.66/32", "65000:666")
	blackhole := uint32(65535<<16 | 666)
	bgptest.WaitFor(t, 5*time.Second, func() bool {
		c, ok := receivedCommunities(upstream, "192.0.2.66/32")
		return ok && slices.Contains(c, blackhole)
	}, "the blackhole route at the upstream")

	customer.Withdraw("192.0.2.66/32")
	bgptest.WaitFor(t, 10*time.Second, func() bool { _, ok := receivedCommunities(upstream, "192.0.2.66/32"); return !ok },
		"the blackhole to be withdrawn from the upstream")
}
