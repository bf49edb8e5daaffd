// Package mrt reads route collectors' update files (MRT, RFC 6396: the
// BGP4MP and BGP4MP_ET records of RIPE RIS and RouteViews) as a stream of
// records, gzip and bzip2 read as they come.
package mrt

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"

	gmrt "github.com/osrg/gobgp/v3/pkg/packet/mrt"
)

// Kind tells the records edbgpd replays apart.
type Kind int

const (
	Update      Kind = iota + 1 // a BGP UPDATE a collector peer sent
	StateChange                 // a collector peer's session changed state
)

// Established is the FSM state number of a BGP4MP state change (RFC 6396 4.4.1).
const Established = uint16(gmrt.ESTABLISHED)

// Record is one BGP4MP record.
type Record struct {
	Kind    Kind
	Time    time.Time // the record's, to the microsecond with BGP4MP_ET
	Peer    netip.Addr
	PeerAS  uint32
	Local   netip.Addr
	LocalAS uint32
	AS4     bool // the session carries 4-octet AS numbers
	// Message is the whole BGP message (marker, length, type, body) of an
	// Update. It is the reader's buffer: valid until the next Next.
	Message            []byte
	OldState, NewState uint16 // of a StateChange
	File               string
	Offset             int64 // of the record's header in the (decompressed) file
}

// maxRecord bounds one record: a BGP message is at most 65,535 bytes
// (RFC 8654) and the BGP4MP header 44.
const maxRecord = 1 << 17

// Reader reads one file's records in file order.
type Reader struct {
	name    string
	f       *os.File
	r       *bufio.Reader
	off     int64
	buf     []byte
	Skipped map[string]int // records passed over, by what they were
}

// Open opens an MRT file, plain, gzip or bzip2 (told by its first bytes,
// not its name).
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// NewReader reads MRT from in, plain, gzip or bzip2; name is for errors.
func NewReader(name string, in io.Reader) (*Reader, error) {
	rd, err := decompress(bufio.NewReaderSize(in, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return &Reader{name: name, r: bufio.NewReaderSize(rd, 1<<16), Skipped: map[string]int{}}, nil
}

func decompress(b *bufio.Reader) (io.Reader, error) {
	magic, _ := b.Peek(3)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(b)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(b), nil
	}
	return b, nil
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Name is the file's path.
func (r *Reader) Name() string { return r.name }

// Next returns the next BGP4MP record; other records (table dumps, local
// messages, add-path, OPEN and KEEPALIVE messages) are counted in Skipped.
// At the end it returns io.EOF; a damaged or foreign file gives an error
// naming the file and the record's offset.
func (r *Reader) Next() (Record, error) {
	for {
		rec, ok, err := r.next()
		if err != nil || ok {
			return rec, err
		}
	}
}

func (r *Reader) errorf(off int64, format string, a ...any) error {
	return fmt.Errorf("%s: record at offset %d: %s", r.name, off, fmt.Sprintf(format, a...))
}

func (r *Reader) next() (Record, bool, error) {
	off := r.off
	var head [gmrt.MRT_COMMON_HEADER_LEN]byte
	n, err := io.ReadFull(r.r, head[:])
	r.off += int64(n)
	switch {
	case err == io.EOF:
		return Record{}, false, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Record{}, false, r.errorf(off, "truncated header (%d of 12 bytes)", n)
	case err != nil:
		return Record{}, false, r.errorf(off, "%v", err)
	}
	var h gmrt.MRTHeader
	h.DecodeFromBytes(head[:])
	if h.Len > maxRecord {
		return Record{}, false, r.errorf(off, "length %d: not an MRT file, or a damaged one", h.Len)
	}
	if cap(r.buf) < int(h.Len) {
		r.buf = make([]byte, h.Len)
	}
	body := r.buf[:h.Len]
	n, err = io.ReadFull(r.r, body)
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return Record{}, false, r.errorf(off, "truncated (%d of %d bytes)", n, h.Len)
		}
		return Record{}, false, r.errorf(off, "%v", err)
	}
	rec := Record{Time: time.Unix(int64(h.Timestamp), 0), File: r.name, Offset: off}
	switch h.Type {
	case gmrt.BGP4MP:
	case gmrt.BGP4MP_ET:
		if len(body) < 4 {
			return Record{}, false, r.errorf(off, "BGP4MP_ET without its microseconds")
		}
		rec.Time = rec.Time.Add(time.Duration(binary.BigEndian.Uint32(body)%1e6) * time.Microsecond)
		body = body[4:]
	case gmrt.TABLE_DUMP, gmrt.TABLE_DUMPv2:
		r.Skipped["table dump records"]++
		return Record{}, false, nil
	default:
		if h.Type > gmrt.OSPFv3_ET || h.Type < gmrt.NULL {
			return Record{}, false, r.errorf(off, "type %d: not an MRT file, or a damaged one", h.Type)
		}
		r.Skipped[fmt.Sprintf("MRT type %d records", h.Type)]++
		return Record{}, false, nil
	}
	switch gmrt.MRTSubTypeBGP4MP(h.SubType) {
	case gmrt.STATE_CHANGE:
		rec.Kind = StateChange
	case gmrt.STATE_CHANGE_AS4:
		rec.Kind, rec.AS4 = StateChange, true
	case gmrt.MESSAGE:
		rec.Kind = Update
	case gmrt.MESSAGE_AS4:
		rec.Kind, rec.AS4 = Update, true
	default:
		r.Skipped[fmt.Sprintf("BGP4MP subtype %d records", h.SubType)]++
		return Record{}, false, nil
	}
	rest, err := rec.header(body)
	if err != nil {
		return Record{}, false, r.errorf(off, "%v", err)
	}
	if rec.Kind == StateChange {
		if len(rest) < 4 {
			return Record{}, false, r.errorf(off, "state change without its states")
		}
		rec.OldState, rec.NewState = binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:])
		return rec, true, nil
	}
	if len(rest) < 19 || !bytes.Equal(rest[:16], marker[:]) || int(binary.BigEndian.Uint16(rest[16:])) != len(rest) {
		r.Skipped["damaged BGP messages"]++
		return Record{}, false, nil
	}
	if rest[18] != 2 { // OPEN, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH: the session's, not routes
		r.Skipped["BGP messages other than UPDATE"]++
		return Record{}, false, nil
	}
	if !unicast(rest) {
		r.Skipped["UPDATEs of families other than IPv4 and IPv6 unicast"]++
		return Record{}, false, nil
	}
	rec.Message = rest
	return rec, true, nil
}

// unicast tells whether an UPDATE is of IPv4 or IPv6 unicast, the
// families edbgpd's sessions carry: a multicast or VPN UPDATE would reset
// a session that did not negotiate its family. A message whose attributes
// cannot be walked counts as unicast: the speaker judges it, as live.
func unicast(msg []byte) bool {
	b := msg[19:]
	if len(b) < 2 {
		return true
	}
	wl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+wl+2 {
		return true
	}
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < al {
		return true
	}
	b = b[:al]
	for len(b) >= 3 {
		flags, typ := b[0], b[1]
		n, h := int(b[2]), 3
		if flags&0x10 != 0 { // extended length
			if len(b) < 4 {
				return true
			}
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		}
		if len(b) < h+n {
			return true
		}
		if (typ == 14 || typ == 15) && n >= 3 { // MP_REACH_NLRI, MP_UNREACH_NLRI
			afi, safi := binary.BigEndian.Uint16(b[h:]), b[h+2]
			if afi != 1 && afi != 2 || safi != 1 {
				return false
			}
		}
		b = b[h+n:]
	}
	return true
}

var marker = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// header reads the BGP4MP header (RFC 6396 4.4.1-2) into rec.
func (rec *Record) header(b []byte) ([]byte, error) {
	asLen := 2
	if rec.AS4 {
		asLen = 4
	}
	if len(b) < 2*asLen+4 {
		return nil, errors.New("BGP4MP header cut short")
	}
	as := func(b []byte) uint32 {
		if asLen == 4 {
			return binary.BigEndian.Uint32(b)
		}
		return uint32(binary.BigEndian.Uint16(b))
	}
	rec.PeerAS, rec.LocalAS = as(b), as(b[asLen:])
	b = b[2*asLen+2:] // the interface index is of no use here
	afi := binary.BigEndian.Uint16(b)
	b = b[2:]
	var size int
	switch afi {
	case 1:
		size = 4
	case 2:
		size = 16
	default:
		return nil, fmt.Errorf("address family %d", afi)
	}
	if len(b) < 2*size {
		return nil, errors.New("BGP4MP addresses cut short")
	}
	rec.Peer, _ = netip.AddrFromSlice(b[:size])
	rec.Local, _ = netip.AddrFromSlice(b[size : 2*size])
	return b[2*size:], nil
}

// Stream reads several files as one, in time order: files are taken by
// the time of their first record (collectors cut a day into files that do
// not overlap), records of one file in file order.
type Stream struct {
	readers []*Reader
	first   []Record // each reader's first record, read to sort them
	i       int
	Skipped map[string]int
}

// OpenAll opens every file and orders them.
func OpenAll(paths []string) (*Stream, error) {
	s := &Stream{Skipped: map[string]int{}}
	type opened struct {
		r     *Reader
		first Record
		empty bool
	}
	var all []opened
	closeAll := func() {
		for _, o := range all {
			o.r.Close()
		}
	}
	for _, p := range paths {
		r, err := Open(p)
		if err != nil {
			closeAll()
			return nil, err
		}
		rec, err := r.Next()
		if err != nil && err != io.EOF {
			r.Close()
			closeAll()
			return nil, err
		}
		if err == nil {
			rec.Message = append([]byte(nil), rec.Message...)
		}
		all = append(all, opened{r, rec, err == io.EOF})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].first.Time.Before(all[j].first.Time) })
	for _, o := range all {
		s.readers = append(s.readers, o.r)
		if o.empty {
			s.first = append(s.first, Record{})
		} else {
			s.first = append(s.first, o.first)
		}
	}
	return s, nil
}

// Next returns the next record of the stream, io.EOF after the last.
func (s *Stream) Next() (Record, error) {
	for s.i < len(s.readers) {
		if s.first[s.i].Kind != 0 {
			rec := s.first[s.i]
			s.first[s.i] = Record{}
			return rec, nil
		}
		rec, err := s.readers[s.i].Next()
		if err == io.EOF {
			for k, v := range s.readers[s.i].Skipped {
				s.Skipped[k] += v
			}
			s.i++
			continue
		}
		return rec, err
	}
	return Record{}, io.EOF
}

// Close closes every file.
func (s *Stream) Close() {
	for _, r := range s.readers {
		r.Close()
	}
}
