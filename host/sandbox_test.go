package host

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestSandboxRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evil.lua"), []byte("return 1"), 0o644)
	for _, code := range []string{
		`assert(io == nil)`,
		`assert(debug == nil)`,
		`assert(os.execute == nil and os.remove == nil and os.exit == nil and os.getenv == nil)`,
		`assert(dofile == nil and loadfile == nil and collectgarbage == nil)`,
		`assert(not pcall(require, "` + filepath.Join(dir, "evil") + `"))`,
		`assert(not pcall(require, "evil"))`,
		`assert(not pcall(require, "io"))`,
		`assert(type(os.time()) == "number" and type(os.date("%Y")) == "string" and type(os.clock()) == "number")`,
		`assert(string.format("%d", 1) == "1" and math.floor(1.5) == 1 and table.concat({"a"}) == "a")`,
	} {
		t.Run(code, func(t *testing.T) {
			L := newSandbox(slog.New(slog.NewTextHandler(io.Discard, nil)))
			defer L.Close()
			if err := L.DoString(code); err != nil {
				t.Fatal(err)
			}
		})
	}
}
