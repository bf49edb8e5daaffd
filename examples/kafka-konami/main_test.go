package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// TestKonamiFromKafka runs the example as the README says, on loopback:
// edbgpd with edbgpd.toml streams to a Kafka-protocol broker, this
// consumer reads it and unlocks a router that sent the code.
func TestKonamiFromKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bgp-events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	src, err := os.ReadFile("edbgpd.toml")
	if err != nil {
		t.Fatal(err)
	}
	port, apiPort := bgptest.FreePort(t), bgptest.FreePort(t)
	cfg := strings.Replace(string(src), "port = 1790", fmt.Sprint("port = ", port), 1)
	cfg = strings.Replace(cfg, `brokers = ["127.0.0.1:9092"]`, fmt.Sprintf("brokers = [%q]", cluster.ListenAddrs()[0]), 1)
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	os.WriteFile(path, []byte(cfg), 0o644)

	logs := &bgptest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{}) // before the daemon: see bgptest.NewRouter
	api := fmt.Sprintf("127.0.0.1:%d", apiPort)
	d, err := host.Start(host.Settings{ConfigFile: path, APIHosts: api, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{brokers: cluster.ListenAddrs()[0], topic: "bgp-events", group: "test", api: api,
			router: "127.0.0.1", set: "konami-unlocked", grace: 500 * time.Millisecond}, log)
	}()
	t.Cleanup(func() { cancel(); <-done })

	const full = 4 // the default route and three more, from edbgpd.toml
	expect := func(n int) {
		t.Helper()
		bgptest.WaitFor(t, 15*time.Second, func() bool { return len(r.Received()) == n }, fmt.Sprintf("%d routes at the router", n))
		if !r.Received()["0.0.0.0/0"] {
			t.Fatalf("no default route: %v", r.Received())
		}
	}
	reset := func() {
		t.Helper()
		r.Reset()
		bgptest.WaitFor(t, 5*time.Second, func() bool { return r.State() != "ESTABLISHED" }, "the session to go down")
		r.WaitEstablished()
	}
	r.Connect(port)
	r.WaitEstablished()
	expect(1)

	// A wrong code: still the default route only.
	wrong := append([]string{}, bgptest.KonamiCode...)
	wrong[6], wrong[7] = wrong[7], wrong[6]
	r.Play(d.Speaker(), wrong)
	reset()
	bgptest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "msg=konami peer=127.0.0.2 unlocked=false") }, "the consumer's decision")
	expect(1)

	r.Play(d.Speaker(), bgptest.KonamiCode)
	reset()
	expect(full)
	if !strings.Contains(logs.String(), "msg=konami peer=127.0.0.2 unlocked=true") {
		t.Error("the consumer did not log the unlock")
	}

	// A plain reset locks it again.
	reset()
	expect(1)
}
