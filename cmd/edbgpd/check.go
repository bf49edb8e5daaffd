package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jessevdk/go-flags"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/edbgpd/edbgpd/host"
	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/host/sandbox"
	"github.com/edbgpd/edbgpd/luaapi"
)

type checkOptions struct {
	Config string `short:"f" long:"config-file" description:"the daemon's config file: its limits, sandbox and grants apply"`
	Type   string `short:"t" long:"config-type" description:"config file format, when the name does not say" default:"toml"`
	Args   struct {
		Scripts []string `positional-arg-name:"SCRIPT" required:"1"`
	} `positional-args:"yes"`
}

// runCheck is `edbgpd check SCRIPT...`: what an operator runs before a
// script reaches a router (a pre-commit hook, a config pipeline). Each
// script is compiled, read for bgp.* names the module does not have and
// handler names edbgpd does not call, then loaded in the sandbox with the
// offline actions (its chunk and on_load run: subscribe mistakes, errors,
// handlers that are not functions). Problems are printed as FILE:LINE:
// what; the exit code is 1 if there is any.
func runCheck(args []string, stdout, stderr io.Writer) int {
	var o checkOptions
	p := flags.NewParser(&o, flags.Default)
	p.Usage = "check [-f CONFIG] SCRIPT..."
	if _, err := p.ParseArgs(args); err != nil {
		return 2
	}
	var opts engine.OfflineOptions
	if o.Config != "" {
		cfg, err := host.LoadConfig(o.Config, o.Type)
		if err != nil {
			fmt.Fprintln(stderr, "edbgpd check:", err)
			return 1
		}
		opts = cfg.Options.OfflineOptions()
	}
	problems := 0
	for _, path := range o.Args.Scripts {
		found := checkScript(path, opts)
		for _, f := range found {
			fmt.Fprintln(stdout, f)
		}
		problems += len(found)
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "edbgpd check: %d problems in %d scripts\n", problems, len(o.Args.Scripts))
		return 1
	}
	fmt.Fprintf(stderr, "edbgpd check: %d scripts OK\n", len(o.Args.Scripts))
	return 0
}

func checkScript(path string, opts engine.OfflineOptions) []string {
	src, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", path, err)}
	}
	if _, err := sandbox.Compile(src, path); err != nil {
		return []string{fileFirst(path, err.Error())}
	}
	chunk, err := parse.Parse(bytes.NewReader(src), path)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", path, err)}
	}
	found := staticProblems(path, chunk)
	// Load it: the chunk and on_load run, offline; what goes wrong is
	// logged, and the log is what is reported.
	logs := &records{store: &store{}}
	run, err := engine.NewOffline(path, time.Unix(1700000000, 0), opts, slog.New(logs))
	if err == nil {
		run.Close()
	}
	for _, p := range logs.problems() {
		found = append(found, fileFirst(path, p))
	}
	return found
}

var (
	parseError = regexp.MustCompile(`^(.*) line:(\d+)\(column:(\d+)\) near '(.*)':\s+(.*)$`)
	inHandler  = regexp.MustCompile(`^(on_\w+|syntax error): (\S+:\d+): (.*)$`)
)

// fileFirst words a problem as FILE:LINE: what, as compilers do.
func fileFirst(path, p string) string {
	p = strings.TrimSpace(p)
	if m := parseError.FindStringSubmatch(p); m != nil {
		return fmt.Sprintf("%s:%s:%s: %s near '%s'", m[1], m[2], m[3], m[5], m[4])
	}
	if m := inHandler.FindStringSubmatch(p); m != nil {
		return fmt.Sprintf("%s: %s: %s", m[2], m[1], m[3])
	}
	if !strings.HasPrefix(p, path) {
		return path + ": " + p
	}
	return p
}

// staticProblems reads the syntax tree for names of the bgp module that
// do not exist and handlers edbgpd does not call (a typo is otherwise a
// script that silently never runs).
func staticProblems(path string, chunk []ast.Stmt) []string {
	known := append(luaapi.ModuleFunctions(), "state")
	aliases := map[string]bool{}
	var found []string
	isRequireBGP := func(e ast.Expr) bool {
		c, ok := e.(*ast.FuncCallExpr)
		if !ok || len(c.Args) != 1 {
			return false
		}
		f, ok := c.Func.(*ast.IdentExpr)
		s, ok2 := c.Args[0].(*ast.StringExpr)
		return ok && ok2 && f.Value == "require" && s.Value == "bgp"
	}
	walk(chunk, func(n any) {
		switch n := n.(type) {
		case *ast.LocalAssignStmt:
			for i, e := range n.Exprs {
				if i < len(n.Names) && isRequireBGP(e) {
					aliases[n.Names[i]] = true
				}
			}
		case *ast.AssignStmt:
			for i, e := range n.Rhs {
				if id, ok := at(n.Lhs, i).(*ast.IdentExpr); ok && isRequireBGP(e) {
					aliases[id.Value] = true
				}
			}
		}
	})
	walk(chunk, func(n any) {
		switch n := n.(type) {
		case *ast.AttrGetExpr:
			obj, ok := n.Object.(*ast.IdentExpr)
			key, ok2 := n.Key.(*ast.StringExpr)
			if ok && ok2 && aliases[obj.Value] && !slices.Contains(known, key.Value) {
				found = append(found, fmt.Sprintf("%s:%d: %s.%s: the bgp module has no %q%s", path, n.Line(), obj.Value, key.Value, key.Value, closest(key.Value, known)))
			}
		case *ast.FuncDefStmt:
			if id, ok := n.Name.Func.(*ast.IdentExpr); ok && n.Name.Receiver == nil && strings.HasPrefix(id.Value, "on_") && !slices.Contains(luaapi.Handlers, id.Value) {
				found = append(found, fmt.Sprintf("%s:%d: %s is not a handler edbgpd calls (%s)%s", path, n.Line(), id.Value, strings.Join(luaapi.Handlers, ", "), closest(id.Value, luaapi.Handlers)))
			}
		}
	})
	return found
}

func at(l []ast.Expr, i int) ast.Expr {
	if i < len(l) {
		return l[i]
	}
	return nil
}

// closest suggests the known name nearest to name, if one is near.
func closest(name string, known []string) string {
	best, dist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < dist {
			best, dist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// walk calls fn on every node of the tree (pointers to gopher-lua's AST
// structs), through reflection: the AST has some forty node types.
func walk(v any, fn func(any)) {
	var visit func(reflect.Value)
	visit = func(r reflect.Value) {
		switch r.Kind() {
		case reflect.Interface:
			if !r.IsNil() {
				visit(r.Elem())
			}
		case reflect.Pointer:
			if r.IsNil() || r.Elem().Kind() != reflect.Struct {
				return
			}
			fn(r.Interface())
			visit(r.Elem())
		case reflect.Struct:
			for i := 0; i < r.NumField(); i++ {
				if r.Type().Field(i).IsExported() {
					visit(r.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < r.Len(); i++ {
				visit(r.Index(i))
			}
		}
	}
	visit(reflect.ValueOf(v))
}

// records is a slog handler keeping warnings and errors, to report them.
type records struct {
	*store
	attrs []slog.Attr
}

type store struct {
	mu    sync.Mutex
	lines []string
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var at, errText string
	var rest []string
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "at":
			at = a.Value.String()
		case "err", "last_err":
			errText = a.Value.String()
		case "script", "version", "handler":
		default:
			rest = append(rest, a.Key+"="+a.Value.String())
		}
		return true
	}
	for _, a := range r.attrs {
		visit(a)
	}
	rec.Attrs(visit)
	line := rec.Message
	if errText != "" {
		line = errText
		if !strings.Contains(rec.Message, "not loaded") {
			line = rec.Message + ": " + errText
		}
	}
	if at != "" && !strings.HasPrefix(line, at) {
		line = at + ": " + line
	}
	if len(rest) > 0 {
		line += " (" + strings.Join(rest, " ") + ")"
	}
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	return nil
}

func (r *records) WithAttrs(a []slog.Attr) slog.Handler {
	return &records{store: r.store, attrs: append(slices.Clone(r.attrs), a...)}
}

func (r *records) WithGroup(string) slog.Handler { return r }

func (r *records) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines
}
