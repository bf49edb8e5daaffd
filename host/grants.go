package host

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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
}

// sandboxAllow is everything Allow may name.
var sandboxAllow = []string{"io", "os", "debug", "dofile", "loadfile"}

// grantFor merges the settings for every script with those for name.
func (o *Options) grantFor(name string) Grant {
	own := o.Grants[name]
	return Grant{
		HTTPAllow:    append(slices.Clip(o.Notify.HTTPAllow), own.HTTPAllow...),
		ExecAllow:    append(slices.Clip(o.Notify.ExecAllow), own.ExecAllow...),
		Allow:        append(slices.Clip(o.Sandbox.Allow), own.Allow...),
		RequirePaths: append(slices.Clip(o.Sandbox.RequirePaths), own.RequirePaths...),
	}
}

// sandboxKey tells whether two grants build the same sandbox: a script
// whose key changed is reloaded even if its file did not.
func (g Grant) sandboxKey() string {
	allow := slices.Clone(g.Allow)
	sort.Strings(allow)
	return strings.Join(allow, ",") + "|" + strings.Join(g.RequirePaths, ":")
}

// allowedURL reports whether raw lies under one of the allowed URLs:
// same scheme and host (port included), and a path under the allowed
// one at a "/" boundary. Dot segments are refused, since the server may
// resolve them out of the allowed path.
func allowedURL(allow []string, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, a := range allow {
		e, err := url.Parse(a)
		if err != nil || !strings.EqualFold(e.Scheme, u.Scheme) || !strings.EqualFold(e.Host, u.Host) {
			continue
		}
		ep, up := e.EscapedPath(), u.EscapedPath()
		switch {
		case ep == "" || ep == "/":
			return true
		case strings.HasSuffix(ep, "/") && strings.HasPrefix(up, ep):
			return true
		case up == ep || strings.HasPrefix(up, ep+"/"):
			return true
		}
	}
	return false
}

func (g Grant) validate() error {
	for _, a := range g.HTTPAllow {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http-allow %q: not an http:// or https:// URL with a host", a)
		}
	}
	for _, c := range g.ExecAllow {
		if !filepath.IsAbs(c) {
			return fmt.Errorf("exec-allow %q: not an absolute path", c)
		}
	}
	for _, a := range g.Allow {
		if !slices.Contains(sandboxAllow, a) {
			return fmt.Errorf("allow %q: not one of %s", a, strings.Join(sandboxAllow, ", "))
		}
	}
	for _, p := range g.RequirePaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("require-paths %q: not an absolute path", p)
		}
	}
	return nil
}

func (o *Options) validateGrants() error {
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
