package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

// NotifyOptions allow every script to reach out: nothing is allowed
// unless listed here or in the script's [edbgpd.grants."NAME.lua"]. URLs
// match by scheme, host and path prefix ("https://hooks.example.net/bgp/"
// allows every path below it); commands match exactly (absolute paths).
type NotifyOptions struct {
	HTTPAllow   []string `toml:"http-allow" yaml:"http-allow"`
	ExecAllow   []string `toml:"exec-allow" yaml:"exec-allow"`
	Timeout     Duration `toml:"timeout" yaml:"timeout"`             // per notification; default 5s
	MaxInFlight int      `toml:"max-in-flight" yaml:"max-in-flight"` // default 16; more fail at once
}

const maxNotifyOutput = 4096

// maxRedirects bounds the redirects a webhook may answer with; each one
// must lead to an allowed URL too.
const maxRedirects = 5

// notifier runs notifications in the background, bounded in number and
// time, so a slow webhook never stalls a script or BGP. Allow-lists and
// the timeout are read per call from options, so a SIGHUP changes them.
type notifier struct {
	options func() *Options
	slots   chan struct{}
	client  *http.Client
}

type grantKey struct{}

func newNotifier(options func() *Options) *notifier {
	n := &notifier{options: options}
	inFlight := options().Notify.MaxInFlight
	if inFlight <= 0 {
		inFlight = 16
	}
	n.slots = make(chan struct{}, inFlight)
	n.client = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		g, _ := req.Context().Value(grantKey{}).(Grant)
		if len(via) > maxRedirects || !allowedURL(g.HTTPAllow, req.URL.String()) {
			return http.ErrUseLastResponse // the 3xx is the answer: not ok
		}
		return nil
	}}
	return n
}

func (n *notifier) timeout() time.Duration {
	if t := time.Duration(n.options().Notify.Timeout); t > 0 {
		return t
	}
	return 5 * time.Second
}

func allowed(g Grant, script string, x luaapi.Notification) error {
	if x.URL != "" {
		if allowedURL(g.HTTPAllow, x.URL) {
			return nil
		}
		return fmt.Errorf("URL %s is not allowed ([edbgpd.notify] or [edbgpd.grants.%q] http-allow)", x.URL, script)
	}
	if x.Command != "" && slices.Contains(g.ExecAllow, x.Command) {
		return nil
	}
	return fmt.Errorf("command %s is not allowed ([edbgpd.notify] or [edbgpd.grants.%q] exec-allow)", x.Command, script)
}

// start checks and launches x for script; done is called from another goroutine.
func (n *notifier) start(script string, x luaapi.Notification, done func(luaapi.NotifyResult)) error {
	g := n.options().grantFor(script)
	if err := allowed(g, script, x); err != nil {
		return err
	}
	select {
	case n.slots <- struct{}{}:
	default:
		return fmt.Errorf("%d notifications already in flight", cap(n.slots))
	}
	timeout := n.timeout()
	go func() {
		defer func() { <-n.slots }()
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), grantKey{}, g), timeout)
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

func (n *notifier) post(ctx context.Context, x luaapi.Notification) luaapi.NotifyResult {
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

func (n *notifier) run(ctx context.Context, x luaapi.Notification) luaapi.NotifyResult {
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
