package sandbox

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestMeasure(t *testing.T) {
	L := newTestState(t)
	base := Measure(L, 0, 0)
	for _, tc := range []struct {
		name        string
		code        string
		entries     int   // at least this many more than an empty state
		strings     int64 // at least
		stringsUpTo int64 // at most (0: no check)
	}{
		{"entries", `T = {} for i = 1, 1000 do T[i] = i end`, 1000, 0, 0},
		// One big string in many places is held once.
		{"shared string", `local s = ("x"):rep(2^20) T = {} for i = 1, 100 do T[i] = s end`, 100, 1 << 20, 2 << 20},
		{"distinct strings", `T = {} for i = 1, 20 do T[i] = ("x"):rep(2^20) .. i end`, 20, 20 << 20, 0},
		{"upvalues", `local hidden = ("y"):rep(2^20) .. "!" function F() return hidden end`, 0, 1 << 20, 0},
		{"metatables", `T = setmetatable({}, {__index = {big = ("z"):rep(2^20) .. "!"}})`, 1, 1 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := newTestState(t)
			if err := L.DoString(tc.code); err != nil {
				t.Fatal(err)
			}
			u := Measure(L, 0, 0)
			if u.Entries-base.Entries < tc.entries || u.Strings < tc.strings || (tc.stringsUpTo > 0 && u.Strings > tc.stringsUpTo) {
				t.Errorf("%+v (empty state %+v)", u, base)
			}
		})
	}
}

// TestMeasureDeepChain: a chain of tables millions deep is counted, not
// a Go stack overflow.
func TestMeasureDeepChain(t *testing.T) {
	L := newTestState(t)
	var chain lua.LValue = lua.LNil
	const n = 1_000_000
	for range n {
		t := L.CreateTable(1, 0)
		t.RawSetInt(1, chain)
		chain = t
	}
	L.SetGlobal("chain", chain)
	if u := Measure(L, 0, 0); u.Entries < n {
		t.Errorf("%d entries, want %d or more", u.Entries, n)
	}
	// A bound stops the walk early.
	if u := Measure(L, 1000, 0); u.Entries > 2000 {
		t.Errorf("walked %d entries past a bound of 1000", u.Entries)
	}
}
