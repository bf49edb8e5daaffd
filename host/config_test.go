package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		file      string
		neighbors int
		scripts   string
		routes    int
		timeout   time.Duration
		grants    bool // [edbgpd.grants."alerts.lua"] has http-allow and allow
	}{
		{"gobgpd.toml", 1, "", 0, time.Second, false},
		{"gobgpd.yaml", 1, "/etc/edbgpd/scripts", 1, 250 * time.Millisecond, true},
		{"edbgpd.toml", 1, "/etc/edbgpd/scripts", 2, 250 * time.Millisecond, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := host.LoadConfig("testdata/"+tc.file, "toml")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.BGP.Neighbors) != tc.neighbors || c.BGP.Global.Config.As != 64512 {
				t.Errorf("neighbors=%d as=%d", len(c.BGP.Neighbors), c.BGP.Global.Config.As)
			}
			g := c.Options.Grants["alerts.lua"]
			if c.Options.Scripts != tc.scripts || len(c.Options.Routes) != tc.routes || c.Options.Limits().CallTimeout != tc.timeout ||
				(tc.grants && (len(g.HTTPAllow) != 1 || len(g.Allow) != 1)) {
				t.Errorf("options = %+v", c.Options)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // all in the error
	}{
		{"missing.toml", []string{"testdata/missing.toml", "no such file"}},
		{"broken-syntax.toml", []string{"testdata/broken-syntax.toml", "line 3 column", "basic strings cannot have new lines"}},
		{"broken-syntax.yaml", []string{"testdata/broken-syntax.yaml", "line 4"}},
		{"broken-empty.toml", []string{"testdata/broken-empty.toml", "no global section", "remove every neighbour"}},
		{"broken-no-global.toml", []string{"testdata/broken-no-global.toml", "no global section"}},
		{"broken-unknown-key.toml", []string{"testdata/broken-unknown-key.toml", "colour"}},
		{"broken-edbgpd-key.toml", []string{"testdata/broken-edbgpd-key.toml", "[edbgpd]", "line 6", "edbgpd.script"}},
		{"broken-route.toml", []string{"testdata/broken-route.toml", "10.0.0.0/33"}},
		{"broken-neighbor.toml", []string{"testdata/broken-neighbor.toml"}},
		{"broken-kafka.toml", []string{"testdata/broken-kafka.toml", "[edbgpd.kafka]", `acks "most"`}},
		{"broken-grants.toml", []string{"testdata/broken-grants.toml", `[edbgpd.grants."alerts.lua"]`, `http-allow "hooks.example.net/bgp": not an http:// or https:// URL with a host`}},
		{"broken-default-policy.toml", []string{"testdata/broken-default-policy.toml", `default-export-policy "gold"`}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := host.LoadConfig("testdata/"+tc.file, "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
