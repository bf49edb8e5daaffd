package sandbox

import (
	"fmt"
	"strings"
)

// Lua patterns (string.find, match, gmatch, gsub), matched here rather
// than by gopher-lua's own matcher: a backtracking pattern on a long
// string can run for minutes inside one Go call, where the call deadline
// cannot reach it. This matcher counts its steps, looks at the call's
// context every stepsPerCheck steps and stops at maxSteps, and bounds its
// recursion, so a pattern call ends when the deadline says so.

const (
	maxCaptures   = 32  // as Lua's LUA_MAXCAPTURES
	maxMatchDepth = 200 // as Lua 5.2's MAXCCALLS: "pattern too complex"
	stepsPerCheck = 1 << 12
	// maxSteps bounds one pattern call where no deadline does (offline
	// tools): about a second of matching.
	maxSteps = 200_000_000

	capUnfinished = -1
	capPosition   = -2
)

// patternError is raised (panicked) inside the matcher and recovered by
// the string functions, which turn it into a Lua error.
type patternError string

// errCutOff is raised when the call's context is done.
const errCutOff patternError = "cut off (call deadline)"

type capture struct{ init, len int }

// matcher is one pattern call's state: the subject, the pattern, the
// captures of the current attempt and the step count of the whole call.
type matcher struct {
	src, pat string
	level    int
	capture  [maxCaptures]capture
	depth    int
	steps    int
	done     <-chan struct{} // the call's context; nil: steps only
}

func newMatcher(src, pat string, done <-chan struct{}) *matcher {
	return &matcher{src: src, pat: pat, done: done}
}

// tick counts a step; every stepsPerCheck steps it looks at the deadline.
func (m *matcher) tick() {
	m.steps++
	if m.steps&(stepsPerCheck-1) != 0 {
		return
	}
	if m.steps >= maxSteps {
		panic(patternError(fmt.Sprintf("pattern needs more than %d steps", maxSteps)))
	}
	if m.done != nil {
		select {
		case <-m.done:
			panic(errCutOff)
		default:
		}
	}
}

// classEnd returns the index just after the single-character class at p.
func (m *matcher) classEnd(p int) int {
	c := m.pat[p]
	p++
	switch c {
	case '%':
		if p >= len(m.pat) {
			panic(patternError("malformed pattern (ends with '%')"))
		}
		return p + 1
	case '[':
		if p < len(m.pat) && m.pat[p] == '^' {
			p++
		}
		for { // the first character is part of the set, even ']'
			if p >= len(m.pat) {
				panic(patternError("malformed pattern (missing ']')"))
			}
			c := m.pat[p]
			p++
			if c == '%' {
				p++
			}
			if p >= len(m.pat) {
				panic(patternError("malformed pattern (missing ']')"))
			}
			if m.pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

// matchClass reports whether c is in the class %cl (C locale).
func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = c < 32 || c == 127
	case 'd':
		res = c >= '0' && c <= '9'
	case 'l':
		res = c >= 'a' && c <= 'z'
	case 'p':
		res = c > 32 && c < 127 && !isAlpha(c) && !(c >= '0' && c <= '9')
	case 's':
		res = c == ' ' || (c >= '\t' && c <= '\r')
	case 'u':
		res = c >= 'A' && c <= 'Z'
	case 'w':
		res = isAlpha(c) || (c >= '0' && c <= '9')
	case 'x':
		res = (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if cl >= 'A' && cl <= 'Z' {
		return !res
	}
	return res
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// matchBracket reports whether c is in the set pat[p:ec+1], "[...]".
func (m *matcher) matchBracket(c byte, p, ec int) bool {
	want := true
	p++
	if m.pat[p] == '^' {
		want = false
		p++
	}
	for ; p < ec; p++ {
		switch {
		case m.pat[p] == '%':
			p++
			if matchClass(c, m.pat[p]) {
				return want
			}
		case p+2 < ec && m.pat[p+1] == '-':
			if m.pat[p] <= c && c <= m.pat[p+2] {
				return want
			}
			p += 2
		case m.pat[p] == c:
			return want
		}
	}
	return !want
}

// single reports whether src[s] matches the class pat[p:ep].
func (m *matcher) single(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, m.pat[p+1])
	case '[':
		return m.matchBracket(c, p, ep-1)
	}
	return m.pat[p] == c
}

// match matches pat[p:] at src[s:] and returns the end of the match, or -1.
func (m *matcher) match(s, p int) int {
	m.depth++
	if m.depth > maxMatchDepth {
		panic(patternError("pattern too complex"))
	}
	r := m.matchHere(s, p)
	m.depth--
	return r
}

func (m *matcher) matchHere(s, p int) int {
	for {
		m.tick()
		if p == len(m.pat) {
			return s
		}
		switch m.pat[p] {
		case '(':
			if p+1 < len(m.pat) && m.pat[p+1] == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case ')':
			return m.endCapture(s, p+1)
		case '$':
			if p+1 == len(m.pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		case '%':
			if p+1 < len(m.pat) {
				switch c := m.pat[p+1]; {
				case c == 'b':
					if s = m.matchBalance(s, p+2); s == -1 {
						return -1
					}
					p += 4
					continue
				case c == 'f':
					p += 2
					if p >= len(m.pat) || m.pat[p] != '[' {
						panic(patternError("missing '[' after '%f' in pattern"))
					}
					ep := m.classEnd(p)
					var prev, cur byte
					if s > 0 {
						prev = m.src[s-1]
					}
					if s < len(m.src) {
						cur = m.src[s]
					}
					if m.matchBracket(prev, p, ep-1) || !m.matchBracket(cur, p, ep-1) {
						return -1
					}
					p = ep
					continue
				case c >= '0' && c <= '9':
					if s = m.matchCapture(s, c); s == -1 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		ep := m.classEnd(p)
		matched := m.single(s, p, ep)
		if ep < len(m.pat) {
			switch m.pat[ep] {
			case '?':
				if matched {
					if r := m.match(s+1, ep+1); r != -1 {
						return r
					}
				}
				p = ep + 1
				continue
			case '+':
				if !matched {
					return -1
				}
				return m.maxExpand(s+1, p, ep)
			case '*':
				return m.maxExpand(s, p, ep)
			case '-':
				return m.minExpand(s, p, ep)
			}
		}
		if !matched {
			return -1
		}
		s++
		p = ep
	}
}

func (m *matcher) maxExpand(s, p, ep int) int {
	i := 0
	for m.single(s+i, p, ep) {
		m.tick()
		i++
	}
	for ; i >= 0; i-- {
		if r := m.match(s+i, ep+1); r != -1 {
			return r
		}
	}
	return -1
}

func (m *matcher) minExpand(s, p, ep int) int {
	for {
		if r := m.match(s, ep+1); r != -1 {
			return r
		}
		if !m.single(s, p, ep) {
			return -1
		}
		s++
	}
}

func (m *matcher) matchBalance(s, p int) int {
	if p+1 >= len(m.pat) {
		panic(patternError("missing arguments to '%b'"))
	}
	if s >= len(m.src) || m.src[s] != m.pat[p] {
		return -1
	}
	open, close := m.pat[p], m.pat[p+1]
	depth := 1
	for i := s + 1; i < len(m.src); i++ {
		m.tick()
		switch m.src[i] {
		case close:
			if depth--; depth == 0 {
				return i + 1
			}
		case open:
			depth++
		}
	}
	return -1
}

func (m *matcher) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		panic(patternError("too many captures"))
	}
	m.capture[m.level] = capture{s, what}
	m.level++
	r := m.match(s, p)
	if r == -1 {
		m.level--
	}
	return r
}

func (m *matcher) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.capture[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 {
		panic(patternError("invalid pattern capture"))
	}
	m.capture[l].len = s - m.capture[l].init
	r := m.match(s, p)
	if r == -1 {
		m.capture[l].len = capUnfinished
	}
	return r
}

func (m *matcher) matchCapture(s int, c byte) int {
	l := int(c - '1')
	if l < 0 || l >= m.level || m.capture[l].len < 0 {
		panic(patternError(fmt.Sprintf("invalid capture index %%%c", c)))
	}
	cp := m.capture[l]
	if len(m.src)-s >= cp.len && m.src[cp.init:cp.init+cp.len] == m.src[s:s+cp.len] {
		return s + cp.len
	}
	return -1
}

// find looks for the pattern from init on and returns the match's bounds,
// or -1. A pattern starting with '^' matches only at init.
func (m *matcher) find(init int) (start, end int) {
	p := 0
	anchor := len(m.pat) > 0 && m.pat[0] == '^'
	if anchor {
		p = 1
	}
	for s := init; s <= len(m.src); s++ {
		m.level, m.depth = 0, 0
		if e := m.match(s, p); e != -1 {
			return s, e
		}
		if anchor {
			break
		}
	}
	return -1, -1
}

// captureValue is capture i of the last match: a string, or a position
// (1-based) for "()". With no captures, capture 0 is the whole match.
type captureValue struct {
	s     string
	pos   int
	isPos bool
}

func (m *matcher) captureAt(i, s, e int) captureValue {
	if i >= m.level {
		if i != 0 {
			panic(patternError(fmt.Sprintf("invalid capture index %%%d", i+1)))
		}
		return captureValue{s: m.src[s:e]}
	}
	c := m.capture[i]
	switch c.len {
	case capUnfinished:
		panic(patternError("unfinished capture"))
	case capPosition:
		return captureValue{pos: c.init + 1, isPos: true}
	}
	return captureValue{s: m.src[c.init : c.init+c.len]}
}

// captures of the last match (s, e): every capture, or the whole match.
func (m *matcher) captures(s, e int, wholeIfNone bool) []captureValue {
	n := m.level
	if n == 0 && wholeIfNone {
		n = 1
	}
	out := make([]captureValue, n)
	for i := range out {
		out[i] = m.captureAt(i, s, e)
	}
	return out
}

// hasSpecials tells whether a pattern needs the matcher at all.
func hasSpecials(p string) bool { return strings.ContainsAny(p, "^$*+?.([%-") }
