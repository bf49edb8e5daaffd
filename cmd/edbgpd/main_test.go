package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edbgpd-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "edbgpd")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBadConfigAtStart(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"toml syntax", "[global.config]\n as = \n", "edbgpd.toml"},
		{"unknown key", "[global.config]\n  as = 1\n  router-id = \"192.0.2.1\"\n  colour = 3\n", "colour"},
		{"no router id", "[global.config]\n  as = 1\n", "router-id"},
		{"empty", "", "no global section"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edbgpd.toml")
			os.WriteFile(path, []byte(tc.config), 0o644)
			out, err := exec.Command(binary, "-f", path, "--api-hosts", "").CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want code 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), path) || !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not name %s and %q:\n%s", path, tc.want, out)
			}
			// -d says the same.
			out, err = exec.Command(binary, "-d", "-f", path).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
				t.Errorf("-d: %v\n%s", err, out)
			}
		})
	}
}

func TestDaemonSignalsAndAPI(t *testing.T) {
	bgpPort, apiPort, metricsPort := bgptest.FreePort(t), bgptest.FreePort(t), bgptest.FreePort(t)
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	os.Mkdir(scripts, 0o755)
	os.WriteFile(filepath.Join(scripts, "hello.lua"), []byte("function on_best_path(ev) end\n"), 0o644)
	metrics := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	good := bgptest.Config(bgpPort, scripts, "127.0.0.2")
	path := filepath.Join(dir, "edbgpd.toml")
	os.WriteFile(path, []byte(good), 0o644)
	var logs bgptest.Buffer
	record := filepath.Join(dir, "events.jsonl")
	cmd := exec.Command(binary, "-f", path, "--api-hosts", fmt.Sprintf("127.0.0.1:%d", apiPort), "--record", record, "--metrics-addr", metrics)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Log(logs.String())
		}
	})

	notes := &bgptest.Notes{}
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", notes)
	r2 := bgptest.NewRouter(t, 65003, "127.0.0.3", bgptest.Quiet{}) // a neighbour SIGHUP adds
	r.Connect(bgpPort)
	r.WaitEstablished()
	bgptest.WaitFor(t, 10*time.Second, func() bool { return r.Received()["0.0.0.0/0"] }, "the originated default route")

	// edbgpd status, from the shell.
	out, err := exec.Command(binary, "status", "--metrics-addr", metrics).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^hello\.lua +loaded +[0-9a-f]{12} `).Match(out) {
		t.Errorf("edbgpd status: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "status", "--metrics-addr", "127.0.0.1:1").CombinedOutput(); err == nil || !strings.Contains(string(out), "is edbgpd running") {
		t.Errorf("edbgpd status without a daemon: %v\n%s", err, out)
	}

	// GoBGP's gRPC API, as the gobgp CLI uses it.
	conn, err := grpc.Dial(fmt.Sprintf("127.0.0.1:%d", apiPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := api.NewGobgpApiClient(conn)
	stream, err := client.ListPeer(context.Background(), &api.ListPeerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil || res.Peer.State.SessionState != api.PeerState_ESTABLISHED {
		t.Fatalf("ListPeer over gRPC: %v %v", res, err)
	}

	// AddPathStream, the call behind `gobgp mrt inject global`, closed
	// properly: every path arrives.
	const injected = 2000
	ps, err := client.AddPathStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < injected; i += 100 {
		batch := make([]*api.Path, 0, 100)
		for j := i; j < i+100; j++ {
			batch = append(batch, bgptest.Path(t, fmt.Sprintf("100.%d.%d.0/24", 64+j/256, j%256), "192.0.2.9", nil, false))
		}
		if err := ps.Send(&api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: batch}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ps.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	lp, err := client.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := lp.Recv(); err != nil {
			break
		}
		n++
	}
	if n != injected+1 {
		t.Errorf("global RIB has %d prefixes after streaming %d (+ the default route)", n, injected)
	}

	// SIGHUP with a broken file: logged, still running, session untouched.
	os.WriteFile(path, []byte("[global.config]\n as = \n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "config not reloaded") }, "the reload error")
	if !strings.Contains(logs.String(), path) {
		t.Errorf("reload error does not name %s", path)
	}
	if r.State() != "ESTABLISHED" {
		t.Fatalf("session is %s after a bad SIGHUP", r.State())
	}
	// SIGHUP with a good file adding a neighbour and a route: GoBGP's
	// UpdateConfig applies the difference; the unchanged session stays up.
	better := bgptest.Config(bgpPort, scripts, "127.0.0.2", "127.0.0.3")
	os.WriteFile(path, []byte(better+"  [[edbgpd.routes]]\n    prefix = \"198.51.100.0/24\"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r.Received()["198.51.100.0/24"] }, "the route added by SIGHUP")
	r2.Connect(bgpPort)
	r2.WaitEstablished()
	bgptest.WaitFor(t, 5*time.Second, func() bool { return r2.Received()["198.51.100.0/24"] }, "the new neighbour to get the table")
	if r.State() != "ESTABLISHED" || notes.Count() != 0 {
		t.Fatalf("the unchanged session was reset by a good SIGHUP")
	}

	// SIGTERM: Cease to the peer, exit 0.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	bgptest.WaitFor(t, 5*time.Second, func() bool { return notes.Received("6/3") }, "Cease (peer deconfigured) at the router")

	// --record wrote every event in the format edbgpd test replays.
	rec, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rec)), "\n")
	var seen []string
	for i, l := range lines {
		ev, err := event.Unmarshal([]byte(l))
		if err != nil {
			t.Fatalf("%s:%d: %v", record, i+1, err)
		}
		if e := ev.PeerState; e != nil {
			seen = append(seen, e.Peer.Address+" "+e.State)
		}
		if e := ev.BestPath; e != nil {
			seen = append(seen, e.Prefix)
		}
	}
	for _, want := range []string{"127.0.0.2 established", "0.0.0.0/0", "198.51.100.0/24"} {
		if !slices.Contains(seen, want) {
			t.Errorf("record lacks %q (%d events)", want, len(lines))
		}
	}
}
