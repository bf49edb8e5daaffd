package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/edbgpd/edbgpd/host/metrics"
)

type statusOptions struct {
	MetricsAddr string `long:"metrics-addr" description:"the daemon's --metrics-addr" default:"127.0.0.1:9179"`
	JSON        bool   `long:"json" description:"print the daemon's JSON as it is"`
}

// runStatus is `edbgpd status`: ask a running daemon for its scripts.
func runStatus(args []string, stdout, stderr io.Writer) int {
	var o statusOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "status [--metrics-addr HOST:PORT] [--json]"
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	addr := o.MetricsAddr
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get("http://" + addr + "/status")
	if err != nil {
		fmt.Fprintf(stderr, "edbgpd status: %v (is edbgpd running with --metrics-addr %s?)\n", err, o.MetricsAddr)
		return 1
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "edbgpd status: %s: %v %s\n", addr, err, res.Status)
		return 1
	}
	if o.JSON {
		stdout.Write(body)
		return 0
	}
	var st metrics.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "edbgpd status: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "router %s: %d best-path and %d peer-state events (last seq %d), event source %s\n\n",
		st.RouterID, st.Events.BestPaths, st.Events.PeerStates, st.Events.LastSeq, orDash(st.Events.Source))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCRIPT\tSTATE\tVERSION\tSINCE\tQUEUED\tEVENTS\tERRORS\tCUT-OFFS\tLAST ERROR")
	for _, s := range st.Scripts {
		state := "loaded"
		switch {
		case s.Quarantined:
			state = "QUARANTINED"
		case !s.Loaded:
			state = "not loaded"
		}
		since := "-"
		if s.LoadedAt != nil {
			since = s.LoadedAt.Local().Format(time.DateTime)
		}
		last := "-"
		if e := s.LastError; e != nil {
			last = e.Time.Local().Format(time.TimeOnly) + " " + firstLine(e.Message)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, state, orDash(s.Version), since, s.Queued, s.Delivered, s.Errors, s.CutOffs, last)
	}
	w.Flush()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
