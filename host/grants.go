package host

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/notify"
	"github.com/edbgpd/edbgpd/host/sandbox"
)

// SandboxOptions widen the sandbox of every script: [edbgpd.sandbox].
type SandboxOptions struct {
	// Allow names what the sandbox leaves out but may be let in: "io",
	// "os" (the whole library but os.exit), "debug", "dofile", "loadfile".
	Allow []string `toml:"allow" yaml:"allow"`
	// RequirePaths are folders require searches after the scripts
	// folder's lib/, with the same plain module names.
	RequirePaths []string `toml:"require-paths" yaml:"require-paths"`
}

// Grant is what one script may do beyond the sandbox: [edbgpd.grants."NAME.lua"].
// It adds to [edbgpd.notify] and [edbgpd.sandbox], which hold for every script.
type Grant struct {
	HTTPAllow    []string `toml:"http-allow" yaml:"http-allow"`
	ExecAllow    []string `toml:"exec-allow" yaml:"exec-allow"`
	Allow        []string `toml:"allow" yaml:"allow"`
	RequirePaths []string `toml:"require-paths" yaml:"require-paths"`
	// MaxRoutes replaces [edbgpd] max-routes for this script (0: that
	// one; -1: no bound).
	MaxRoutes int `toml:"max-routes" yaml:"max-routes"`
}

// grantFor merges the settings for every script with those for name.
func (o *Options) grantFor(name string) Grant {
	own := o.Grants[name]
	g := Grant{
		HTTPAllow:    append(slices.Clip(o.Notify.HTTPAllow), own.HTTPAllow...),
		ExecAllow:    append(slices.Clip(o.Notify.ExecAllow), own.ExecAllow...),
		Allow:        append(slices.Clip(o.Sandbox.Allow), own.Allow...),
		RequirePaths: append(slices.Clip(o.Sandbox.RequirePaths), own.RequirePaths...),
		MaxRoutes:    own.MaxRoutes,
	}
	if g.MaxRoutes == 0 {
		g.MaxRoutes = o.MaxRoutes
	}
	return g
}

// sandbox is the part of g the script engine builds the sandbox from.
func (g Grant) sandbox() engine.Sandbox {
	return engine.Sandbox{Allow: g.Allow, RequirePaths: g.RequirePaths}
}

// notifyAllow is the part of g the notifier checks.
func (g Grant) notifyAllow() notify.Allow { return notify.Allow{HTTP: g.HTTPAllow, Exec: g.ExecAllow} }

func (g Grant) validate() error {
	if err := g.notifyAllow().Validate(); err != nil {
		return err
	}
	for _, a := range g.Allow {
		if !slices.Contains(sandbox.Grantable, a) {
			return fmt.Errorf("allow %q: not one of %s", a, strings.Join(sandbox.Grantable, ", "))
		}
	}
	for _, p := range g.RequirePaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("require-paths %q: not an absolute path", p)
		}
	}
	return checkMaxRoutes(g.MaxRoutes)
}

func checkMaxRoutes(n int) error {
	if n < -1 {
		return fmt.Errorf("max-routes %d: want a count of routes, or -1 for no bound", n)
	}
	return nil
}

func (o *Options) validateGrants() error {
	if err := checkMaxRoutes(o.MaxRoutes); err != nil {
		return fmt.Errorf("[edbgpd]: %w", err)
	}
	if err := (Grant{HTTPAllow: o.Notify.HTTPAllow, ExecAllow: o.Notify.ExecAllow}).validate(); err != nil {
		return fmt.Errorf("[edbgpd.notify]: %w", err)
	}
	if err := (Grant{Allow: o.Sandbox.Allow, RequirePaths: o.Sandbox.RequirePaths}).validate(); err != nil {
		return fmt.Errorf("[edbgpd.sandbox]: %w", err)
	}
	for name, g := range o.Grants {
		if !strings.HasSuffix(name, ".lua") || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("[edbgpd.grants.%q]: not a script file name (like \"alerts.lua\")", name)
		}
		if err := g.validate(); err != nil {
			return fmt.Errorf("[edbgpd.grants.%q]: %w", name, err)
		}
	}
	return nil
}
