package mrt

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edbgpd/edbgpd/internal/bgptest"
)

var risFiles = []string{
	bgptest.RISFile("updates.20160811.1600.gz"),
	bgptest.RISFile("updates.20070211.0141.gz"),
}

type summary struct {
	updates, states, as4, v6 int
	peers                    map[string]bool
	first, last              time.Time
}

func readAll(t *testing.T, s interface{ Next() (Record, error) }) (summary, error) {
	t.Helper()
	sum := summary{peers: map[string]bool{}}
	for {
		rec, err := s.Next()
		if err == io.EOF {
			return sum, nil
		}
		if err != nil {
			return sum, err
		}
		switch rec.Kind {
		case Update:
			sum.updates++
			if len(rec.Message) < 19 || rec.Message[18] != 2 {
				t.Fatalf("%s offset %d: not an UPDATE", rec.File, rec.Offset)
			}
		case StateChange:
			sum.states++
		}
		if rec.AS4 {
			sum.as4++
		}
		if rec.Peer.Is6() {
			sum.v6++
		}
		sum.peers[rec.Peer.String()] = true
		if sum.first.IsZero() {
			sum.first = rec.Time
		}
		sum.last = rec.Time
	}
}

// TestRealFiles: the two RIS files read whole, as what they are (counts
// checked against the files' own make-up: AS4 or not, IPv6 peers, a
// 5- or 15-minute window).
func TestRealFiles(t *testing.T) {
	tests := []struct {
		file            string
		as4, v6, states bool
		span            time.Duration
		skipped         string
	}{
		{file: risFiles[0], as4: true, v6: true, states: true, span: 5 * time.Minute, skipped: "BGP messages other than UPDATE"},
		{file: risFiles[1], as4: false, v6: true, states: false, span: 15 * time.Minute, skipped: "UPDATEs of families other than IPv4 and IPv6 unicast"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			r, err := Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sum, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if sum.updates < 10000 || len(sum.peers) < 20 {
				t.Errorf("%d updates of %d peers; the file has over 10,000 of over 20", sum.updates, len(sum.peers))
			}
			if (sum.as4 == sum.updates+sum.states) != tt.as4 || (sum.as4 == 0) == tt.as4 {
				t.Errorf("%d of %d records AS4; want all: %v", sum.as4, sum.updates+sum.states, tt.as4)
			}
			if (sum.v6 > 0) != tt.v6 || (sum.states > 0) != tt.states {
				t.Errorf("IPv6 peers' records %d, state changes %d", sum.v6, sum.states)
			}
			if span := sum.last.Sub(sum.first); span > tt.span || span < tt.span-time.Minute {
				t.Errorf("records span %s, the file %s", span, tt.span)
			}
			if r.Skipped[tt.skipped] == 0 {
				t.Errorf("skipped %v; want some %s", r.Skipped, tt.skipped)
			}
		})
	}
}

// TestBzip2: a bzip2 file (the first 300 records of the 2016 file) reads
// as the same records as the gzip one.
func TestBzip2(t *testing.T) {
	b, err := Open("testdata/ris-300.mrt.bz2")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g, err := Open(risFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := 0
	for {
		rb, err := b.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rg, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rb.Time != rg.Time || rb.Peer != rg.Peer || !bytes.Equal(rb.Message, rg.Message) || rb.Offset != rg.Offset {
			t.Fatalf("record %d: bzip2 %+v, gzip %+v", n, rb, rg)
		}
		n++
	}
	if n < 250 {
		t.Fatalf("%d records from the bzip2 file", n)
	}
}

// TestStreamOrder: files given out of order are read in time order.
func TestStreamOrder(t *testing.T) {
	s, err := OpenAll([]string{risFiles[0], risFiles[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last time.Time
	n := 0
	for {
		rec, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Time.Year() == 2007 && last.Year() == 2016 {
			t.Fatalf("record %d: a 2007 record after 2016 ones", n)
		}
		last = rec.Time
		n++
	}
	if last.Year() != 2016 || n < 40000 {
		t.Fatalf("%d records, the last of %s", n, last)
	}
}

// record builds an MRT record.
func record(typ, subtype uint16, body []byte) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint32(h, 1470931200)
	binary.BigEndian.PutUint16(h[4:], typ)
	binary.BigEndian.PutUint16(h[6:], subtype)
	binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
	return append(h, body...)
}

// bgp4mpAS4 is a BGP4MP_MESSAGE_AS4 body (IPv4 peer 192.0.2.1, AS 65001)
// around msg.
func bgp4mpAS4(msg []byte) []byte {
	b := []byte{0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea, 0, 0, 0, 1, 192, 0, 2, 1, 192, 0, 2, 2}
	return append(b, msg...)
}

var emptyUpdate = append(bytes.Repeat([]byte{0xff}, 16), 0, 23, 2, 0, 0, 0, 0)

func decompressed(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDamaged: bad input gives an error naming the file and the record's
// offset, or is skipped with a count; never a panic.
func TestDamaged(t *testing.T) {
	real := decompressed(t, risFiles[0])
	et := record(17, 4, append([]byte{0, 7, 0xa1, 0x20}, bgp4mpAS4(emptyUpdate)...)) // 500,000 µs
	tests := []struct {
		name    string
		data    []byte
		err     string // "" : no error
		records int
		skipped string
	}{
		{name: "cut in a header", data: real[:len(real)-len(real)%7-5], err: "record at offset"},
		{name: "cut in a body", data: append(append([]byte{}, real[:1000]...), record(16, 4, bgp4mpAS4(emptyUpdate))[:30]...), err: "truncated"},
		{name: "not MRT", data: []byte(strings.Repeat("this is a text file, not MRT\n", 20)), err: "not an MRT file"},
		{name: "unknown subtype", data: append(record(16, 8, bgp4mpAS4(emptyUpdate)), record(16, 4, bgp4mpAS4(emptyUpdate))...), records: 1, skipped: "BGP4MP subtype 8 records"},
		{name: "table dump", data: append(record(13, 2, []byte{1, 2, 3}), record(16, 4, bgp4mpAS4(emptyUpdate))...), records: 1, skipped: "table dump records"},
		{name: "damaged BGP header", data: record(16, 4, bgp4mpAS4(append(bytes.Repeat([]byte{0xff}, 16), 0, 99, 2, 0, 0, 0, 0))), records: 0, skipped: "damaged BGP messages"},
		{name: "BGP4MP_ET", data: et, records: 1},
		{name: "unknown address family", data: record(16, 4, []byte{0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 9, 1, 2, 3, 4}), err: "address family 9"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			os.WriteFile(path, tt.data, 0o644)
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sum, err := readAll(t, r)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path+": record at offset")):
				t.Fatalf("error %v; want one naming %s, the offset and %q", err, path, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err == "" && sum.updates+sum.states != tt.records:
				t.Fatalf("%d records; want %d", sum.updates+sum.states, tt.records)
			case tt.skipped != "" && r.Skipped[tt.skipped] != 1:
				t.Fatalf("skipped %v; want one %s", r.Skipped, tt.skipped)
			}
			if tt.name == "BGP4MP_ET" && sum.first.Nanosecond() != 500000*1000 {
				t.Fatalf("time %s; want .5 s", sum.first)
			}
		})
	}
}

// FuzzReader: whatever the bytes, the reader returns records or an
// error. Seeds: the start of both real files, decompressed.
func FuzzReader(f *testing.F) {
	for _, file := range risFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		head := make([]byte, 8192)
		n, _ := io.ReadFull(z, head)
		f.Add(head[:n])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.mrt"
		r, err := NewReader(path, bytes.NewReader(data))
		if err != nil {
			return
		}
		for range 10000 {
			rec, err := r.Next()
			if err != nil {
				if err != io.EOF && !strings.Contains(err.Error(), path) {
					t.Fatalf("error without the file's name: %v", err)
				}
				return
			}
			if rec.Kind == Update && (len(rec.Message) < 19 || !unicast(rec.Message)) {
				t.Fatalf("record %+v", rec)
			}
		}
	})
}
