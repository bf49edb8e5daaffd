package speaker

import (
	"strconv"
	"sync/atomic"

	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/edbgpd/edbgpd/host/event"
)

// GoBGP's watcher hands each path over with its NLRI and attributes as
// anypb messages. apiutil turns those into GoBGP's native types through
// protobuf reflection: measured 6 µs and 39 allocations per path, most of
// a script's cost on a full table. For the messages every path carries,
// edbgpd reads the protobuf wire format itself (protowire); anything else
// goes through apiutil as before.

const apiType = "type.googleapis.com/apipb."

// pbField is one field of a protobuf message: a varint (x) or bytes (b).
type pbField struct {
	num protowire.Number
	x   uint64
	b   []byte
}

// pbReader walks the fields of a message without allocating.
type pbReader struct {
	b   []byte
	bad bool
}

func (r *pbReader) next(f *pbField) bool {
	if len(r.b) == 0 || r.bad {
		return false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.bad = true
		return false
	}
	r.b = r.b[n:]
	f.num, f.x, f.b = num, 0, nil
	switch typ {
	case protowire.VarintType:
		f.x, n = protowire.ConsumeVarint(r.b)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(r.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, r.b)
	}
	if n < 0 {
		r.bad = true
		return false
	}
	r.b = r.b[n:]
	return true
}

// uint32s appends the members of a repeated uint32 field, packed (b) or
// not (x).
func uint32s(dst []uint32, f *pbField) ([]uint32, bool) {
	if f.b == nil {
		return append(dst, uint32(f.x)), true
	}
	for b := f.b; len(b) > 0; {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return dst, false
		}
		dst = append(dst, uint32(x))
		b = b[n:]
	}
	return dst, true
}

// wirePrefix reads an IPAddressPrefix NLRI (IPv4 and IPv6 unicast) as
// "prefix/len"; ok is false for any other NLRI.
func wirePrefix(nlri *anypb.Any) (string, bool) {
	if nlri == nil || nlri.TypeUrl != apiType+"IPAddressPrefix" {
		return "", false
	}
	var length uint64
	var prefix []byte
	r, f := pbReader{b: nlri.Value}, pbField{}
	for r.next(&f) {
		switch f.num {
		case 1:
			length = f.x
		case 2:
			prefix = f.b
		}
	}
	if r.bad || prefix == nil {
		return "", false
	}
	buf := make([]byte, 0, len(prefix)+4)
	buf = append(buf, prefix...)
	buf = append(buf, '/')
	buf = strconv.AppendUint(buf, length, 10)
	return string(buf), true
}

// decodeWire fills a from the attributes it can read from the wire
// format, and returns those it cannot, for apiutil.
func decodeWire(a *event.Attributes, attrs []*anypb.Any) (rest []*anypb.Any) {
	var f pbField
	for _, any := range attrs {
		r := pbReader{b: any.Value}
		ok := true
		switch any.TypeUrl {
		case apiType + "OriginAttribute":
			a.Origin = origins[0]
			for r.next(&f) {
				if f.num == 1 && f.x < uint64(len(origins)) {
					a.Origin = origins[f.x]
				}
			}
		case apiType + "AsPathAttribute":
			a.ASPath = make([]uint32, 0, len(any.Value)/3)
			for r.next(&f) {
				if f.num != 1 {
					continue
				}
				seg, sf := pbReader{b: f.b}, pbField{}
				for seg.next(&sf) {
					if sf.num == 2 {
						a.ASPath, ok = uint32s(a.ASPath, &sf)
					}
				}
				ok = ok && !seg.bad
			}
		case apiType + "NextHopAttribute":
			for r.next(&f) {
				if f.num == 1 {
					a.Nexthop = string(f.b)
				}
			}
		case apiType + "MpReachNLRIAttribute":
			for r.next(&f) {
				if f.num == 2 && a.Nexthop == "" {
					a.Nexthop = string(f.b) // the first next hop, as apiutil's
				}
			}
		case apiType + "MultiExitDiscAttribute":
			a.HasMED = true
			for r.next(&f) {
				if f.num == 1 {
					a.MED = uint32(f.x)
				}
			}
		case apiType + "LocalPrefAttribute":
			a.HasLocalPref = true
			for r.next(&f) {
				if f.num == 1 {
					a.LocalPref = uint32(f.x)
				}
			}
		case apiType + "CommunitiesAttribute":
			var vals [32]uint32
			list := vals[:0]
			for r.next(&f) {
				if f.num == 1 {
					list, ok = uint32s(list, &f)
				}
			}
			a.Communities = make([]string, len(list))
			for i, v := range list {
				a.Communities[i] = communityString(v)
			}
		case apiType + "LargeCommunitiesAttribute":
			for r.next(&f) {
				if f.num != 1 {
					continue
				}
				var v [3]uint64
				c, cf := pbReader{b: f.b}, pbField{}
				for c.next(&cf) {
					if cf.num >= 1 && cf.num <= 3 {
						v[cf.num-1] = cf.x
					}
				}
				a.LargeCommunities = append(a.LargeCommunities, strconv.FormatUint(v[0], 10)+":"+strconv.FormatUint(v[1], 10)+":"+strconv.FormatUint(v[2], 10))
				ok = ok && !c.bad
			}
		default:
			rest = append(rest, any)
			continue
		}
		if r.bad || !ok {
			rest = append(rest, any) // let apiutil say what is wrong
		}
	}
	return rest
}

// communityString renders a community as "65000:38". Tables repeat a few
// thousand communities over and over: the strings are kept in a small
// direct-mapped cache, shared by the script goroutines without a lock.
func communityString(v uint32) string {
	slot := &communities[(v*2654435761)>>(32-communityCacheBits)]
	if e := slot.Load(); e != nil && e.v == v {
		return e.s
	}
	s := strconv.FormatUint(uint64(v>>16), 10) + ":" + strconv.FormatUint(uint64(v&0xffff), 10)
	slot.Store(&communityEntry{v: v, s: s})
	return s
}

const communityCacheBits = 13

type communityEntry struct {
	v uint32
	s string
}

var communities [1 << communityCacheBits]atomic.Pointer[communityEntry]

// decodeRest decodes with apiutil what decodeWire left.
func decodeRest(a *event.Attributes, rest []*anypb.Any) error {
	if len(rest) == 0 {
		return nil
	}
	native, err := apiutil.UnmarshalPathAttributes(rest)
	if err != nil {
		return err
	}
	setAttributes(a, native)
	return nil
}
