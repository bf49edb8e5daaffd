// Package notify runs what scripts send out of the daemon: an HTTP POST
// to a webhook or a command, each checked against its allow-list, in the
// background, bounded in number and time.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edbgpd/edbgpd/host/units"
	"github.com/edbgpd/edbgpd/luaapi"
)

// Options are the [edbgpd.notify] section: what every script may reach.
// Nothing is allowed unless listed here or in the script's
// [edbgpd.grants."NAME.lua"]. URLs match by scheme, host and path prefix
// ("https://hooks.example.net/bgp/" allows every path below it); commands
// match exactly (absolute paths).
type Options struct {
	HTTPAllow   []string       `toml:"http-allow" yaml:"http-allow"`
	ExecAllow   []string       `toml:"exec-allow" yaml:"exec-allow"`
	Timeout     units.Duration `toml:"timeout" yaml:"timeout"`             // per notification; default 5s
	MaxInFlight int            `toml:"max-in-flight" yaml:"max-in-flight"` // default 16; more fail at once
}

// Allow is what one script may reach: its allow-lists.
type Allow struct {
	HTTP []string // URLs (prefixes at a "/")
	Exec []string // absolute paths of commands
}

const maxNotifyOutput = 4096

// maxRedirects bounds the redirects a webhook may answer with; each one
// must lead to an allowed URL too.
const maxRedirects = 5

// Notifier runs notifications in the background, bounded in number and
// time, so a slow webhook never stalls a script or BGP. The allow-lists
// and the timeout are asked for per call, so a SIGHUP changes them.
type Notifier struct {
	allow   func(script string) Allow
	timeout func() time.Duration
	slots   chan struct{}
	client  *http.Client
}

type allowKey struct{}

// New makes a notifier with at most maxInFlight notifications at once
// (0: 16). allow gives a script's allow-lists, timeout the time one
// notification may take (0: 5 s).
func New(maxInFlight int, allow func(script string) Allow, timeout func() time.Duration) *Notifier {
	n := &Notifier{allow: allow, timeout: timeout}
	if maxInFlight <= 0 {
		maxInFlight = 16
	}
	n.slots = make(chan struct{}, maxInFlight)
	n.client = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		a, _ := req.Context().Value(allowKey{}).(Allow)
		if len(via) > maxRedirects || !allowedURL(a.HTTP, req.URL.String()) {
			return http.ErrUseLastResponse // the 3xx is the answer: not ok
		}
		return nil
	}}
	return n
}

// Check refuses x unless the allow-lists have it.
func (a Allow) Check(script string, x luaapi.Notification) error {
	if x.URL != "" {
		if allowedURL(a.HTTP, x.URL) {
			return nil
		}
		return fmt.Errorf("URL %s is not allowed ([edbgpd.notify] or [edbgpd.grants.%q] http-allow)", x.URL, script)
	}
	if x.Command != "" && slices.Contains(a.Exec, x.Command) {
		return nil
	}
	return fmt.Errorf("command %s is not allowed ([edbgpd.notify] or [edbgpd.grants.%q] exec-allow)", x.Command, script)
}

// Notify implements luaapi.Actions: it checks x for script and launches
// it; done is called from another goroutine.
func (n *Notifier) Notify(script string, x luaapi.Notification, done func(luaapi.NotifyResult)) error {
	g := n.allow(script)
	if err := g.Check(script, x); err != nil {
		return err
	}
	select {
	case n.slots <- struct{}{}:
	default:
		return fmt.Errorf("%d notifications already in flight", cap(n.slots))
	}
	timeout := n.timeout()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	go func() {
		defer func() { <-n.slots }()
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), allowKey{}, g), timeout)
		defer cancel()
		var r luaapi.NotifyResult
		if x.URL != "" {
			r = n.post(ctx, x)
		} else {
			r = n.run(ctx, x)
		}
		if ctx.Err() != nil && !r.OK {
			r.Error = fmt.Sprintf("timed out after %v", timeout)
		}
		done(r)
	}()
	return nil
}

func (n *Notifier) post(ctx context.Context, x luaapi.Notification) luaapi.NotifyResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.URL, bytes.NewReader(x.Body))
	if err != nil {
		return luaapi.NotifyResult{Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "edbgpd")
	resp, err := n.client.Do(req)
	if err != nil {
		return luaapi.NotifyResult{Error: err.Error()}
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxNotifyOutput))
	r := luaapi.NotifyResult{OK: resp.StatusCode < 300, Status: resp.StatusCode, Output: string(out)}
	if !r.OK {
		r.Error = resp.Status
	}
	return r
}

func (n *Notifier) run(ctx context.Context, x luaapi.Notification) luaapi.NotifyResult {
	cmd := exec.CommandContext(ctx, x.Command, x.Args...)
	cmd.Stdin = bytes.NewReader(x.Body)
	out, err := cmd.CombinedOutput()
	if len(out) > maxNotifyOutput {
		out = out[:maxNotifyOutput]
	}
	r := luaapi.NotifyResult{OK: err == nil, Output: string(out)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Status, r.Error = ee.ExitCode(), err.Error()
	case err != nil:
		r.Status, r.Error = -1, err.Error()
	}
	return r
}

// Validate refuses lists that cannot be right: URLs that are not http or
// https with a host, commands that are not absolute paths.
func (a Allow) Validate() error {
	for _, u := range a.HTTP {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("http-allow %q: not an http:// or https:// URL with a host", u)
		}
	}
	for _, c := range a.Exec {
		if !filepath.IsAbs(c) {
			return fmt.Errorf("exec-allow %q: not an absolute path", c)
		}
	}
	return nil
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
