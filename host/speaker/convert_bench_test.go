package speaker

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// risPaths reads up to n announcements from a RIPE RIS update dump in
// testdata/ris as GoBGP API paths, the form WatchEvent hands over.
func risPaths(b testing.TB, n int) []*api.Path {
	paths, err := readRIS(n)
	if err != nil {
		b.Fatal(err)
	}
	if len(paths) == 0 {
		b.Fatal("no paths in the RIS data (testdata/ris)")
	}
	return paths
}

func readRIS(n int) ([]*api.Path, error) {
	f, err := os.Open(bgptest.RISFile("updates.20160811.1600.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var paths []*api.Path
	hdr := make([]byte, mrt.MRT_COMMON_HEADER_LEN)
	for len(paths) < n {
		if _, err := io.ReadFull(z, hdr); err != nil {
			break
		}
		h := &mrt.MRTHeader{}
		if err := h.DecodeFromBytes(hdr); err != nil {
			return nil, err
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
		if _, err := io.ReadFull(z, body); err != nil {
			break
		}
		m, err := mrt.ParseMRTBody(h, body)
		if err != nil {
			continue
		}
		msg, ok := m.Body.(*mrt.BGP4MPMessage)
		if !ok || msg.BGPMessage == nil {
			continue
		}
		u, ok := msg.BGPMessage.Body.(*bgp.BGPUpdate)
		if !ok {
			continue
		}
		for _, nlri := range u.NLRI {
			p, err := apiutil.NewPath(nlri, false, u.PathAttributes, time.Now())
			if err == nil {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// BenchmarkBestPathEvent: what one best path costs before a script sees
// it, when the script reads only the prefix (lazy) and when it reads an
// attribute (all decoded).
func BenchmarkBestPathEvent(b *testing.B) {
	paths := risPaths(b, 20000)
	c := newConverter(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	for _, bc := range []struct {
		name  string
		attrs bool
	}{{"prefix-only", false}, {"all-attributes", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				ev, err := c.bestPathEvent(paths[i%len(paths)])
				if err != nil {
					b.Fatal(err)
				}
				if bc.attrs {
					ev.Attrs()
				}
			}
		})
	}
}
