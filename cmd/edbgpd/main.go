// Command edbgpd is gobgpd with Lua scripts on its best-path and peer-state
// event stream. It takes gobgpd's config file and main flags.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/jessevdk/go-flags"

	"github.com/edbgpd/edbgpd/host"
)

type options struct {
	ConfigFile      string `short:"f" long:"config-file" description:"gobgpd config file (toml, yaml, json)" required:"true"`
	ConfigType      string `short:"t" long:"config-type" description:"config type (toml, yaml, json)" default:"toml"`
	APIHosts        string `long:"api-hosts" description:"where GoBGP's gRPC API listens (empty: off)" default:":50051"`
	LogLevel        string `short:"l" long:"log-level" description:"debug, info, warn or error" default:"info"`
	LogJSON         bool   `long:"log-json" description:"log as JSON lines instead of text"`
	Scripts         string `long:"scripts" description:"folder of Lua scripts (overrides [edbgpd] scripts)"`
	GracefulRestart bool   `short:"r" long:"graceful-restart" description:"flag restart-state in graceful-restart capability"`
	Dry             bool   `short:"d" long:"dry-run" description:"check the config file and exit"`
	Record          string `long:"record" description:"also write every event to this file as JSON lines (for edbgpd test)"`
	PProfHost       string `long:"pprof-host" description:"serve Go's pprof profiles on this address (e.g. localhost:6060); off when empty"`
	MetricsAddr     string `long:"metrics-addr" description:"serve Prometheus /metrics and /status (JSON) on this address (e.g. 127.0.0.1:9179); off when empty"`
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "test" {
		return runTest(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "check" {
		return runCheck(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "init" {
		return runInit(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "replay" {
		return runReplay(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "status" {
		return runStatus(args[1:], os.Stdout, os.Stderr)
	}
	var o options
	p := flags.NewParser(&o, flags.HelpFlag|flags.PassDoubleDash|flags.PrintErrors)
	p.Usage = "[OPTIONS]\n\nThe daemon. Subcommands, each with --help: test, replay, check, init, status."
	if _, err := p.ParseArgs(args); err != nil {
		if fe, ok := err.(*flags.Error); ok && fe.Type == flags.ErrHelp {
			return 0
		}
		return 2
	}
	level, err := parseLevel(o.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edbgpd:", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if o.LogJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(h)
	slog.SetDefault(log)

	if o.Dry {
		if _, err := host.LoadConfig(o.ConfigFile, o.ConfigType); err != nil {
			log.Error("bad config", "err", err)
			return 1
		}
		log.Info("config ok", "config", o.ConfigFile)
		return 0
	}

	if o.PProfHost != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { log.Error("pprof server", "err", http.ListenAndServe(o.PProfHost, mux)) }()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	d, err := host.Start(host.Settings{
		ConfigFile:      o.ConfigFile,
		ConfigType:      o.ConfigType,
		APIHosts:        o.APIHosts,
		Scripts:         o.Scripts,
		GracefulRestart: o.GracefulRestart,
		Logger:          log,
		GoBGPLogLevel:   level,
		RecordFile:      o.Record,
	})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if o.MetricsAddr != "" {
		m, err := d.ServeMetrics(o.MetricsAddr)
		if err != nil {
			log.Error("cannot serve metrics", "addr", o.MetricsAddr, "err", err)
			d.Stop()
			return 1
		}
		defer m.Close()
	}
	for s := range sig {
		if s == syscall.SIGHUP {
			log.Info("SIGHUP: reloading config")
			if err := d.Reload(); err != nil {
				log.Error("config not reloaded", "err", err)
			}
			continue
		}
		log.Info("stopping", "signal", s.String())
		d.Stop()
		log.Info("stopped")
		return 0
	}
	return 0
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}
