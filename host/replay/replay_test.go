package replay_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/replay"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

var risFiles = []string{
	"../../../shared/data/updates.20160811.1600.gz", // AS4, IPv4 and IPv6
	"../../../shared/data/updates.20070211.0141.gz", // 2-octet AS sessions, multicast
}

// TestOfflineIsLive: a RIS file replayed offline (edbgpd test) and live
// (feeder sessions into a running edbgpd, one per collector peer) gives a
// script the same best paths in the same order.
func TestOfflineIsLive(t *testing.T) {
	for _, file := range risFiles {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := os.Stat(file); err != nil {
				t.Fatalf("the shared RIS file: %v", err)
			}
			offline := replayOffline(t, file)
			live := replayLive(t, file, len(offline))
			if dir := os.Getenv("EDBGPD_REPLAY_DUMP"); dir != "" {
				base := filepath.Join(dir, filepath.Base(file))
				os.WriteFile(base+".offline", []byte(strings.Join(offline, "\n")+"\n"), 0o644)
				os.WriteFile(base+".live", []byte(strings.Join(live, "\n")+"\n"), 0o644)
			}
			if len(offline) < 1000 {
				t.Fatalf("offline: %d best paths; the file has thousands", len(offline))
			}
			for i := range offline {
				if i >= len(live) || offline[i] != live[i] {
					got := "(nothing)"
					if i < len(live) {
						got = live[i]
					}
					t.Fatalf("best path %d of %d:\noffline %s\nlive    %s", i+1, len(offline), offline[i], got)
				}
			}
			if len(live) != len(offline) {
				t.Fatalf("live: %d best paths, offline %d", len(live), len(offline))
			}
			t.Logf("%d best paths alike", len(offline))
		})
	}
}

// sequence picks the script's SEQ lines out of a log.
func sequence(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, `msg="SEQ `); i >= 0 {
			l = l[i+len(`msg="SEQ `):]
			out = append(out, l[:strings.Index(l, `"`)])
		}
	}
	return out
}

func replayOffline(t *testing.T, file string) []string {
	logs := &bgptest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	run, err := engine.NewOffline("testdata/sequence.lua", time.Unix(0, 0), engine.OfflineOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.Offline([]string{file}, replay.Options{}, func(ev event.Event) { run.Feed(event.Line{Event: ev}) })
	run.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("offline: %d updates of %d peers in %s", st.Updates, len(st.Peers), st.Elapsed)
	return sequence(logs.String())
}

func replayLive(t *testing.T, file string, want int) []string {
	peers, err := replay.Peers([]string{file}, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scripts := t.TempDir()
	src, _ := os.ReadFile("testdata/sequence.lua")
	os.WriteFile(filepath.Join(scripts, "sequence.lua"), src, 0o644)
	port := freePort(t)
	config := fmt.Sprintf(`[global.config]
  as = 4294967294
  router-id = "192.0.2.254"
  port = %d
  local-address-list = ["127.0.0.1"]
%s
%s
[edbgpd]
  scripts = %q
  default-export-policy = "none"
`, port, replay.SelectionConfig, replay.NeighbourConfig(peers), scripts)
	path := filepath.Join(t.TempDir(), "edbgpd.toml")
	os.WriteFile(path, []byte(config), 0o644)
	logs := &bgptest.Buffer{}
	d, err := host.Start(host.Settings{ConfigFile: path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	witness := replay.NewWitness()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Speaker().WatchMarks(ctx, witness.Mark, nil); err != nil {
		t.Fatal(err)
	}
	r := replay.New(fmt.Sprintf("127.0.0.1:%d", port), replay.Options{}, witness, replay.Hooks{})
	defer r.Close()
	st, err := r.Run([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live: %d updates of %d peers in %s", st.Updates, len(st.Peers), st.Elapsed)
	bgptest.WaitFor(t, 60*time.Second, func() bool { return len(sequence(logs.String())) >= want },
		fmt.Sprintf("the script to see %d best paths", want))
	return sequence(logs.String())
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
