package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

// NotifyOptions allow scripts to reach out: nothing is allowed unless
// listed. URLs match by prefix ("https://hooks.example.net/" allows every
// path below it); commands match exactly (absolute paths).
type NotifyOptions struct {
	HTTPAllow   []string `toml:"http-allow" yaml:"http-allow"`
	ExecAllow   []string `toml:"exec-allow" yaml:"exec-allow"`
	Timeout     Duration `toml:"timeout" yaml:"timeout"`             // per notification; default 5s
	MaxInFlight int      `toml:"max-in-flight" yaml:"max-in-flight"` // default 16; more fail at once
}

const maxNotifyOutput = 4096

// notifier runs notifications in the background, bounded in number and
// time, so a slow webhook never stalls a script or BGP.
type notifier struct {
	opts   NotifyOptions
	slots  chan struct{}
	client *http.Client
}

func newNotifier(o NotifyOptions) *notifier {
	if o.Timeout <= 0 {
		o.Timeout = Duration(5 * time.Second)
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
	}
	return &notifier{opts: o, slots: make(chan struct{}, o.MaxInFlight), client: &http.Client{}}
}

func (n *notifier) allowed(x luaapi.Notification) error {
	if x.URL != "" {
		for _, p := range n.opts.HTTPAllow {
			if p != "" && strings.HasPrefix(x.URL, p) {
				return nil
			}
		}
		return fmt.Errorf("URL %s is not allowed ([edbgpd.notify] http-allow)", x.URL)
	}
	for _, c := range n.opts.ExecAllow {
		if c != "" && c == x.Command {
			return nil
		}
	}
	return fmt.Errorf("command %s is not allowed ([edbgpd.notify] exec-allow)", x.Command)
}

// start checks and launches x; done is called from another goroutine.
func (n *notifier) start(x luaapi.Notification, done func(luaapi.NotifyResult)) error {
	if err := n.allowed(x); err != nil {
		return err
	}
	select {
	case n.slots <- struct{}{}:
	default:
		return fmt.Errorf("%d notifications already in flight", cap(n.slots))
	}
	go func() {
		defer func() { <-n.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n.opts.Timeout))
		defer cancel()
		if x.URL != "" {
			done(n.post(ctx, x))
		} else {
			done(n.run(ctx, x))
		}
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
	if ctx.Err() != nil {
		r.Error = fmt.Sprintf("timed out after %v", time.Duration(n.opts.Timeout))
	}
	return r
}
