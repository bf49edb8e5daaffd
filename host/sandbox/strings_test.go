package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func newTestState(t testing.TB) *lua.LState {
	L := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil)
	t.Cleanup(L.Close)
	return L
}

// results runs code (an expression list) and joins what it returns.
func results(L *lua.LState, code string) (string, error) {
	top := L.GetTop()
	if err := L.DoString("return " + code); err != nil {
		return "", err
	}
	var parts []string
	for i := top + 1; i <= L.GetTop(); i++ {
		parts = append(parts, L.Get(i).String())
	}
	L.SetTop(top)
	return strings.Join(parts, " "), nil
}

// reprs is results with strings quoted, to tell "" from nothing.
func reprs(L *lua.LState, code string) (string, error) {
	top := L.GetTop()
	if err := L.DoString("return " + code); err != nil {
		return "", err
	}
	var parts []string
	for i := top + 1; i <= L.GetTop(); i++ {
		v := L.Get(i)
		if s, ok := v.(lua.LString); ok {
			parts = append(parts, fmt.Sprintf("%q", string(s)))
		} else {
			parts = append(parts, v.String())
		}
	}
	L.SetTop(top)
	return strings.Join(parts, " "), nil
}

// TestPatterns: Lua 5.1's pattern functions, as its manual defines them.
func TestPatterns(t *testing.T) {
	L := newTestState(t)
	for _, tc := range []struct{ code, want string }{
		{`string.find("hello world", "o w")`, "5 7"},
		{`string.find("hello", "l+")`, "3 4"},
		{`string.find("hello", "(h)(e)")`, "1 2 h e"},
		{`string.find("a.b", ".", 1, true)`, "2 2"},
		{`string.find("a.b", "%.")`, "2 2"},
		{`string.find("hello", "l", -2)`, "4 4"},
		{`string.find("abc", "b", 10)`, "nil"},
		{`string.find("abc", "", 10)`, "4 3"},
		{`string.find("abc", "^b")`, "nil"},
		{`string.find("abc", "c$")`, "3 3"},
		{`string.find("a$c", "$c")`, "2 3"},
		{`string.find("x(a(b)c)y", "%b()")`, "2 8"},
		{`string.find('he said "hi" ok', '(["\'])(.-)%1')`, `9 12 " hi`},
		{`string.find("  x", "^%s*()")`, "1 2 3"},
		{`string.match("key=val", "(%w+)=(%w+)")`, "key val"},
		{`string.match("2024-01-02", "(%d+)-(%d+)-(%d+)")`, "2024 01 02"},
		{`string.match("hello", "[^aeiou]+")`, "h"},
		{`string.match("[x]", "[%[%]]")`, "["},
		{`string.match("a]b", "[]]")`, "]"},
		{`string.match("a-b", "[a%-]+")`, "a-"},
		{`string.match("F00d", "%x+")`, "F00d"},
		{`string.match("aaa", "(a*)(.*)")`, "aaa "},
		{`string.match("aaab", "a-b")`, "aaab"},
		{`string.match("ab", "a?b")`, "ab"},
		{`string.match("b", "a?b")`, "b"},
		{`string.match("hello", "l", 4)`, "l"},
		{`string.match("hello", "x")`, "nil"},
		{`string.match("65000:38", "^(%d+):(%d+)$")`, "65000 38"},
		{`string.gsub("hello world", "o", "0")`, "hell0 w0rld 2"},
		{`string.gsub("abc", "%w", "%0%0")`, "aabbcc 3"},
		{`string.gsub("hello world", "(%w+)", "<%1>")`, "<hello> <world> 2"},
		{`string.gsub("abc", "", "-")`, "-a-b-c- 4"},
		{`string.gsub("hello", "l", {l = "L"})`, "heLLo 2"},
		{`string.gsub("$name is $age", "%$(%w+)", {name = "bob"})`, "bob is $age 2"},
		{`string.gsub("abc", "%w", function(c) return c:upper() end, 2)`, "ABc 2"},
		{`string.gsub("abc", "%w", function(c) if c == "b" then return false end return 1 end)`, "1b1 3"},
		{`string.gsub("THE (quick) fox", "%f[%a]%a+", "W")`, "W (W) W 3"},
		{`string.gsub("aaa", "^a", "b")`, "baa 1"},
		{`string.gsub("50%", "%%", "%%%%")`, "50%% 1"},
		{`string.gsub("abc", "()b", "%1")`, "a2c 1"},
		{`(function() local t = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do t[#t+1] = k .. v end return table.concat(t, ",") end)()`, "a1,b2"},
		{`(function() local n = 0 for w in ("abc"):gmatch("x*") do n = n + 1 end return n end)()`, "4"},
		{`(function() local t = {} for w in ("one two  three"):gmatch("%a+") do t[#t+1] = w end return table.concat(t, "|") end)()`, "one|two|three"},
		{`string.rep("ab", 3)`, "ababab"},
		{`string.rep("ab", 0) == ""`, "true"},
		{`table.concat({1, "a", 2}, "-")`, "1-a-2"},
		{`table.concat({"a", "b", "c"}, ",", 2)`, "b,c"},
		{`string.format("%5.2f|%-3d|%s|%x", 3.14159, 7, "hi", 255)`, " 3.14|7  |hi|ff"},
	} {
		got, err := results(L, tc.code)
		if err != nil {
			t.Errorf("%s: %v", tc.code, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.code, got, tc.want)
		}
	}
}

// TestPatternErrors: malformed patterns and bounds are Lua errors.
func TestPatternErrors(t *testing.T) {
	L := newTestState(t)
	for _, tc := range []struct{ code, want string }{
		{`string.find("a", "[a")`, "malformed pattern (missing ']')"},
		{`string.find("a", "%")`, "malformed pattern (ends with '%')"},
		{`string.match("a", "(a")`, "unfinished capture"},
		{`string.find("a", "%1")`, "invalid capture index"},
		{`string.match("a", "a)")`, "invalid pattern capture"},
		{`string.find("a", "%f")`, "missing '[' after '%f'"},
		{`string.find("a", "%b")`, "missing arguments to '%b'"},
		{`string.find(("a"):rep(40), ("(a)"):rep(33))`, "too many captures"},
		{`string.find(("a"):rep(300), ("a?"):rep(300))`, "pattern too complex"},
		{`string.gsub("abc", "%w", "%2")`, "invalid capture index"},
		{`string.gsub("abc", "%w", {a = {}})`, "invalid replacement value (a table)"},
		{`string.gsub("abc", "%w", true)`, "string/function/table expected"},
		{`string.rep("x", 2^31)`, "64 MiB"},
		{`string.rep("abcd", 2^24 + 1)`, "64 MiB"},
		{`table.concat({string.rep("x", 2^25), string.rep("x", 2^25)}, "x")`, "64 MiB"},
		{`table.concat({1, {}, 3})`, "invalid value (table) at index 2"},
		{`string.format("%1000d", 1)`, "width or precision too long"},
		{`string.format("%.100f", 1)`, "width or precision too long"},
		{`string.format("%s%s%s", string.rep("x", 2^24), string.rep("x", 2^24), "x")`, "64 MiB"},
		{`string.gsub(string.rep("x", 2^20), "", string.rep("y", 2^7))`, "64 MiB"},
		{`string.gsub(string.rep("x", 2^16), "x", function() return string.rep("y", 2^12) end)`, "64 MiB"},
	} {
		_, err := results(L, tc.code)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.code, err, tc.want)
		}
	}
}

// TestPatternsAsGopherLua: on patterns where gopher-lua's own matcher
// follows Lua, ours gives the same results: random patterns over a
// small alphabet, so that most of them match somewhere.
func TestPatternsAsGopherLua(t *testing.T) {
	ours := newTestState(t)
	theirs := lua.NewState()
	defer theirs.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	items := []string{"a", "b", ".", "%a", "%d", "%s", "[ab]", "[^a]", "[a-c]", "%%", "x"}
	quant := []string{"", "", "", "*", "+", "-", "?"}
	subject := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteByte("ab1 x%c"[rng.IntN(7)])
		}
		return b.String()
	}
	pattern := func() string {
		var b strings.Builder
		if rng.IntN(4) == 0 {
			b.WriteString("^")
		}
		caps := 0
		for range 1 + rng.IntN(4) {
			item := items[rng.IntN(len(items))] + quant[rng.IntN(len(quant))]
			if rng.IntN(4) == 0 && caps < 3 {
				item = "(" + item + ")"
				caps++
			}
			b.WriteString(item)
		}
		if rng.IntN(5) == 0 {
			b.WriteString("$")
		}
		return b.String()
	}
	n := 0
	for range 5000 {
		s, p := subject(), pattern()
		for _, code := range []string{
			fmt.Sprintf("string.find(%q, %q)", s, p),
			fmt.Sprintf("string.match(%q, %q)", s, p),
			fmt.Sprintf("string.gsub(%q, %q, \"<%%0>\")", s, p),
		} {
			want, err1 := reprs(theirs, code)
			got, err2 := reprs(ours, code)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v / %v", code, err1, err2)
			}
			if strings.HasPrefix(code, "string.match") && want == "" {
				want = "nil" // gopher-lua returns nothing where Lua returns nil
			}
			if got != want {
				t.Errorf("%s = %q, gopher-lua %q", code, got, want)
			}
			n++
		}
	}
	t.Logf("%d calls compared", n)
}

// TestPatternCutOff: a pattern that backtracks for ages on a long string
// stops at the call's deadline instead of running on inside Go.
func TestPatternCutOff(t *testing.T) {
	for _, code := range []string{
		`string.find(string.rep("a", 30000), ".-.-.-.-b")`,
		`string.match(string.rep("a", 30000), "(.*)(.*)(.*)b")`,
		`string.gsub(string.rep("a", 30000), ".-.-.-b", "")`,
		`(function() for x in string.gmatch(string.rep("a", 30000), ".-.-.-b") do end end)()`,
	} {
		t.Run(code, func(t *testing.T) {
			L := newTestState(t)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			L.SetContext(ctx)
			err := L.DoString(code)
			if err == nil || !strings.Contains(err.Error(), "cut off") && !strings.Contains(err.Error(), "context") {
				t.Fatalf("error %v, want a cut-off", err)
			}
		})
	}
}

// TestSortBounded: table.sort sorts as Lua's, and a sort of a big table
// stops at the call's deadline, leaving the table as it was.
func TestSortBounded(t *testing.T) {
	L := newTestState(t)
	for _, tc := range []struct{ code, want string }{
		{`(function() local t = {5, 3, 9, 1} table.sort(t) return table.concat(t, ",") end)()`, "1,3,5,9"},
		{`(function() local t = {"b", "c", "a"} table.sort(t, function(x, y) return x > y end) return table.concat(t, ",") end)()`, "c,b,a"},
		{`(function() local t = {} table.sort(t) return #t end)()`, "0"},
	} {
		got, err := results(L, tc.code)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.code, got, err, tc.want)
		}
	}
	if _, err := results(L, `table.sort({1, "x"})`); err == nil {
		t.Error("sorting a number and a string: no error")
	}
	L2 := newTestState(t)
	if err := L2.DoString(`T = {} for i = 1, 2e6 do T[i] = (i * 7919) % 1000003 end`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	L2.SetContext(ctx)
	err := L2.DoString(`table.sort(T)`)
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("error %v, want a cut-off", err)
	}
	L2.RemoveContext()
	if got, _ := results(L2, `T[1], T[2]`); got != "7919 15838" {
		t.Errorf("a cut-off sort changed the table: %s", got)
	}
}
