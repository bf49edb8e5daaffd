package sandbox

import (
	"bytes"
	"fmt"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

const (
	// MaxSource bounds a chunk: a script file, a lib/ module, or what
	// load and loadstring are given. A 10 MB "script" is a mistake (a
	// log or a dump saved in the wrong folder), not something to parse.
	MaxSource = 4 << 20
	// MaxNesting bounds brackets and blocks in a chunk, as Lua's own
	// parser does ("too many syntax levels"). gopher-lua's parser slows
	// down with depth (seconds at 10^6) and its compiler recurses on
	// Go's stack, which ends the process when it overflows.
	MaxNesting = 200
	// maxTreeDepth bounds the syntax tree the compiler walks: long chains
	// of operators (1+1+...) nest there without brackets.
	maxTreeDepth = 1000
)

// Compile parses and compiles a chunk, refusing what would make
// gopher-lua's parser or compiler run away: over MaxSource bytes, nested
// deeper than MaxNesting, or a syntax tree deeper than maxTreeDepth.
// Errors start with name:line.
func Compile(src []byte, name string) (*lua.FunctionProto, error) {
	if len(src) > MaxSource {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d MiB a chunk may have", name, len(src), MaxSource>>20)
	}
	if line, ok := nestingWithin(src, MaxNesting); !ok {
		return nil, fmt.Errorf("%s:%d: nested deeper than %d levels (brackets or blocks)", name, line, MaxNesting)
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil, err
	}
	if line, ok := treeWithin(chunk, maxTreeDepth); !ok {
		return nil, fmt.Errorf("%s:%d: expression nested deeper than %d levels", name, line, maxTreeDepth)
	}
	return lua.Compile(chunk, name)
}

// Load compiles src as a function of L (see Compile).
func Load(L *lua.LState, src []byte, name string) (*lua.LFunction, error) {
	proto, err := Compile(src, name)
	if err != nil {
		return nil, err
	}
	return L.NewFunctionFromProto(proto), nil
}

// nestingWithin scans src as Lua's lexer would (strings and comments
// skipped) and reports whether brackets and blocks nest at most limit
// deep; if not, the line where they pass it.
func nestingWithin(src []byte, limit int) (int, bool) {
	depth, line := 0, 1
	open := func() bool { depth++; return depth <= limit }
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			line++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			i += 2
			if lvl, ok := longBracket(src, i); ok {
				i, line = skipLong(src, i, lvl, line)
				continue
			}
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i-- // the newline is counted by the loop
		case c == '"' || c == '\'':
			for i++; i < len(src) && src[i] != c; i++ {
				switch src[i] {
				case '\\':
					i++
					if i < len(src) && src[i] == '\n' {
						line++
					}
				case '\n':
					line++
				}
			}
		case c == '[':
			if lvl, ok := longBracket(src, i); ok {
				i, line = skipLong(src, i, lvl, line)
				continue
			}
			if !open() {
				return line, false
			}
		case c == '(' || c == '{':
			if !open() {
				return line, false
			}
		case c == ')' || c == '}' || c == ']':
			depth--
		case isAlpha(c) || c == '_':
			j := i
			for j < len(src) && (isAlpha(src[j]) || src[j] == '_' || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			switch string(src[i:j]) {
			case "do", "then", "function", "repeat":
				if !open() {
					return line, false
				}
			case "end", "until", "elseif":
				depth--
			}
			i = j - 1
		}
	}
	return line, true
}

// longBracket reports whether src[i:] opens a long bracket "[==[", and
// its level.
func longBracket(src []byte, i int) (int, bool) {
	if i >= len(src) || src[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	return j - i - 1, j < len(src) && src[j] == '['
}

// skipLong skips the long string or comment opened at src[i] and returns
// the index of its last character and the line there.
func skipLong(src []byte, i, level, line int) (int, int) {
	closing := append(append([]byte{']'}, bytes.Repeat([]byte{'='}, level)...), ']')
	rest := src[i+level+2:]
	end := bytes.Index(rest, closing)
	if end < 0 {
		end = len(rest)
	} else {
		end += len(closing)
	}
	line += bytes.Count(rest[:end], []byte{'\n'})
	return i + level + 2 + end - 1, line
}

// treeWithin reports whether the syntax tree is at most limit deep; if
// not, the line of a node past it. Its own recursion stops at limit.
func treeWithin(chunk []ast.Stmt, limit int) (int, bool) {
	w := treeWalk{limit: limit}
	w.stmts(chunk, 0)
	return w.line, !w.over
}

type treeWalk struct {
	limit int
	over  bool
	line  int
}

func (w *treeWalk) deep(n ast.PositionHolder, d int) bool {
	if w.over {
		return true
	}
	if d > w.limit {
		w.over, w.line = true, n.Line()
		return true
	}
	return false
}

func (w *treeWalk) stmts(l []ast.Stmt, d int) {
	for _, s := range l {
		w.stmt(s, d)
	}
}

func (w *treeWalk) exprs(l []ast.Expr, d int) {
	for _, e := range l {
		w.expr(e, d)
	}
}

func (w *treeWalk) stmt(s ast.Stmt, d int) {
	if w.deep(s, d) {
		return
	}
	d++
	switch s := s.(type) {
	case *ast.AssignStmt:
		w.exprs(s.Lhs, d)
		w.exprs(s.Rhs, d)
	case *ast.LocalAssignStmt:
		w.exprs(s.Exprs, d)
	case *ast.FuncCallStmt:
		w.expr(s.Expr, d)
	case *ast.DoBlockStmt:
		w.stmts(s.Stmts, d)
	case *ast.WhileStmt:
		w.expr(s.Condition, d)
		w.stmts(s.Stmts, d)
	case *ast.RepeatStmt:
		w.expr(s.Condition, d)
		w.stmts(s.Stmts, d)
	case *ast.IfStmt:
		w.expr(s.Condition, d)
		w.stmts(s.Then, d)
		w.stmts(s.Else, d)
	case *ast.NumberForStmt:
		w.exprs([]ast.Expr{s.Init, s.Limit, s.Step}, d)
		w.stmts(s.Stmts, d)
	case *ast.GenericForStmt:
		w.exprs(s.Exprs, d)
		w.stmts(s.Stmts, d)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			w.expr(s.Name.Func, d)
			w.expr(s.Name.Receiver, d)
		}
		w.expr(s.Func, d)
	case *ast.ReturnStmt:
		w.exprs(s.Exprs, d)
	}
}

func (w *treeWalk) expr(e ast.Expr, d int) {
	if e == nil || w.deep(e, d) {
		return
	}
	d++
	switch e := e.(type) {
	case *ast.AttrGetExpr:
		w.expr(e.Object, d)
		w.expr(e.Key, d)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			w.expr(f.Key, d)
			w.expr(f.Value, d)
		}
	case *ast.FuncCallExpr:
		w.expr(e.Func, d)
		w.expr(e.Receiver, d)
		w.exprs(e.Args, d)
	case *ast.LogicalOpExpr:
		w.expr(e.Lhs, d)
		w.expr(e.Rhs, d)
	case *ast.RelationalOpExpr:
		w.expr(e.Lhs, d)
		w.expr(e.Rhs, d)
	case *ast.StringConcatOpExpr:
		w.expr(e.Lhs, d)
		w.expr(e.Rhs, d)
	case *ast.ArithmeticOpExpr:
		w.expr(e.Lhs, d)
		w.expr(e.Rhs, d)
	case *ast.UnaryMinusOpExpr:
		w.expr(e.Expr, d)
	case *ast.UnaryNotOpExpr:
		w.expr(e.Expr, d)
	case *ast.UnaryLenOpExpr:
		w.expr(e.Expr, d)
	case *ast.FunctionExpr:
		w.stmts(e.Stmts, d)
	}
}
