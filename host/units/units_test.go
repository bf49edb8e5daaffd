package units_test

import (
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/host/units"
)

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want units.Size
		err  bool
	}{
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"64 KiB", 64 << 10, false},
		{"1000000", 1000000, false},
		{"off", -1, false},
		{"1GB", 0, true},
		{"-5", 0, true},
		{"", 0, true},
	} {
		var z units.Size
		err := z.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.err || (!tc.err && z != tc.want) {
			t.Errorf("%q: %d, %v", tc.in, z, err)
		}
	}
}

func TestDuration(t *testing.T) {
	var d units.Duration
	if err := d.UnmarshalText([]byte("250ms")); err != nil || time.Duration(d) != 250*time.Millisecond {
		t.Errorf("250ms: %v %v", time.Duration(d), err)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("soon: no error")
	}
}
