package luaapi_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

var fuzzFunctions = []string{"log", "peers", "peer", "set_export_policy", "set_default_export_policy", "set_import_policy",
	"preview_export_policy", "reset_peer", "enable_peer", "disable_peer", "announce", "withdraw", "best_path", "lookup",
	"received", "walk", "subscribe", "defined_set_add", "defined_set_remove", "after", "every", "cancel", "persist_state",
	"http_post", "exec", "json_encode", "json_decode", "parse_prefix", "prefix_contains", "prefix_overlap",
	"parse_community", "format_community", "now"}

// luaArg turns fuzz input into a Lua expression of varied type.
func luaArg(kind uint8, s string, n float64) string {
	switch kind % 7 {
	case 0:
		return fmt.Sprintf("%q", s)
	case 1:
		return fmt.Sprintf("%v", n)
	case 2:
		return "nil"
	case 3:
		return fmt.Sprintf("{%q, %v}", s, n)
	case 4:
		return fmt.Sprintf("{prefix = %q, communities = {%q}, med = %v, as_path = {%v}, fn = print, prefixes = {%q}}", s, s, n, n, s)
	case 5:
		return "function() end"
	}
	return "true"
}

// FuzzBgpArgs calls bgp functions with arbitrary arguments: a Lua error is
// fine, a Go panic is not.
func FuzzBgpArgs(f *testing.F) {
	f.Add(uint8(3), uint8(0), "192.0.2.1", 1.0, uint8(0), "full")
	f.Add(uint8(10), uint8(4), "10.0.0.0/8", 5.0, uint8(2), "")
	f.Add(uint8(17), uint8(4), "65000:1", -1.0, uint8(1), "x")
	f.Add(uint8(19), uint8(1), "", 1e300, uint8(5), "")
	f.Add(uint8(26), uint8(0), "{\"a\":[1,2,{}]}", 0.0, uint8(6), "")
	f.Fuzz(func(t *testing.T, fn uint8, k1 uint8, s1 string, n float64, k2 uint8, s2 string) {
		if len(s1) > 200 || len(s2) > 200 {
			return
		}
		name := fuzzFunctions[int(fn)%len(fuzzFunctions)]
		code := fmt.Sprintf("local bgp = require('bgp'); bgp.%s(%s, %s)", name, luaArg(k1, s1, n), luaArg(k2, s2, n))
		L := lua.NewState()
		defer L.Close()
		luaapi.NewModule(luaapi.Options{Script: "f.lua", Actions: &luaapi.Recorder{}, Runtime: &fakeRuntime{},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Preload(L)
		err := L.DoString(code)
		var ae *lua.ApiError
		if errors.As(err, &ae) && (ae.Type == lua.ApiErrorPanic || strings.Contains(ae.Error(), "runtime error")) {
			t.Fatalf("%s: Go panic: %v", code, err)
		}
	})
}
