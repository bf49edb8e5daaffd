package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/replay"
)

type testOptions struct {
	Expect string   `long:"expect" description:"compare the actions with this file (JSON lines); exit 1 on a difference"`
	Start  string   `long:"start" description:"the fake clock's start, Unix seconds (default: an MRT replay's first record, else 1700000000)"`
	Quiet  bool     `short:"q" long:"quiet" description:"do not print the script's log"`
	Config string   `short:"f" long:"config-file" description:"the daemon's config file: its [edbgpd] limits, sandbox grants and notify allow-lists apply"`
	Type   string   `short:"t" long:"config-type" description:"config file format, when the name does not say" default:"toml"`
	Peers  []string `long:"peer" description:"MRT: replay only this collector peer (address or AS number; repeat for more)"`
	From   string   `long:"from" description:"MRT: replay from this time (RFC 3339 or Unix seconds)"`
	To     string   `long:"to" description:"MRT: replay up to this time (RFC 3339 or Unix seconds)"`
	Args   struct {
		Script string   `positional-arg-name:"SCRIPT" required:"yes"`
		Files  []string `positional-arg-name:"EVENTS.jsonl | MRT files"`
	} `positional-args:"yes"`
}

// runTest is `edbgpd test SCRIPT [EVENTS.jsonl | MRT...]`: the script in
// the daemon's runtime, fed recorded or hand-written events, or real
// collector history replayed through GoBGP, with a fake clock; its
// actions are recorded and printed instead of done.
func runTest(args []string, stdout, stderr io.Writer) int {
	var o testOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "test [--expect FILE] [-f CONFIG] [--peer P] [--from T] [--to T] SCRIPT [EVENTS.jsonl | MRT FILE...]"
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	mrtFiles := len(o.Args.Files) > 0 && isMRT(o.Args.Files[0])
	if len(o.Args.Files) > 1 && !mrtFiles {
		fmt.Fprintln(stderr, "edbgpd test: several files are for MRT replay;", o.Args.Files[0], "is JSON lines")
		return 2
	}
	ropts := replay.Options{Peers: o.Peers}
	err := ropts.SetWindow(o.From, o.To)
	if err != nil {
		fmt.Fprintln(stderr, "edbgpd test:", err)
		return 2
	}
	start := time.Unix(1700000000, 0)
	if o.Start != "" {
		if start, err = replay.ParseTime(o.Start); err != nil {
			fmt.Fprintln(stderr, "edbgpd test: --start:", err)
			return 2
		}
	} else if mrtFiles {
		if start, err = replay.FirstTime(o.Args.Files, ropts); err != nil {
			fmt.Fprintln(stderr, "edbgpd test:", err)
			return 1
		}
	}
	level := slog.LevelInfo
	if o.Quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var opts engine.OfflineOptions
	if o.Config != "" {
		cfg, err := host.LoadConfig(o.Config, o.Type)
		if err != nil {
			fmt.Fprintln(stderr, "edbgpd test:", err)
			return 1
		}
		opts = cfg.Options.OfflineOptions()
	}
	run, err := engine.NewOffline(o.Args.Script, start, opts, log)
	if err != nil {
		fmt.Fprintln(stderr, "edbgpd test:", err)
		return 1
	}
	switch {
	case mrtFiles:
		ropts.Log = log.With("part", "replay")
		st, err := replay.Offline(o.Args.Files, ropts, func(ev event.Event) { run.Feed(event.Line{Event: ev}) })
		if err != nil {
			run.Close()
			fmt.Fprintln(stderr, "edbgpd test:", err)
			return 1
		}
		fmt.Fprintln(stderr, "edbgpd test:", replaySummary(st))
	case len(o.Args.Files) == 1:
		if err := feed(run, o.Args.Files[0]); err != nil {
			run.Close()
			fmt.Fprintln(stderr, "edbgpd test:", err)
			return 1
		}
	}
	run.Close()
	var out bytes.Buffer
	for _, c := range run.Actions.Calls() {
		out.WriteString(c.String() + "\n")
	}
	stdout.Write(out.Bytes())
	if o.Expect == "" {
		return 0
	}
	want, err := os.ReadFile(o.Expect)
	if err != nil {
		fmt.Fprintln(stderr, "edbgpd test:", err)
		return 1
	}
	if diff := compareLines(nonEmpty(string(want)), nonEmpty(out.String())); diff != "" {
		fmt.Fprintf(stderr, "edbgpd test: actions differ from %s:\n%s", o.Expect, diff)
		return 1
	}
	fmt.Fprintf(stderr, "edbgpd test: %s: %d actions as expected\n", o.Args.Script, len(run.Actions.Calls()))
	return 0
}

// isMRT tells an MRT file (plain, gzip or bzip2) from JSON lines, by its
// first bytes: JSON lines start with a brace, a comment or a blank.
func isMRT(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // the JSON reader will say what is wrong
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(f, b); err != nil {
		return false
	}
	switch b[0] {
	case '{', '#', ' ', '\t', '\r', '\n':
		return false
	}
	return true
}

func replaySummary(st replay.Stats) string {
	rate := 0.0
	if st.Elapsed > 0 {
		rate = float64(st.Updates) / st.Elapsed.Seconds()
	}
	s := fmt.Sprintf("replayed %d updates and %d session changes of %d collector peers in %.1fs (%.0f updates/s)",
		st.Updates, st.StateChanges, len(st.Peers), st.Elapsed.Seconds(), rate)
	if st.Filtered > 0 {
		s += fmt.Sprintf("; %d records left out by --peer/--from/--to", st.Filtered)
	}
	var skipped []string
	for k, v := range st.Skipped {
		skipped = append(skipped, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(skipped)
	if len(skipped) > 0 {
		s += "; skipped " + strings.Join(skipped, ", ")
	}
	return s
}

// feed reads the events file line by line; errors name file and line.
func feed(run *engine.Offline, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ev, err := event.Unmarshal([]byte(line))
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
		run.Feed(ev)
	}
	return sc.Err()
}

func nonEmpty(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// compareLines reports, line by line, where got departs from want.
func compareLines(want, got []string) string {
	var b strings.Builder
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "action %d:\n  want %s\n  got  %s\n", i+1, orNone(w), orNone(g))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}
