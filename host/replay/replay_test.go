package replay_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/replay"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

var risFiles = []string{
	bgptest.RISFile("updates.20160811.1600.gz"), // AS4, IPv4 and IPv6
	bgptest.RISFile("updates.20070211.0141.gz"), // 2-octet AS sessions, multicast
}

// TestOfflineIsLive: a RIS file replayed offline (edbgpd test) and live
// (feeder sessions into a running edbgpd, one per collector peer) gives a
// script the same best paths in the same order.
func TestOfflineIsLive(t *testing.T) {
	for _, file := range risFiles {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := os.Stat(file); err != nil {
				t.Fatalf("the RIS file: %v", err)
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
	port := bgptest.FreePort(t)
	config := bgptest.ReplayConfig(port, replay.SelectionConfig+replay.NeighbourConfig(peers), scripts)
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

// TestSpeed: at Nx, a window of the file takes its length over N.
func TestSpeed(t *testing.T) {
	from := time.Date(2016, 8, 11, 16, 1, 0, 0, time.UTC)
	o := replay.Options{Speed: 20, From: from, To: from.Add(30 * time.Second)}
	st, err := replay.Offline(risFiles[:1], o, func(event.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if st.Updates < 100 || st.Filtered == 0 {
		t.Fatalf("%d updates, %d left out", st.Updates, st.Filtered)
	}
	// The window's records span at least 29 s: at 20x, 1.45 s.
	if st.Elapsed < 1450*time.Millisecond {
		t.Fatalf("30 s of records at 20x took %s", st.Elapsed)
	}
}

func TestParse(t *testing.T) {
	speeds := []struct {
		in   string
		want float64
		err  bool
	}{{"max", 0, false}, {"", 0, false}, {"1x", 1, false}, {"10x", 10, false}, {"2.5", 2.5, false}, {"0x", 0, true}, {"fast", 0, true}, {"-1x", 0, true}}
	for _, s := range speeds {
		got, err := replay.ParseSpeed(s.in)
		if got != s.want || (err != nil) != s.err {
			t.Errorf("ParseSpeed(%q) = %v, %v", s.in, got, err)
		}
	}
	times := []struct {
		in   string
		want int64
		err  bool
	}{{"1470931200", 1470931200, false}, {"2016-08-11T16:00:00Z", 1470931200, false}, {"yesterday", 0, true}}
	for _, tt := range times {
		got, err := replay.ParseTime(tt.in)
		if (err != nil) != tt.err || err == nil && got.Unix() != tt.want {
			t.Errorf("ParseTime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// mrtRecord is a BGP4MP AS4 record of peer (AS asn) at unix second ts:
// a message, or a state change when msg is nil.
func mrtRecord(ts uint32, peer string, asn uint32, msg []byte, oldState, newState uint16) []byte {
	body := binary.BigEndian.AppendUint32(nil, asn)
	body = binary.BigEndian.AppendUint32(body, 12654)
	body = append(body, 0, 0, 0, 1)
	body = append(body, netip.MustParseAddr(peer).AsSlice()...)
	body = append(body, 193, 0, 4, 28)
	subtype := uint16(4)
	if msg == nil {
		subtype = 5
		body = binary.BigEndian.AppendUint16(body, oldState)
		body = binary.BigEndian.AppendUint16(body, newState)
	} else {
		body = append(body, msg...)
	}
	h := binary.BigEndian.AppendUint32(nil, ts)
	h = binary.BigEndian.AppendUint16(h, 16)
	h = binary.BigEndian.AppendUint16(h, subtype)
	h = binary.BigEndian.AppendUint32(h, uint32(len(body)))
	return append(h, body...)
}

func update(t *testing.T, prefix string, path ...uint32) []byte {
	m := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, path)}),
		bgp.NewPathAttributeNextHop("192.0.2.99"),
	}, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(8, strings.TrimSuffix(prefix, "/8"))})
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStateChanges: a collector peer's session that the file says went
// down is closed (its routes withdrawn, the next best chosen) and comes
// back with its next record, each event at its record's time.
func TestStateChanges(t *testing.T) {
	const t0 = 1470931200
	var file []byte
	file = append(file, mrtRecord(t0, "192.0.2.1", 65010, update(t, "10.0.0.0/8", 65010), 0, 0)...)
	file = append(file, mrtRecord(t0+1, "192.0.2.2", 65020, update(t, "10.0.0.0/8", 65020, 65030), 0, 0)...)
	file = append(file, mrtRecord(t0+10, "192.0.2.1", 65010, nil, 6, 1)...)
	file = append(file, mrtRecord(t0+20, "192.0.2.1", 65010, update(t, "10.0.0.0/8", 65010), 0, 0)...)
	path := filepath.Join(t.TempDir(), "flap.mrt")
	os.WriteFile(path, file, 0o644)

	var got []string
	st, err := replay.Offline([]string{path}, replay.Options{}, func(ev event.Event) {
		switch {
		case ev.BestPath != nil:
			got = append(got, fmt.Sprintf("+%d best %s from %s", ev.BestPath.Timestamp.Unix()-t0, ev.BestPath.Prefix, ev.BestPath.Peer.Address))
		case ev.PeerState.OldState == "established" || ev.PeerState.State == "established":
			got = append(got, fmt.Sprintf("+%d %s %s", ev.PeerState.Timestamp.Unix()-t0, ev.PeerState.Peer.Address, ev.PeerState.State))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"+0 192.0.2.1 established",
		"+0 best 10.0.0.0/8 from 192.0.2.1",
		"+1 192.0.2.2 established", // its path is longer: no best-path change
		"+10 best 10.0.0.0/8 from 192.0.2.2",
		"+10 192.0.2.1 idle",
		"+20 192.0.2.1 established",
		"+20 best 10.0.0.0/8 from 192.0.2.1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.StateChanges != 1 || st.Updates != 3 {
		t.Fatalf("stats %+v", st)
	}
}
