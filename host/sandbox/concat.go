package sandbox

import (
	"log/slog"
	"strings"
	"unsafe" // and go:linkname

	lua "github.com/yuin/gopher-lua"
)

// The `..` operator is no library function but a VM instruction
// (OP_CONCAT) that joins its operands in one Go call: doubling a string
// in a loop reaches gigabytes before any check could run. gopher-lua runs
// every instruction through its unexported dispatch table, so edbgpd
// reaches that table with a //go:linkname pull (as host/speaker reaches
// GoBGP's watcher) and puts its own OP_CONCAT in it: the same join, with
// the result bounded by MaxString and the script's Budget before it is
// built. go.mod pins gopher-lua v1.1.2; at start a probe checks that the
// instruction decodes and joins as expected, and on any difference
// edbgpd puts gopher-lua's own back and says so once (Concat).

// luaInstFunc is gopher-lua's instFunc; its last argument (a *callFrame)
// is only handed on.
type luaInstFunc func(*lua.LState, uint32, unsafe.Pointer) int

//go:linkname luaJumpTable github.com/yuin/gopher-lua.jumpTable
var luaJumpTable [lua.OP_NOP + 1]luaInstFunc

// concatSmall: results under it (what every handler makes per event) are
// checked against the budget but not counted in it; what a script keeps
// of them is found by the measure, what it churns by the call's
// watchdog, which also counts only large objects.
const concatSmall = 32 << 10

// boxKey is the entry of the registry (G.Registry, shared by a state's
// coroutines) that marks a sandboxed state and holds its budget.
const boxKey = "edbgpd.sandbox"

// concatBound says whether `..` is bounded (the probe passed), and why
// not if it is not: read by Concat.
var concatBound, concatWhy = hookConcat()

// Concat reports whether `..` is bounded before it builds; if not, why,
// and `..` is then gopher-lua's own, bounded only by the call's memory
// watchdog.
func Concat() (bool, string) { return concatBound, concatWhy }

// warnConcat logs, once a process, that `..` is not bounded.
var warnConcat = func() func(*slog.Logger) {
	warned := false
	return func(log *slog.Logger) {
		if !concatBound && !warned {
			warned = true
			log.Warn("string concatenation (..) is bounded by the memory watchdog only: "+concatWhy, "gopher-lua", "v1.1.2 expected")
		}
	}
}()

// markBox tags L as a sandbox whose `..` is bounded by b (nil: MaxString
// only).
func markBox(L *lua.LState, b *Budget) {
	L.G.Registry.RawSetString(boxKey, &lua.LUserData{Value: b})
}

// hookConcat installs the bounded OP_CONCAT; it runs once, at package
// init, before any state runs (the table is read by every state without
// a lock).
func hookConcat() (bool, string) {
	concatOrig = luaJumpTable[lua.OP_CONCAT]
	if concatOrig == nil {
		return false, "gopher-lua's dispatch table is not where edbgpd looks"
	}
	return installConcat(concatOrig, boundConcat(concatOrig))
}

// concatOrig is gopher-lua's own OP_CONCAT.
var concatOrig luaInstFunc

// installConcat puts op in the dispatch table and probes it; if the probe
// fails, orig goes back.
func installConcat(orig, op luaInstFunc) (bool, string) {
	luaJumpTable[lua.OP_CONCAT] = op
	if why := probeConcat(); why != "" {
		luaJumpTable[lua.OP_CONCAT] = orig
		return false, why
	}
	return true, ""
}

// probeSaw is what the bounded OP_CONCAT saw of the probe's operands.
var probeSaw []string

// probeConcat runs `..` in a marked state: the hook must see the operands
// and the result must be Lua's.
func probeConcat() string {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	markBox(L, &Budget{Max: -1}) // Max < 0: the probe
	defer func() { probeSaw = nil }()
	if err := L.DoString(`local a, b = "ab", 1; R = a .. b .. "c"`); err != nil {
		return "probe failed: " + err.Error()
	}
	if got := L.GetGlobal("R").String(); got != "ab1c" || strings.Join(probeSaw, ",") != "ab,1,c" {
		return "probe gave " + got + " from " + strings.Join(probeSaw, ",")
	}
	return ""
}

// boundConcat is OP_CONCAT (R(A) := R(B) .. ... .. R(C)) bounded in a
// sandbox; other states and registers out of view get gopher-lua's own.
func boundConcat(orig luaInstFunc) luaInstFunc {
	return func(L *lua.LState, inst uint32, frame unsafe.Pointer) int {
		ud, ok := L.G.Registry.RawGetString(boxKey).(*lua.LUserData)
		if !ok {
			return orig(L, inst, frame)
		}
		a, b, c := int(inst>>18)&0xff, int(inst&0x1ff), int(inst>>9)&0x1ff
		if top := L.GetTop(); a >= top || c >= top || b > c {
			return orig(L, inst, frame)
		}
		budget, _ := ud.Value.(*Budget)
		if budget != nil && budget.Max < 0 {
			for r := b; r <= c; r++ {
				probeSaw = append(probeSaw, L.Get(r+1).String())
			}
			budget = nil
		}
		L.Replace(a+1, concat(L, budget, b+1, c+1))
		return 0
	}
}

// concat joins the values at stack indices first..last as Lua 5.1 does:
// right to left, runs of strings and numbers at once, __concat for the
// rest; every join is bounded before it is built.
func concat(L *lua.LState, budget *Budget, first, last int) lua.LValue {
	rhs := L.Get(last)
	for i := last - 1; i >= first; {
		lhs := L.Get(i)
		if !lua.LVCanConvToString(lhs) || !lua.LVCanConvToString(rhs) {
			rhs = metaConcat(L, lhs, rhs)
			i--
			continue
		}
		// The run, right to left, each operand converted once.
		var buf [8]string
		run := append(buf[:0], lua.LVAsString(rhs))
		n, j := len(run[0]), i
		for ; j >= first; j-- {
			v := L.Get(j)
			if !lua.LVCanConvToString(v) {
				break
			}
			run = append(run, lua.LVAsString(v))
			if n += len(run[len(run)-1]); n > MaxString {
				tooLong(L, "'..'", n)
			}
		}
		budget.built(L, "'..'", n)
		var s strings.Builder
		s.Grow(n)
		for k := len(run) - 1; k >= 0; k-- {
			s.WriteString(run[k])
		}
		rhs = lua.LString(s.String())
		i = j
	}
	return rhs
}

// metaConcat is lhs .. rhs through a __concat metamethod, lhs's first.
func metaConcat(L *lua.LState, lhs, rhs lua.LValue) lua.LValue {
	op := L.GetMetaField(lhs, "__concat")
	if op == lua.LNil {
		op = L.GetMetaField(rhs, "__concat")
	}
	if op.Type() != lua.LTFunction {
		L.RaiseError("cannot perform concat operation between %v and %v", lhs.Type().String(), rhs.Type().String())
	}
	L.Push(op)
	L.Push(lhs)
	L.Push(rhs)
	L.Call(2, 1)
	v := L.Get(-1)
	L.Pop(1)
	return v
}
