package sandbox

import (
	"strings"
	"testing"
)

// TestCompileBounds: chunks that would make gopher-lua's parser crawl or
// its compiler overflow Go's stack are refused with file and line.
func TestCompileBounds(t *testing.T) {
	deep := func(open, inner, close string, n int) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"tables", "X = " + deep("{", "1", "}", 1_000_000), "x.lua:1: nested deeper than 200"},
		{"parens", "return " + deep("(", "1", ")", 1_000_000), "x.lua:1: nested deeper than 200"},
		{"blocks", "\n" + deep("do ", "", " end", 300), "x.lua:2: nested deeper than 200"},
		{"functions", deep("f(function() ", "", " end)", 300), "nested deeper than 200"},
		{"sums", "return 1" + strings.Repeat("+1", 100_000), "x.lua:1: expression nested deeper than 1000"},
		{"minus", "return " + strings.Repeat("- ", 100_000) + "1", "expression nested deeper than 1000"},
		{"too big", "-- " + strings.Repeat("x", MaxSource), "more than the 4 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.src), "x.lua")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// What is not nesting is not counted: strings, comments, long
	// brackets, and code just under the bound.
	for _, src := range []string{
		`local s = "((((((((((" .. '{{{{{{{{' .. [[ do do do ]] .. [==[ ]] (((( ]==]` + "\n-- (((((\n--[[ do do\ndo ]] return s",
		"return " + deep("{", "1", "}", 150),
		deep("do ", "", " end", 199),
		"local t = {} t[ [[k]] ] = 1 return t",
		"if a then elseif b then else end",
	} {
		if _, err := Compile([]byte(src), "ok.lua"); err != nil {
			t.Errorf("%.60s: %v", src, err)
		}
	}
}

// TestLoadBounded: load and loadstring in a script go through the same
// bounds and answer nil, reason.
func TestLoadBounded(t *testing.T) {
	L := newTestState(t)
	for _, tc := range []struct{ code, want string }{
		{`loadstring("return " .. ("{"):rep(1e6) .. "1" .. ("}"):rep(1e6))`, "nil <string>:1: nested deeper than 200"},
		{`load(function() return nil end)`, "function"},
		{`loadstring("return 1 +")`, "nil"},
		{`loadstring("return 42")()`, "42"},
		{`(function() local n = 0 return load(function() n = n + 1 if n == 1 then return "return " elseif n == 2 then return "7" end end) end)()()`, "7"},
	} {
		got, err := results(L, tc.code)
		if err != nil {
			t.Errorf("%s: %v", tc.code, err)
			continue
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s = %q, want %q...", tc.code, got, tc.want)
		}
	}
	// load's pieces may not add up past MaxSource.
	got, _ := results(L, `load(function() return ("-"):rep(1e6) end)`)
	if !strings.Contains(got, "more than the 4 MiB") {
		t.Errorf("load of endless pieces: %q", got)
	}
}
