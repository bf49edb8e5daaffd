package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/notify"
	"github.com/edbgpd/edbgpd/host/sink"
	"github.com/edbgpd/edbgpd/host/speaker"
	"github.com/edbgpd/edbgpd/host/units"
	"github.com/edbgpd/edbgpd/luaapi"
)

// Options are edbgpd's own settings: the [edbgpd] section of the config
// file, overridden by command-line flags.
type Options struct {
	Scripts     string   `toml:"scripts" yaml:"scripts"`
	Data        string   `toml:"data" yaml:"data"`
	CallTimeout Duration `toml:"call-timeout" yaml:"call-timeout"`
	LoadTimeout Duration `toml:"load-timeout" yaml:"load-timeout"`
	// QuarantineAfter: failed calls in a row (handlers, timers,
	// callbacks) before a script is unloaded (0: the default, 20; -1: never).
	QuarantineAfter int `toml:"quarantine-after" yaml:"quarantine-after"`
	// MaxEntries: Lua table entries a script may hold (0: the default,
	// 10,000,000; -1: no bound).
	MaxEntries int `toml:"max-table-entries" yaml:"max-table-entries"`
	// MaxMemory: what a script may hold, strings included ("" the
	// default, 1GiB; "off": no bound).
	MaxMemory Size `toml:"max-memory" yaml:"max-memory"`
	// MaxRoutes: routes a script may have announced at once (0: the
	// default, 10,000; -1: no bound). A grant may set its own.
	MaxRoutes int `toml:"max-routes" yaml:"max-routes"`
	// QueueLimit: events a script may have queued in order before its best
	// paths are coalesced per prefix (0: the default, 16384).
	QueueLimit int `toml:"queue-limit" yaml:"queue-limit"`
	// DefaultExportPolicy is what every peer is sent until a script says
	// otherwise (full, default-only, none or a policy-definition): with
	// "default-only", a script that fails to load cannot leave peers on
	// the full table.
	DefaultExportPolicy string `toml:"default-export-policy" yaml:"default-export-policy"`
	// GCPercent and MemoryLimit set Go's garbage collector for the whole
	// process, as GOGC and GOMEMLIMIT would (0: leave them as they are).
	GCPercent   int        `toml:"gc-percent" yaml:"gc-percent"`
	MemoryLimit units.Size `toml:"memory-limit" yaml:"memory-limit"`
	// EventSource: "auto" (the default: GoBGP's own watcher when it is
	// the one edbgpd was built for) or "watch-event" (GoBGP's public
	// WatchEvent, always).
	EventSource string                 `toml:"event-source" yaml:"event-source"`
	Routes      []speaker.Route        `toml:"routes" yaml:"routes"`
	Notify      notify.Options         `toml:"notify" yaml:"notify"`
	Throttle    engine.ThrottleOptions `toml:"throttle" yaml:"throttle"`
	Kafka       sink.KafkaOptions      `toml:"kafka" yaml:"kafka"`
	Sandbox     SandboxOptions         `toml:"sandbox" yaml:"sandbox"`
	// Grants: what one script may do beyond Notify and Sandbox, by file name.
	Grants map[string]Grant `toml:"grants" yaml:"grants"`
}

// Duration and Size are the config's units (see package units).
type (
	Duration = units.Duration
	Size     = units.Size
)

// Limits returns the script limits, defaults filled in.
func (o *Options) Limits() engine.Limits {
	l := engine.DefaultLimits
	if o.CallTimeout > 0 {
		l.CallTimeout = time.Duration(o.CallTimeout)
	}
	if o.LoadTimeout > 0 {
		l.LoadTimeout = time.Duration(o.LoadTimeout)
	}
	switch {
	case o.MaxEntries > 0:
		l.MaxEntries = o.MaxEntries
	case o.MaxEntries < 0:
		l.MaxEntries = 0
	}
	switch {
	case o.MaxMemory > 0:
		l.MaxMemory = int64(o.MaxMemory)
	case o.MaxMemory < 0:
		l.MaxMemory = 0
	}
	switch {
	case o.QuarantineAfter > 0:
		l.QuarantineAfter = o.QuarantineAfter
	case o.QuarantineAfter < 0:
		l.QuarantineAfter = 0
	}
	if o.QueueLimit > 0 {
		l.QueueLimit = o.QueueLimit
	}
	return l
}

// Config is one reading of the config file.
type Config struct {
	BGP     *speaker.Config // GoBGP's part, read by GoBGP's own reader
	Options Options         // the [edbgpd] section
}

// LoadConfig reads a gobgpd config file (toml, yaml or json) with GoBGP's
// own reader. An [edbgpd] section (toml, yaml) is taken out first, since
// GoBGP rejects keys it does not know, and read here. Errors name the file.
func LoadConfig(path, typ string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	typ = configType(path, typ)
	if err := checkWhole(raw, typ); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	gobgpPart, ownPart := splitConfig(raw, typ)
	c := &Config{}
	if len(bytes.TrimSpace(ownPart)) > 0 {
		var doc struct {
			Edbgpd Options `toml:"edbgpd" yaml:"edbgpd"`
		}
		switch typ {
		case "toml":
			d := toml.NewDecoder(bytes.NewReader(ownPart))
			d.DisallowUnknownFields()
			err = d.Decode(&doc)
			var de *toml.DecodeError
			var sm *toml.StrictMissingError
			if errors.As(err, &de) {
				row, col := de.Position()
				err = fmt.Errorf("line %d column %d: %s", row, col, de.Error())
			} else if errors.As(err, &sm) {
				var msgs []string
				for _, e := range sm.Errors {
					row, _ := e.Position()
					msgs = append(msgs, fmt.Sprintf("line %d: unknown key %q", row, strings.Join(e.Key(), ".")))
				}
				err = errors.New(strings.Join(msgs, "; "))
			}
		case "yaml", "yml":
			d := yaml.NewDecoder(bytes.NewReader(ownPart))
			d.KnownFields(true)
			err = d.Decode(&doc)
		}
		if err != nil {
			return nil, fmt.Errorf("config %s: [edbgpd] section: %w", path, err)
		}
		c.Options = doc.Edbgpd
	}
	if err := c.Options.validate(); err != nil {
		return nil, fmt.Errorf("config %s: [edbgpd] section: %w", path, err)
	}
	c.BGP, err = speaker.ReadConfig(path, typ, gobgpPart)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := speaker.CheckConfig(c.BGP, c.Options.DefaultExportPolicy); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// checkWhole parses the whole file once for syntax errors, with their
// line (GoBGP's reader drops it), and refuses a file with no global
// section: an empty or cut-short file applied on SIGHUP would remove
// every neighbour.
func checkWhole(raw []byte, typ string) error {
	var top map[string]any
	var err error
	switch typ {
	case "toml":
		err = toml.Unmarshal(raw, &top)
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			err = fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
	case "yaml", "yml":
		err = yaml.Unmarshal(raw, &top)
	case "json":
		err = json.Unmarshal(raw, &top)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte("\n"))
			err = fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err != nil {
		return err
	}
	if _, ok := top["global"]; !ok {
		return errors.New("no global section ([global.config] with as and router-id): an empty or cut-short file? " +
			"Refused, since applying it would remove every neighbour")
	}
	return nil
}

func configType(path, typ string) string {
	switch ext := strings.TrimPrefix(filepath.Ext(path), "."); ext {
	case "toml", "yaml", "yml", "json":
		return ext
	}
	if typ == "" {
		return "toml"
	}
	return typ
}

var tomlHeader = regexp.MustCompile(`^\s*\[\[?\s*([^\]\s]+)\s*\]\]?`)

// splitConfig separates the edbgpd section from the rest. Both halves keep
// every line in place (others blanked) so line numbers in errors hold.
func splitConfig(raw []byte, typ string) (gobgp, own []byte) {
	lines := strings.SplitAfter(string(raw), "\n")
	var g, o strings.Builder
	inOwn := false
	for _, line := range lines {
		switch typ {
		case "toml":
			if m := tomlHeader.FindStringSubmatch(line); m != nil {
				name := strings.Trim(m[1], `"`)
				inOwn = name == "edbgpd" || strings.HasPrefix(name, "edbgpd.")
			}
		case "yaml", "yml":
			trimmed := strings.TrimSpace(line)
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") && line[0] != ' ' && line[0] != '\t' {
				inOwn = strings.HasPrefix(line, "edbgpd:")
			}
		}
		blank := ""
		if strings.HasSuffix(line, "\n") {
			blank = "\n"
		}
		if inOwn {
			o.WriteString(line)
			g.WriteString(blank)
		} else {
			g.WriteString(line)
			o.WriteString(blank)
		}
	}
	return []byte(g.String()), []byte(o.String())
}

func (o *Options) validate() error {
	if o.GCPercent < -1 || (o.GCPercent == -1 && o.MemoryLimit <= 0) {
		return fmt.Errorf("gc-percent %d: want a percentage, or -1 (off) with a memory-limit", o.GCPercent)
	}
	switch o.EventSource {
	case "", "auto", speaker.SourceWatchEvent:
	default:
		return fmt.Errorf("event-source %q: want auto or watch-event", o.EventSource)
	}
	for i, r := range o.Routes {
		if err := r.Check(); err != nil {
			return fmt.Errorf("routes[%d] (%s): %w", i, r.Prefix, err)
		}
	}
	if err := o.validateGrants(); err != nil {
		return err
	}
	if len(o.Kafka.Brokers) > 0 {
		if err := o.Kafka.Check(); err != nil {
			return fmt.Errorf("[edbgpd.kafka]: %w", err)
		}
	}
	return nil
}

// optionsInForce is the [edbgpd] section in force: SIGHUP replaces it,
// the notifier and the script engine read it per call.
type optionsInForce struct{ p atomic.Pointer[Options] }

func (o *optionsInForce) load() *Options   { return o.p.Load() }
func (o *optionsInForce) store(x *Options) { o.p.Store(x) }

// OfflineOptions are the engine's options for `edbgpd test -f CONFIG`:
// the config's limits, grants and notify allow-lists.
func (o *Options) OfflineOptions() engine.OfflineOptions {
	limits := o.Limits()
	return engine.OfflineOptions{
		Limits:  &limits,
		Sandbox: func(name string) engine.Sandbox { return o.grantFor(name).sandbox() },
		CheckNotify: func(script string, n luaapi.Notification) error {
			return o.grantFor(script).notifyAllow().Check(script, n)
		},
	}
}
