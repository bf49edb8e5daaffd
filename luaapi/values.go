package luaapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/host/event"
)

// maxDepth bounds nesting when converting tables, so a very deep
// structure is an error, not a stack overflow.
const maxDepth = 64

// maxValues bounds the values one conversion yields. A table that
// appears twice is converted once but counts each time, since JSON
// writes it each time: a small chain of shared tables ({a = t, b = t},
// 40 deep) would otherwise expand to 2^40 values.
const maxValues = 4_000_000

// maxBytes bounds the bytes of strings one conversion yields, counted
// each time they appear, for the same reason.
const maxBytes = 128 << 20

// ToGo converts a Lua value to plain Go: nil, bool, float64, string,
// []any (a table with keys 1..n) or map[string]any (other tables; keys
// must be strings or numbers, numbers become their decimal form).
// Functions, userdata and threads are errors, as are a table that
// contains itself and more than maxValues values. A table that appears
// more than once gives the same Go value each time: read, do not modify.
func ToGo(v lua.LValue) (any, error) {
	c := toGoConv{memo: make(map[*lua.LTable]converted), open: make(map[*lua.LTable]bool), maxValues: maxValues}
	return c.toGo(v, 0)
}

// scriptValues bounds a conversion made in a script's call (json_encode,
// http_post bodies): with the deadline looked at as it goes, the call
// ends in time, JSON encoding included.
const scriptValues = 1_000_000

// toGoIn is ToGo in a script's call: bounded to scriptValues and stopped
// at the call's deadline.
func toGoIn(L *lua.LState, v lua.LValue) (any, error) {
	c := toGoConv{memo: make(map[*lua.LTable]converted), open: make(map[*lua.LTable]bool), maxValues: scriptValues}
	if ctx := L.Context(); ctx != nil {
		c.done = ctx.Done()
	}
	return c.toGo(v, 0)
}

type converted struct {
	v             any
	values, bytes int // what it counts for
}

type toGoConv struct {
	memo          map[*lua.LTable]converted
	open          map[*lua.LTable]bool // tables being converted: seeing one again is a cycle
	values, bytes int
	maxValues     int
	done          <-chan struct{} // the call's deadline; nil: none
}

func (c *toGoConv) count(values, bytes int) error {
	c.values += values
	c.bytes += bytes
	if c.values > c.maxValues {
		return fmt.Errorf("more than %d values (a table shared in many places counts each time)", c.maxValues)
	}
	if c.done != nil && c.values&4095 == 0 {
		select {
		case <-c.done:
			return errors.New("cut off (call deadline)")
		default:
		}
	}
	if c.bytes > maxBytes {
		return fmt.Errorf("more than %d MiB of strings (a string or table shared in many places counts each time)", maxBytes>>20)
	}
	return nil
}

func (c *toGoConv) toGo(v lua.LValue, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if err := c.count(1, 0); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		return float64(v), nil
	case lua.LString:
		return string(v), c.count(0, len(v))
	case *lua.LTable:
		if c.open[v] {
			return nil, errors.New("a table that contains itself (a cycle)")
		}
		if done, ok := c.memo[v]; ok {
			return done.v, c.count(done.values-1, done.bytes)
		}
		values, bytes := c.values-1, c.bytes
		c.open[v] = true
		x, err := c.table(v, depth)
		delete(c.open, v)
		if err != nil {
			return nil, err
		}
		c.memo[v] = converted{x, c.values - values, c.bytes - bytes}
		return x, nil
	case *lua.LUserData:
		if ev, ok := v.Value.(*eventView); ok {
			m := eventGo(ev)
			for k, own := range ev.own {
				x, err := c.toGo(own, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = x
			}
			return m, c.count(len(m), 0)
		}
	}
	return nil, fmt.Errorf("cannot convert a %s", v.Type())
}

// eventGo is a best path as plain Go, with the field names scripts read
// (those of the JSON Lines format, which shares them), for JSON and for
// copies into bgp.state.
func eventGo(v *eventView) map[string]any {
	m := map[string]any{}
	if b, err := event.Marshal(event.Of(v.e)); err == nil {
		json.Unmarshal(b, &m)
	}
	if v.d.Replay {
		m["replay"] = true
	}
	if v.d.Skipped > 0 {
		m["coalesced"], m["skipped"] = true, float64(v.d.Skipped)
	}
	if v.d.Previous != nil {
		m["previous"] = eventGo(&eventView{e: v.d.Previous})
	}
	return m
}

func (c *toGoConv) table(v *lua.LTable, depth int) (any, error) {
	if n := v.Len(); n > 0 && countKeys(v) == n {
		list := make([]any, 0, n)
		for i := 1; i <= n; i++ {
			x, err := c.toGo(v.RawGetInt(i), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		return list, nil
	}
	m := make(map[string]any)
	var err error
	v.ForEach(func(k, val lua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch k := k.(type) {
		case lua.LString:
			key = string(k)
			err = c.count(0, len(k))
		case lua.LNumber:
			key = strconv.FormatFloat(float64(k), 'f', -1, 64)
		default:
			err = fmt.Errorf("table key of type %s", k.Type())
			return
		}
		if err != nil {
			return
		}
		var x any
		if x, err = c.toGo(val, depth+1); err == nil {
			m[key] = x
		}
	})
	return m, err
}

// isList tells whether t has keys 1..n only: {"a", "b"}, not {x = "a"}.
func isList(t *lua.LTable) bool { return countKeys(t) == t.Len() }

func countKeys(t *lua.LTable) int {
	n := 0
	t.ForEach(func(lua.LValue, lua.LValue) { n++ })
	return n
}

// FromGo builds the Lua value of a plain Go value (as ToGo or
// encoding/json produce).
func FromGo(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case uint32:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []string:
		return stringList(L, v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, x := range v {
			t.Append(FromGo(L, x))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, FromGo(L, v[k]))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// EncodeJSON renders a Lua value as JSON. NaN and infinities are errors.
func EncodeJSON(v lua.LValue) ([]byte, error) {
	g, err := ToGo(v)
	if err != nil {
		return nil, err
	}
	return marshalFinite(g)
}

// encodeJSONIn is EncodeJSON in a script's call (see toGoIn).
func encodeJSONIn(L *lua.LState, v lua.LValue) ([]byte, error) {
	g, err := toGoIn(L, v)
	if err != nil {
		return nil, err
	}
	return marshalFinite(g)
}

func marshalFinite(g any) ([]byte, error) {
	if err := finite(g); err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

func finite(v any) error {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%v has no JSON form", v)
		}
	case []any:
		for _, x := range v {
			if err := finite(x); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, x := range v {
			if err := finite(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeJSON parses JSON into a Lua value.
func DecodeJSON(L *lua.LState, data []byte) (lua.LValue, error) {
	var g any
	if err := json.Unmarshal(data, &g); err != nil {
		return lua.LNil, err
	}
	return FromGo(L, g), nil
}

// CopyTable deep-copies a table of one state into another, keeping key
// types. Each table is copied once: shared tables stay shared and cycles
// stay cycles. A best path becomes a table of its fields. Functions,
// other userdata and tables nested deeper than maxDepth are left out
// (they belong to the old state, or would take Go's stack); the count of
// left-out values is returned.
func CopyTable(dst *lua.LState, src *lua.LTable) (*lua.LTable, int) {
	skipped := 0
	copies := make(map[*lua.LTable]*lua.LTable)
	var cp func(v lua.LValue, depth int) lua.LValue
	cp = func(v lua.LValue, depth int) lua.LValue {
		switch v := v.(type) {
		case *lua.LNilType, lua.LBool, lua.LNumber, lua.LString:
			return v
		case *lua.LTable:
			if t, ok := copies[v]; ok {
				return t
			}
			if depth > maxDepth {
				skipped++
				return lua.LNil
			}
			t := dst.CreateTable(v.Len(), 0)
			copies[v] = t
			v.ForEach(func(k, val lua.LValue) {
				nk, nv := cp(k, depth+1), cp(val, depth+1)
				if nk != lua.LNil && nv != lua.LNil {
					t.RawSet(nk, nv)
				}
			})
			return t
		case *lua.LUserData:
			if ev, ok := v.Value.(*eventView); ok {
				t := FromGo(dst, eventGo(ev)).(*lua.LTable)
				for k, own := range ev.own {
					if nv := cp(own, depth+1); nv != lua.LNil {
						t.RawSetString(k, nv)
					}
				}
				return t
			}
		}
		skipped++
		return lua.LNil
	}
	return cp(src, 0).(*lua.LTable), skipped
}
