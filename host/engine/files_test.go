package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host/engine"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// TestReloadStorm: 200 saves in about 2 s end with the last content
// running, and leave no goroutines behind.
func TestReloadStorm(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("s.lua", handlerScript("v0"))
	e.set.LoadAll()
	e.set.Watch()
	e.handledBy("v0")
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 1; i <= 200; i++ {
		e.write("s.lua", handlerScript(fmt.Sprintf("v%d", i)))
		time.Sleep(10 * time.Millisecond)
	}
	e.handledBy("v200")
	bgptest.WaitFor(t, 3*time.Second, func() bool { runtime.GC(); return runtime.NumGoroutine() <= before+2 },
		fmt.Sprintf("goroutines back to about %d (now %d)", before, runtime.NumGoroutine()))
	if r := e.set.Script("s.lua").Stats.Reloads.Load(); r > 201 {
		t.Errorf("%d loads for 200 saves", r)
	}
}

func TestUnusualFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(e *scriptEnv)
		loads   bool
		log     string
	}{
		{"symlink", func(e *scriptEnv) {
			target := filepath.Join(t.TempDir(), "real.lua")
			os.WriteFile(target, []byte(handlerScript("linked")), 0o644)
			os.Symlink(target, filepath.Join(e.dir, "s.lua"))
		}, true, ""},
		{"empty", func(e *scriptEnv) { e.write("s.lua", "") }, true, ""},
		{"not UTF-8", func(e *scriptEnv) { e.write("s.lua", "-- caf\xe9 \xff\xfe\nlocal x = \"\xc3\x28\"\n") }, true, ""},
		{"10 MB", func(e *scriptEnv) { e.write("s.lua", "-- "+strings.Repeat("x", 10<<20)+"\n") }, false, "more than the 4 MiB a script may have"},
		{"binary", func(e *scriptEnv) { e.write("s.lua", "\x00\x01\x02\x1bLua") }, false, "s.lua"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newScriptEnv(t, engine.DefaultLimits)
			tc.prepare(e)
			e.set.LoadAll()
			s := e.set.Script("s.lua")
			if s == nil || (s.Version() != "") != tc.loads {
				t.Fatalf("loaded = %v, want %v\n%s", s != nil && s.Version() != "", tc.loads, e.logs.String())
			}
			if !strings.Contains(e.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, e.logs.String())
			}
		})
	}
	// A file half written when read: the save that completes it loads it.
	t.Run("half written", func(t *testing.T) {
		e := newScriptEnv(t, engine.DefaultLimits)
		e.set.Watch()
		full := handlerScript("whole")
		e.write("s.lua", full[:len(full)/2])
		time.Sleep(50 * time.Millisecond)
		e.write("s.lua", full)
		e.handledBy("whole")
	})
}

// TestScriptsFolderRemoved: removing the folder keeps loaded scripts
// running; recreating it resumes watching.
func TestScriptsFolderRemoved(t *testing.T) {
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("s.lua", handlerScript("before"))
	e.set.LoadAll()
	e.set.Watch()
	e.handledBy("before")
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 3*time.Second, func() bool { return strings.Contains(e.logs.String(), "scripts folder removed") }, "the removal to be logged")
	time.Sleep(100 * time.Millisecond)
	e.handledBy("before") // still running
	os.Mkdir(e.dir, 0o755)
	e.write("s.lua", handlerScript("after"))
	bgptest.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(e.logs.String(), "scripts folder is back") }, "the folder to be watched again")
	e.handledBy("after")
	e.write("s.lua", handlerScript("saved again"))
	e.handledBy("saved again")
}

// TestScriptsFolderUnreadable: a folder whose permissions shut edbgpd out
// is logged, what runs keeps running, and making it readable again reads
// it again. Permissions do not stop root: as root the test runs itself as
// nobody.
func TestScriptsFolderUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t)
		return
	}
	e := newScriptEnv(t, engine.DefaultLimits)
	e.write("s.lua", handlerScript("before"))
	e.set.LoadAll()
	e.set.Watch()
	e.handledBy("before")
	if err := os.Chmod(e.dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(e.dir, 0o755) })
	bgptest.WaitFor(t, 3*time.Second, func() bool { return strings.Contains(e.logs.String(), "scripts folder unreadable") }, "the lost permission to be logged")
	e.handledBy("before") // still running
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, 3*time.Second, func() bool { return strings.Contains(e.logs.String(), "readable again") }, "the folder to be read again")
	e.write("s.lua", handlerScript("after"))
	e.handledBy("after")
}

// runAsNobody runs the calling test again, alone, in a copy of the test
// binary, as user nobody, and fails if it fails.
func runAsNobody(t *testing.T) {
	t.Helper()
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "edbgpd-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "host.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("as nobody, the test did not run:\n%s", out)
	}
}
