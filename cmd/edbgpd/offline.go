package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/event"
)

type testOptions struct {
	Expect string  `long:"expect" description:"compare the actions with this file (JSON lines); exit 1 on a difference"`
	Start  float64 `long:"start" description:"the fake clock's start, Unix seconds" default:"1700000000"`
	Quiet  bool    `short:"q" long:"quiet" description:"do not print the script's log"`
	Config string  `short:"f" long:"config-file" description:"the daemon's config file: its [edbgpd] limits, sandbox grants and notify allow-lists apply"`
	Type   string  `short:"t" long:"config-type" description:"config file format, when the name does not say" default:"toml"`
	Args   struct {
		Script string `positional-arg-name:"SCRIPT" required:"yes"`
		Events string `positional-arg-name:"EVENTS.jsonl"`
	} `positional-args:"yes"`
}

// runTest is `edbgpd test SCRIPT [EVENTS.jsonl]`: the script in the
// daemon's runtime, fed recorded or hand-written events, with a fake clock;
// its actions are recorded and printed instead of done.
func runTest(args []string, stdout, stderr io.Writer) int {
	var o testOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "test [--expect FILE] [-f CONFIG] SCRIPT [EVENTS.jsonl]"
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if o.Quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	start := time.Unix(0, int64(o.Start*1e9))
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
	if o.Args.Events != "" {
		if err := feed(run, o.Args.Events); err != nil {
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
