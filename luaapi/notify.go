package luaapi

import (
	lua "github.com/yuin/gopher-lua"
)

// bgp.http_post(url, value, [callback]) -> true | nil, reason
// value is sent as JSON. callback(result) runs later on the script's
// goroutine with {ok, status, output, error}.
func (m *Module) httpPost(L *lua.LState) int {
	url := L.CheckString(1)
	body, err := encodeJSONIn(L, L.CheckAny(2))
	if err != nil {
		L.ArgError(2, "bgp.http_post: "+err.Error())
	}
	cb := optFunction(L, 3, "bgp.http_post")
	return m.notify(L, "http_post", Notification{URL: url, Body: body}, cb, "url", url)
}

// bgp.exec(command, {args...}, [callback]) -> true | nil, reason
// Runs command directly (no shell), with a timeout.
func (m *Module) exec(L *lua.LState) int {
	cmd := L.CheckString(1)
	var args []string
	if t, ok := L.Get(2).(*lua.LTable); ok {
		if !isList(t) {
			L.ArgError(2, "bgp.exec: arguments must be a list of strings")
		}
		for i := 1; i <= t.Len(); i++ {
			s, isStr := t.RawGetInt(i).(lua.LString)
			if !isStr {
				L.ArgError(2, "bgp.exec: arguments must be strings")
			}
			args = append(args, string(s))
		}
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "bgp.exec: arguments must be a list of strings")
	}
	cb := optFunction(L, 3, "bgp.exec")
	return m.notify(L, "exec", Notification{Command: cmd, Args: args}, cb, "command", cmd, "args", args)
}

func optFunction(L *lua.LState, n int, fn string) *lua.LFunction {
	switch v := L.Get(n).(type) {
	case *lua.LNilType:
		return nil
	case *lua.LFunction:
		return v
	}
	L.ArgError(n, fn+": callback must be a function")
	return nil
}

func (m *Module) notify(L *lua.LState, action string, n Notification, cb *lua.LFunction, args ...any) int {
	rt := m.Runtime
	err := m.Actions.Notify(m.Script, n, func(r NotifyResult) {
		if !r.OK {
			m.Log.Warn("notification failed", "action", action, "status", r.Status, "err", r.Error)
		}
		if cb != nil {
			rt.Callback(cb, map[string]any{"ok": r.OK, "status": r.Status, "output": r.Output, "error": r.Error})
		}
	})
	m.audit(L, action, err, args...)
	return result(L, err)
}
