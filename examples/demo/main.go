// Command demo runs the Konami demo on one machine: edbgpd with
// scripts/konami.lua and a 1,000-prefix table, and a router peer (an
// embedded GoBGP on 127.0.0.2) that sends the code and resets its session.
// It prints what the router receives before and after. Run: make demo.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
	"github.com/edbgpd/edbgpd/luaapi"
)

// demoT lets the test helpers run outside a test: a failure ends the demo.
type demoT struct{ cleanups []func() }

func (t *demoT) Helper()           { _ = t }
func (t *demoT) Cleanup(f func())  { t.cleanups = append(t.cleanups, f) }
func (t *demoT) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *demoT) Fatalf(f string, a ...any) {
	fmt.Printf("demo failed: "+f+"\n", a...)
	t.close()
	os.Exit(1)
}
func (t *demoT) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

const tableSize = 1000

func main() {
	t := &demoT{}
	defer t.close()
	dir, err := os.MkdirTemp("", "edbgpd-demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	scripts := filepath.Join(dir, "scripts")
	os.Mkdir(scripts, 0o755)
	src, err := os.ReadFile("scripts/konami.lua")
	if err != nil {
		t.Fatal("run the demo from the repository root (make demo): ", err)
	}
	os.WriteFile(filepath.Join(scripts, "konami.lua"), src, 0o644)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := filepath.Join(dir, "edbgpd.toml")
	os.WriteFile(config, []byte(bgptest.Config(port, scripts, "127.0.0.2")), 0o644)

	logLevel := slog.LevelError
	var out io.Writer = os.Stderr
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{}) // before the daemon: see bgptest.NewRouter
	d, err := host.Start(host.Settings{ConfigFile: config, Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: logLevel}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	for i := 0; i < tableSize; i++ {
		r := luaapi.Route{Prefix: fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), Nexthop: "127.0.0.1"}
		if err := d.Speaker().Announce("demo", r); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("edbgpd: AS65001 on 127.0.0.1:%d, scripts/konami.lua loaded, table: default route + %d prefixes\n", port, tableSize)

	r.Connect(port)
	r.WaitEstablished()
	show := func(when string) {
		time.Sleep(time.Second) // let the updates arrive
		got := r.Received()
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 3 {
			keys = append(keys[:3], "...")
		}
		fmt.Printf("router 127.0.0.2 %s: receives %d routes %v\n", when, len(got), keys)
	}
	show("before the code")

	fmt.Println("router sends 10.0.0.0/8 with: up up down down left right left right B A")
	for _, c := range []string{"65000:38", "", "65000:38", "65000:40", "", "65000:40",
		"65000:37", "65000:39", "65000:37", "65000:39", "65000:66", "65000:65", ""} {
		if c == "" {
			fmt.Println("  withdraw 10.0.0.0/8")
			r.Withdraw("10.0.0.0/8")
		} else {
			fmt.Println("  announce 10.0.0.0/8 community", c)
			r.Announce("10.0.0.0/8", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Println("router resets its session")
	r.Reset()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" }, "session down")
	r.WaitEstablished()
	bgptest.WaitFor(t, 10*time.Second, func() bool { return len(r.Received()) == tableSize+1 }, "the full table")
	show("after the code")

	fmt.Println("router resets again, without the code")
	r.Reset()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" }, "session down")
	r.WaitEstablished()
	show("after a plain reset")
}
