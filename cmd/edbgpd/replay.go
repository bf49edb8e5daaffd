package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jessevdk/go-flags"

	"github.com/edbgpd/edbgpd/host/replay"
)

type replayOptions struct {
	Connect     string   `long:"connect" description:"the daemon to replay to, HOST:PORT" default:"127.0.0.1:179"`
	Source      string   `long:"source" description:"the first feeder's address; the next peer's is the next address" default:"127.1.0.1"`
	Speed       string   `long:"speed" description:"max (as fast as the daemon takes it), 1x (the files' pace) or Nx" default:"max"`
	Peers       []string `long:"peer" description:"replay only this collector peer (address or AS number; repeat for more)"`
	From        string   `long:"from" description:"replay from this time (RFC 3339 or Unix seconds)"`
	To          string   `long:"to" description:"replay up to this time (RFC 3339 or Unix seconds)"`
	PrintConfig bool     `long:"print-config" description:"print the neighbours (GoBGP TOML) the daemon needs for this replay, and exit"`
	Stay        bool     `long:"stay" description:"keep the sessions up at the end, until interrupted"`
	Args        struct {
		Files []string `positional-arg-name:"MRT FILE" required:"1"`
	} `positional-args:"yes"`
}

// runReplay is `edbgpd replay`: MRT update files played live to a running
// daemon (a lab router), one BGP session per collector peer.
func runReplay(args []string, stdout, stderr io.Writer) int {
	var o replayOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "replay [--connect HOST:PORT] [--speed max|1x|Nx] [--peer P] [--from T] [--to T] [--print-config] MRT FILE..."
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	ro := replay.Options{Peers: o.Peers, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	err := ro.SetWindow(o.From, o.To)
	if err == nil {
		if ro.Speed, err = replay.ParseSpeed(o.Speed); err == nil {
			ro.FirstSource, err = netip.ParseAddr(o.Source)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "edbgpd replay:", err)
		return 2
	}
	if o.PrintConfig {
		peers, err := replay.Peers(o.Args.Files, ro)
		if err != nil {
			fmt.Fprintln(stderr, "edbgpd replay:", err)
			return 1
		}
		fmt.Fprintf(stdout, "# The daemon's part for: edbgpd replay %s\n# The best-path choice a replay can repeat (add to [global]):\n%s\n%s",
			strings.Join(o.Args.Files, " "), replay.SelectionConfig, replay.NeighbourConfig(peers))
		return 0
	}
	r := replay.New(o.Connect, ro, nil, replay.Hooks{})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	done := make(chan struct{})
	var st replay.Stats
	go func() {
		defer close(done)
		st, err = r.Run(o.Args.Files)
	}()
	select {
	case <-done:
	case s := <-stop:
		// The replay's goroutine owns the sessions: exit, and the
		// kernel closes them (the daemon sees the peers go).
		fmt.Fprintln(stderr, "edbgpd replay:", s, "- stopped mid-way")
		return 130
	}
	if err != nil {
		r.Close()
		fmt.Fprintln(stderr, "edbgpd replay:", err)
		return 1
	}
	fmt.Fprintln(stderr, "edbgpd replay:", replaySummary(st))
	if o.Stay {
		fmt.Fprintln(stderr, "edbgpd replay: sessions stay up; interrupt to end them")
		<-stop
	}
	r.Close()
	return 0
}
