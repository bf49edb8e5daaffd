package host_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/edbgpd/edbgpd/"

// TestImportsAsTheREADMEsSay: every package of host/, luaapi and
// cmd/edbgpd imports only what the "Imports:" line of its README allows
// (std: the standard library; host/x: this module's packages; a path
// ending in /...: it and everything below it). Test files are not
// checked: tests may drive a part with anything.
func TestImportsAsTheREADMEsSay(t *testing.T) {
	dirs := []string{".", "../luaapi", "../cmd/edbgpd"}
	parts, _ := filepath.Glob("*/README.md")
	for _, p := range parts {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, dir := range dirs {
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		var allowed []string
		for _, l := range strings.Split(string(readme), "\n") {
			if rest, ok := strings.CutPrefix(l, "Imports:"); ok {
				for _, a := range strings.Split(rest, ",") {
					allowed = append(allowed, strings.TrimSpace(a))
				}
			}
		}
		if len(allowed) == 0 {
			t.Errorf("%s/README.md has no Imports: line", dir)
			continue
		}
		for path, file := range imports(t, dir) {
			if !importAllowed(path, allowed) {
				t.Errorf("%s imports %s, which its README does not allow (Imports: %s)", file, path, strings.Join(allowed, ", "))
			}
		}
	}
}

// imports lists the imports of dir's non-test Go files, with a file
// that has each.
func imports(t *testing.T, dir string) map[string]string {
	out := make(map[string]string)
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			out[path] = f
		}
	}
	return out
}

func importAllowed(path string, allowed []string) bool {
	for _, a := range allowed {
		switch {
		case a == "std":
			// As the go command tells: no dot in the first element.
			if first, _, _ := strings.Cut(path, "/"); !strings.Contains(first, ".") {
				return true
			}
		case strings.HasSuffix(a, "/..."):
			base := strings.TrimSuffix(a, "/...")
			if !strings.Contains(base, ".") {
				base = module + base
			}
			if path == base || strings.HasPrefix(path, base+"/") {
				return true
			}
		case strings.Contains(a, "."):
			if path == a {
				return true
			}
		default: // one of this module's packages
			if path == module+a {
				return true
			}
		}
	}
	return false
}

// TestImportCheckRefuses: the check above can fail.
func TestImportCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		path    string
		allowed []string
		want    bool
	}{
		{"fmt", []string{"std"}, true},
		{"github.com/osrg/gobgp/v3/pkg/server", []string{"std", "host/event"}, false},
		{"github.com/osrg/gobgp/v3/pkg/server", []string{"github.com/osrg/gobgp/v3/..."}, true},
		{"github.com/edbgpd/edbgpd/host", []string{"host/event", "host/engine"}, false},
		{"github.com/edbgpd/edbgpd/host/event", []string{"host/event"}, true},
		{"github.com/yuin/gopher-lua/parse", []string{"github.com/yuin/gopher-lua/..."}, true},
		{"github.com/yuin/gopher-lua", []string{"github.com/yuin/gopher-lua/..."}, true},
		{"github.com/yuin/gopher-luax", []string{"github.com/yuin/gopher-lua/..."}, false},
	} {
		if got := importAllowed(tc.path, tc.allowed); got != tc.want {
			t.Errorf("%s under %v: %v, want %v", tc.path, tc.allowed, got, tc.want)
		}
	}
}

// TestExampleREADMEs: every example has a README that says what it needs,
// how to run its test and what a session looks like, and the top README
// links it.
func TestExampleREADMEs(t *testing.T) {
	top, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob("../examples/*")
	if len(dirs) < 5 {
		t.Fatalf("examples: %v", dirs)
	}
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		name := filepath.Base(dir)
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("examples/%s has no README.md", name)
			continue
		}
		for _, section := range []string{"## Config it needs", "## Run it", "## What a session looks like", "```"} {
			if section == "## Run it" && strings.Contains(string(readme), "## Run its test") {
				continue
			}
			if !strings.Contains(string(readme), section) {
				t.Errorf("examples/%s/README.md has no %q", name, section)
			}
		}
		if !strings.Contains(string(top), "(examples/"+name+"/README.md)") {
			t.Errorf("README.md's Examples do not link examples/%s/README.md", name)
		}
	}
}
