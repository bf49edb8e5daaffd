// Package units reads the values of config files that are more than
// numbers: durations ("250ms") and sizes ("1GiB").
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration reads "1s", "250ms" from TOML and YAML.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Size reads a byte count: "512MiB", "1GiB", "64KiB", "1000000", or
// "off" (-1: no bound).
type Size int64

func (z *Size) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "off" {
		*z = -1
		return nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a number of bytes with KiB, MiB or GiB, or off", string(b))
	}
	*z = Size(n * mult)
	return nil
}
