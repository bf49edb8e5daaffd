package sandbox

import (
	"fmt"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// MaxString bounds a string that one library call builds (string.rep,
// string.format, string.gsub, table.concat) or searches (the pattern
// functions): Lua strings are Go strings, with no limit of their own, and
// one call allocates in Go where no deadline can stop it.
const MaxString = 64 << 20

// Budget is what a script's string builders (string.rep, format, gsub,
// table.concat) may still allocate: max-memory less what the script held
// at its last measure and what builders made since. A builder checks it
// before it builds, so a script that keeps big strings is stopped at the
// moment it grows, not at its next measure. Owned by the script's
// goroutine, like the state.
type Budget struct {
	Max   int64 // 0: no bound
	Held  int64 // at the last measure (Usage.Bytes)
	Spent int64 // by builders since
	Over  bool  // a builder was refused for it: the script is over its bound
}

// Measured restarts the count from what a measure found.
func (b *Budget) Measured(held int64) { b.Held, b.Spent = held, 0 }

// take counts n bytes fn is about to build, or raises the error.
func (b *Budget) take(L *lua.LState, fn string, n int) {
	b.fits(L, fn, n)
	if b != nil && b.Max > 0 {
		b.Spent += int64(n)
	}
}

// fits raises the error take would for n bytes, without counting them.
func (b *Budget) fits(L *lua.LState, fn string, n int) {
	if b == nil || b.Max <= 0 {
		return
	}
	if b.Held+b.Spent+int64(n) > b.Max {
		b.Over = true
		L.RaiseError("%s: %d MiB more would pass max-memory (%d MiB; the script holds about %d MiB)",
			fn, int64(n)>>20, b.Max>>20, (b.Held+b.Spent)>>20)
	}
}

// built checks n bytes fn is about to build against the budget and
// counts them if they are many (see concatSmall).
func (b *Budget) built(L *lua.LState, fn string, n int) {
	if n >= concatSmall {
		b.take(L, fn, n)
		return
	}
	b.fits(L, fn, n)
}

// boundStrings replaces the string functions that can allocate without
// bound or run long in one Go call.
func boundStrings(L *lua.LState, b *Budget) {
	str := L.GetGlobal("string").(*lua.LTable)
	format := str.RawGetString("format").(*lua.LFunction)
	with := func(fn func(*lua.LState, *Budget) int) lua.LGFunction {
		return func(L *lua.LState) int { return fn(L, b) }
	}
	for name, fn := range map[string]lua.LGFunction{
		"find":   strFind,
		"match":  strMatch,
		"gmatch": strGmatch,
		"gsub":   with(strGsub),
		"rep":    with(strRep),
		"format": boundFormat(format.GFunction, b),
	} {
		str.RawSetString(name, L.NewFunction(fn))
	}
	// Copies of one string: as long as a string may be, but each one
	// counts.
	for _, name := range []string{"upper", "lower", "reverse"} {
		fn := str.RawGetString(name).(*lua.LFunction).GFunction
		str.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			b.built(L, "string."+name, len(L.CheckString(1)))
			return fn(L)
		}))
	}
	str.RawSetString("gfind", str.RawGetString("gmatch"))
	tab := L.GetGlobal("table").(*lua.LTable)
	tab.RawSetString("concat", L.NewFunction(with(tabConcat)))
	tab.RawSetString("sort", L.NewFunction(tabSort))
}

// sortCut is raised inside a sort when the call's deadline passed.
type sortCut struct{}

// luaSorter sorts a copy of a table's list, looking at the deadline every
// stepsPerCheck comparisons: gopher-lua's own table.sort of a million
// numbers is one Go call of about a second, which no deadline reaches.
type luaSorter struct {
	L     *lua.LState
	fn    *lua.LFunction // nil: Lua's <
	v     []lua.LValue
	done  <-chan struct{}
	steps int
}

func (s *luaSorter) Len() int      { return len(s.v) }
func (s *luaSorter) Swap(i, j int) { s.v[i], s.v[j] = s.v[j], s.v[i] }
func (s *luaSorter) Less(i, j int) bool {
	if s.steps++; s.steps&(stepsPerCheck-1) == 0 && s.done != nil {
		select {
		case <-s.done:
			panic(sortCut{})
		default:
		}
	}
	if s.fn == nil {
		return s.L.LessThan(s.v[i], s.v[j])
	}
	s.L.Push(s.fn)
	s.L.Push(s.v[i])
	s.L.Push(s.v[j])
	s.L.Call(2, 1)
	r := lua.LVAsBool(s.L.Get(-1))
	s.L.Pop(1)
	return r
}

// tabSort is table.sort, stopped at the call's deadline; the table is
// changed only when the sort finished.
func tabSort(L *lua.LState) int {
	t := L.CheckTable(1)
	s := &luaSorter{L: L, done: done(L)}
	if L.GetTop() > 1 {
		s.fn = L.CheckFunction(2)
	}
	n := t.Len()
	s.v = make([]lua.LValue, n)
	for i := range n {
		s.v[i] = t.RawGetInt(i + 1)
	}
	cut := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(sortCut); !ok {
					panic(r)
				}
				cut = true
			}
		}()
		sort.Sort(s)
	}()
	if cut {
		L.RaiseError("table.sort: cut off (call deadline)")
	}
	for i, v := range s.v {
		t.RawSetInt(i+1, v)
	}
	return 0
}

// tooLong raises the error of a string over MaxString.
func tooLong(L *lua.LState, fn string, n int) {
	L.RaiseError("%s: result of %d bytes or more is over the %d MiB a string may have", fn, n, MaxString>>20)
}

// done is the running call's deadline channel, nil if none.
func done(L *lua.LState) <-chan struct{} {
	if ctx := L.Context(); ctx != nil {
		return ctx.Done()
	}
	return nil
}

// protect runs fn and turns a pattern error into a Lua error of fn's
// caller; other panics (Lua errors from a replacement function) go on.
func protect(L *lua.LState, name string, fn func()) {
	var perr patternError
	func() {
		defer func() {
			if r := recover(); r != nil {
				e, ok := r.(patternError)
				if !ok {
					panic(r)
				}
				perr = e
			}
		}()
		fn()
	}()
	if perr != "" {
		L.RaiseError("string.%s: %s", name, string(perr))
	}
}

func checkSubject(L *lua.LState, name string) (string, string) {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	if len(src) > MaxString || len(pat) > MaxString {
		L.RaiseError("string.%s: subject or pattern over the %d MiB a string may have", name, MaxString>>20)
	}
	return src, pat
}

// startIndex is Lua 5.1's init argument as a 0-based index in [0, n].
func startIndex(n, init int) int {
	if init < 0 {
		init += n + 1
	}
	init--
	return max(0, min(init, n))
}

func pushCapture(L *lua.LState, c captureValue) {
	if c.isPos {
		L.Push(lua.LNumber(c.pos))
		return
	}
	L.Push(lua.LString(c.s))
}

func strFind(L *lua.LState) int  { return findAux(L, true) }
func strMatch(L *lua.LState) int { return findAux(L, false) }

func findAux(L *lua.LState, find bool) int {
	name := "match"
	if find {
		name = "find"
	}
	src, pat := checkSubject(L, name)
	init := startIndex(len(src), L.OptInt(3, 1))
	if find && (lua.LVAsBool(L.Get(4)) || !hasSpecials(pat)) {
		i := strings.Index(src[init:], pat)
		if i < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + i + 1))
		L.Push(lua.LNumber(init + i + len(pat)))
		return 2
	}
	m := newMatcher(src, pat, done(L))
	var caps []captureValue
	s, e := -1, -1
	protect(L, name, func() {
		if s, e = m.find(init); s >= 0 {
			caps = m.captures(s, e, !find)
		}
	})
	if s < 0 {
		L.Push(lua.LNil)
		return 1
	}
	if find {
		L.Push(lua.LNumber(s + 1))
		L.Push(lua.LNumber(e))
	}
	for _, c := range caps {
		pushCapture(L, c)
	}
	if find {
		return 2 + len(caps)
	}
	return len(caps)
}

// strGmatch matches lazily, one match per call of the iterator, so each
// step is bounded by the deadline of the call that asks for it.
func strGmatch(L *lua.LState) int {
	src, pat := checkSubject(L, "gmatch")
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m := newMatcher(src, pat, done(L))
		var caps []captureValue
		protect(L, "gmatch", func() {
			for s := pos; s <= len(src); s++ {
				m.level, m.depth = 0, 0
				if e := m.match(s, 0); e != -1 {
					pos = e
					if e == s {
						pos++ // an empty match: go on from the next character
					}
					caps = m.captures(s, e, true)
					return
				}
			}
			pos = len(src) + 1
		})
		for _, c := range caps {
			pushCapture(L, c)
		}
		return len(caps)
	}))
	return 1
}

func strGsub(L *lua.LState, budget *Budget) int {
	src, pat := checkSubject(L, "gsub")
	repl := L.Get(3)
	switch repl.Type() {
	case lua.LTString, lua.LTNumber, lua.LTTable, lua.LTFunction:
	default:
		L.ArgError(3, "string/function/table expected, got "+repl.Type().String())
	}
	maxN := L.OptInt(4, len(src)+1)
	m := newMatcher(src, pat, done(L))
	p := 0
	anchor := len(pat) > 0 && pat[0] == '^'
	if anchor {
		p = 1
	}
	var b strings.Builder
	add := func(x string) {
		if b.Len()+len(x) > MaxString {
			tooLong(L, "string.gsub", b.Len()+len(x))
		}
		budget.fits(L, "string.gsub", b.Len()+len(x))
		b.WriteString(x)
	}
	n, s := 0, 0
	protect(L, "gsub", func() {
		for n < maxN {
			m.level, m.depth = 0, 0
			e := m.match(s, p)
			if e != -1 {
				n++
				add(replacement(L, m, s, e, repl))
			}
			switch {
			case e != -1 && e > s:
				s = e
			case s < len(src):
				add(src[s : s+1])
				s++
			default:
				return
			}
			if anchor {
				return
			}
		}
	})
	add(src[s:])
	budget.take(L, "string.gsub", b.Len())
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// replacement is what gsub puts in place of the match src[s:e].
func replacement(L *lua.LState, m *matcher, s, e int, repl lua.LValue) string {
	var v lua.LValue
	switch r := repl.(type) {
	case lua.LString, lua.LNumber:
		return expand(m, s, e, r.String())
	case *lua.LTable:
		c := m.captureAt(0, s, e)
		if c.isPos {
			v = L.GetTable(r, lua.LNumber(c.pos))
		} else {
			v = L.GetField(r, c.s)
		}
	case *lua.LFunction:
		caps := m.captures(s, e, true)
		L.Push(r)
		for _, c := range caps {
			pushCapture(L, c)
		}
		L.Call(len(caps), 1)
		v = L.Get(-1)
		L.Pop(1)
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return m.src[s:e]
	case lua.LBool:
		if !v {
			return m.src[s:e]
		}
	case lua.LString, lua.LNumber:
		return v.String()
	}
	L.RaiseError("invalid replacement value (a %s)", v.Type())
	return ""
}

// expand fills a replacement string: %0 the whole match, %1-%9 the
// captures, %x (any other character) x itself.
func expand(m *matcher, s, e int, r string) string {
	if !strings.Contains(r, "%") {
		return r
	}
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		c := r[i]
		if c != '%' || i+1 == len(r) {
			b.WriteByte(c)
			continue
		}
		i++
		d := r[i]
		switch {
		case d == '0':
			b.WriteString(m.src[s:e])
		case d >= '1' && d <= '9':
			v := m.captureAt(int(d-'1'), s, e)
			if v.isPos {
				fmt.Fprint(&b, v.pos)
			} else {
				b.WriteString(v.s)
			}
		default:
			b.WriteByte(d)
		}
		if b.Len() > MaxString {
			panic(patternError(fmt.Sprintf("replacement over the %d MiB a string may have", MaxString>>20)))
		}
	}
	return b.String()
}

func strRep(L *lua.LState, budget *Budget) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if n > MaxString/len(s) {
		tooLong(L, "string.rep", MaxString+1)
	}
	budget.take(L, "string.rep", n*len(s))
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// boundFormat checks a format before gopher-lua's string.format runs it:
// widths and precisions of two digits at most (as Lua's own), and a
// result that cannot pass MaxString.
func boundFormat(format lua.LGFunction, budget *Budget) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		bound := 8 * len(f)
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			flags := 0
			for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
				i++
				flags++
			}
			if flags > 5 {
				L.RaiseError("invalid format (repeated flags)")
			}
			for _, part := range []bool{true, false} {
				if !part {
					if i >= len(f) || f[i] != '.' {
						break
					}
					i++
				}
				digits := 0
				for i < len(f) && f[i] >= '0' && f[i] <= '9' {
					i++
					digits++
				}
				if digits > 2 {
					L.RaiseError("invalid format (width or precision too long)")
				}
			}
			i--
		}
		// likely: what the result has at least if every %s is plain.
		likely := len(f)
		for a := 2; a <= L.GetTop(); a++ {
			bound += 512
			if s, ok := L.Get(a).(lua.LString); ok {
				bound += 4 * len(s)
				likely += len(s)
			}
		}
		if bound > MaxString {
			tooLong(L, "string.format", bound)
		}
		budget.fits(L, "string.format", likely)
		n := format(L)
		if s, ok := L.Get(-1).(lua.LString); ok {
			budget.take(L, "string.format", len(s))
		}
		return n
	}
}

// tabConcat is table.concat with its result bounded before it is built.
// Indices are clamped to the table's length, as gopher-lua's own does.
func tabConcat(L *lua.LState, budget *Budget) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	n := t.Len()
	i := max(L.OptInt(3, 1), 1)
	j := min(L.OptInt(4, n), n)
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	total := 0
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			total += len(v)
		case lua.LNumber:
			total += 24
		default:
			L.RaiseError("invalid value (%s) at index %d in table for concat", v.Type(), k)
		}
		if k < j {
			total += len(sep)
		}
		if total > MaxString {
			tooLong(L, "table.concat", total)
		}
	}
	budget.take(L, "table.concat", total)
	var b strings.Builder
	b.Grow(total)
	for k := i; k <= j; k++ {
		b.WriteString(t.RawGetInt(k).String())
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}
