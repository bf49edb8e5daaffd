package luaapi_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/edbgpd/edbgpd/luaapi"
)

type fake struct{ calls []string }

func (f *fake) SetExportPolicy(peer, policy string) error {
	if policy == "nope" {
		return errors.New(`unknown policy "nope"`)
	}
	f.calls = append(f.calls, "set_export_policy "+peer+" "+policy)
	return nil
}
func (f *fake) SetDefaultExportPolicy(policy string) error {
	f.calls = append(f.calls, "set_default_export_policy "+policy)
	return nil
}
func (f *fake) Peers() ([]luaapi.PeerStatus, error) {
	return []luaapi.PeerStatus{{Address: "192.0.2.2", ASN: 65002, State: "established", ExportPolicy: "full"}}, nil
}

func TestModule(t *testing.T) {
	for _, tc := range []struct {
		name, code string
		err        string // substring of the Lua error; "" for none
		call       string // action recorded; "" for none
	}{
		{"set_export_policy", `assert(bgp.set_export_policy("192.0.2.2", "full") == true)`, "", "set_export_policy 192.0.2.2 full"},
		{"set_export_policy no peer", `bgp.set_export_policy(nil, "full")`, "bad argument #1 to set_export_policy (string expected, got nil)", ""},
		{"set_export_policy empty policy", `bgp.set_export_policy("192.0.2.2", "")`, "bad argument #2 to set_export_policy", ""},
		{"set_export_policy table policy", `bgp.set_export_policy("192.0.2.2", {})`, "bad argument #2 to set_export_policy (string expected, got table)", ""},
		{"set_export_policy refused", `local ok, why = bgp.set_export_policy("192.0.2.2", "nope"); assert(ok == nil and why == 'unknown policy "nope"', why)`, "", ""},
		{"set_default_export_policy", `assert(bgp.set_default_export_policy("default-only"))`, "", "set_default_export_policy default-only"},
		{"set_default_export_policy number", `bgp.set_default_export_policy()`, "bad argument #1 to set_default_export_policy", ""},
		{"peers", `local p = bgp.peers()[1]; assert(p.address == "192.0.2.2" and p.asn == 65002 and p.state == "established" and p.export_policy == "full")`, "", ""},
		{"log", `bgp.log("info", "hello", 1, nil, true)`, "", ""},
		{"log bad level", `bgp.log("loud", "x")`, "bad argument #1 to log", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			f := &fake{}
			luaapi.NewModule(f, slog.New(slog.NewTextHandler(io.Discard, nil))).Preload(L)
			err := L.DoString(`local bgp = require("bgp")` + "\n" + tc.code)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if got := strings.Join(f.calls, ";"); got != tc.call {
				t.Errorf("actions %q, want %q", got, tc.call)
			}
		})
	}
}
