package sandbox

import (
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// TestConcatIsLua: the bounded `..` gives what gopher-lua's own gives,
// values and errors, in a sandbox and in a plain state side by side.
func TestConcatIsLua(t *testing.T) {
	if ok, why := Concat(); !ok {
		t.Fatalf("`..` not bounded: %s", why)
	}
	box := newTestState(t)
	plain := lua.NewState()
	defer plain.Close()
	for _, code := range []string{
		`"a" .. "b"`,
		`"a" .. 1 .. "b" .. 2.5 .. -0`,
		`1 .. 2`,
		`1e100 .. ""`,
		`2^53 .. "|" .. 1/3`,
		`"" .. "" .. ""`,
		`(function(...) return ... .. "x" end)("v", "w")`,
		`(function() local a, b, c = "p", "q", "r"; local x = a .. b .. c; return x .. x end)()`,
		`(function() local t = {}; for i = 1, 5 do t[i] = i .. "," .. (t[i-1] or "") end; return t[5] end)()`,
		`string.format("%s", ("ab"):rep(3) .. "c")`,
		`setmetatable({}, {__concat = function(a, b) return "L" end}) .. "x"`,
		`"x" .. setmetatable({}, {__concat = function(a, b) return type(a) .. "R" .. type(b) end})`,
		`"a" .. "b" .. setmetatable({}, {__concat = function(a, b) return a .. "T" end}) .. "c" .. "d"`,
		`"a" .. nil`,
		`{} .. "a"`,
		`"a" .. true`,
		`(function() local s = "x"; for i = 1, 10 do s = s .. s end; return #s end)()`,
	} {
		want, werr := reprs(plain, code)
		got, gerr := reprs(box, code)
		if werr != nil || gerr != nil {
			if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
				t.Errorf("%s: error %v, gopher-lua's %v", code, gerr, werr)
			}
			continue
		}
		if got != want {
			t.Errorf("%s = %s, gopher-lua's %s", code, got, want)
		}
	}
}

// TestBuildersBounded: a `..` or a string function that would pass
// MaxString or the budget is refused before it builds, naming the line,
// and the state goes on.
func TestBuildersBounded(t *testing.T) {
	for _, tc := range []struct {
		name, code, want string
		max              int64
	}{{
		name: "doubling to 4 GiB",
		code: "local s = string.rep('x', 2^20)\nfor i = 1, 12 do s = s .. s end",
		want: "<string>:2: '..': result of 134217728 bytes or more is over the 64 MiB a string may have",
	}, {
		name: "a long chain of one call",
		code: "local s = string.rep('x', 2^24)\nlocal t = s .. s .. s .. s .. s",
		want: "<string>:2: '..': result of 83886080 bytes or more is over",
	}, {
		name: "over the budget",
		max:  100 << 20,
		code: "local s = string.rep('x', 2^25)\nlocal t = s .. s\nlocal u = s .. 'y'",
		want: "<string>:3: '..': 32 MiB more would pass max-memory (100 MiB; the script holds about 96 MiB)",
	}, {
		name: "in a metamethod's result",
		code: "local s = string.rep('x', 2^25)\nlocal m = setmetatable({}, {__concat = function() return s end})\nlocal t = s .. s .. s .. m",
		want: "<string>:3: '..': result of 100663296 bytes or more is over",
	}, {
		name: "string.format of big strings",
		max:  10 << 20,
		code: "local s = string.rep('x', 2^22)\nlocal t = s:upper()\nlocal u = string.format('%s%s', s, s)",
		want: "<string>:3: string.format: 8 MiB more would pass max-memory (10 MiB; the script holds about 8 MiB)",
	}, {
		name: "string.gsub growing",
		max:  80 << 20,
		code: "local s = string.rep('x', 2^25)\nlocal t = s:gsub('x', 'yy')",
		want: "<string>:2: string.gsub: 48 MiB more would pass max-memory (80 MiB",
	}, {
		name: "string.gsub with a table",
		max:  80 << 20,
		code: "local s = string.rep('x', 2^25)\nlocal t = s:gsub('x', {x = 'zz'})",
		want: "<string>:2: string.gsub: 48 MiB more would pass max-memory (80 MiB",
	}, {
		name: "string.upper",
		max:  48 << 20,
		code: "local s = string.rep('x', 2^25)\nlocal t = s:upper()",
		want: "<string>:2: string.upper: 32 MiB more would pass max-memory (48 MiB; the script holds about 32 MiB)",
	}, {
		name: "table.concat",
		max:  40 << 20,
		code: "local s = string.rep('x', 2^24)\nlocal t = table.concat({s, s})",
		want: "<string>:2: table.concat: 32 MiB more would pass max-memory (40 MiB; the script holds about 16 MiB)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Budget{Max: tc.max}
			L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, b)
			defer L.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := L.DoString(tc.code)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 400<<20 {
				t.Errorf("allocated %d MiB before the refusal", grew>>20)
			}
			if tc.max > 0 && !b.Over {
				t.Error("budget not marked over")
			}
			if got, err := results(L, `"still" .. " " .. "here"`); err != nil || got != "still here" {
				t.Errorf("after the refusal: %q, %v", got, err)
			}
		})
	}
}

// TestConcatSmallNotCounted: small joins are checked, not counted.
func TestConcatSmallNotCounted(t *testing.T) {
	b := &Budget{Max: 1 << 20}
	L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, b)
	defer L.Close()
	if err := L.DoString(`for i = 1, 1e5 do local s = "prefix " .. i .. "/24" end`); err != nil {
		t.Fatal(err)
	}
	if err := L.DoString(`local s = ("x"):rep(2^16) .. ""`); err != nil {
		t.Fatal(err)
	}
	if b.Spent < 2<<16 || b.Spent > 3<<16 {
		t.Errorf("spent %d, want the two 64 KiB strings only", b.Spent)
	}
}

// TestConcatFallback: a hook that fails its probe is taken out again:
// `..` is gopher-lua's own (unbounded) until the right hook is back.
func TestConcatFallback(t *testing.T) {
	wrong := func(L *lua.LState, inst uint32, f unsafe.Pointer) int {
		L.Replace(int(inst>>18)&0xff+1, lua.LString("wrong"))
		return 0
	}
	defer installConcat(concatOrig, boundConcat(concatOrig))
	ok, why := installConcat(concatOrig, wrong)
	if ok || !strings.Contains(why, "probe gave wrong") {
		t.Fatalf("a wrong hook passed the probe: %v %q", ok, why)
	}
	L := newTestState(t)
	const over = `#(("x"):rep(2^24) .. ("x"):rep(2^24) .. ("x"):rep(2^24) .. ("x"):rep(2^24) .. "y")`
	if got, err := results(L, over); err != nil || got != "67108865" {
		t.Fatalf("gopher-lua's own `..`: %q, %v", got, err)
	}
	if ok, why := installConcat(concatOrig, boundConcat(concatOrig)); !ok {
		t.Fatalf("the bounded hook back: %s", why)
	}
	if _, err := results(L, over); err == nil || !strings.Contains(err.Error(), "over the 64 MiB") {
		t.Fatalf("bounded again: %v", err)
	}
}

// BenchmarkConcat: what the bounded `..` costs against gopher-lua's own,
// on what handlers do (a prefix and a number into a log line).
func BenchmarkConcat(b *testing.B) {
	const code = `local p = "192.0.2.0/24"; for i = 1, 1000 do local s = "WITNESS " .. p .. " " .. i end`
	for _, bc := range []struct {
		name string
		L    func() *lua.LState
	}{
		{"bounded", func() *lua.LState {
			return New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, &Budget{Max: 1 << 30})
		}},
		{"gopher-lua", func() *lua.LState { return lua.NewState() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			L := bc.L()
			defer L.Close()
			fn, err := L.LoadString(code)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				L.Push(fn)
				L.Call(0, 0)
			}
		})
	}
}
