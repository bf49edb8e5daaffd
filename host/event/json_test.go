package event

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestJSONLines: both kinds round-trip with every field; "peer" is the
// same object in both; version 1's peer_state lines still read.
func TestJSONLines(t *testing.T) {
	at := time.Unix(1700000000, 500000000)
	bp := Of((&BestPath{Seq: 3, Prefix: "10.0.0.0/8", Family: "ipv4-unicast", Withdrawal: false,
		Peer: Peer{Address: "192.0.2.2", ASN: 65002, RouterID: "192.0.2.2"}, Timestamp: at}).
		WithAttributes(Attributes{Nexthop: "192.0.2.2", ASPath: []uint32{65002, 64512}, Origin: "igp", MED: 5, HasMED: true,
			Communities: []string{"65000:38"}, LargeCommunities: []string{"65000:1:2"}, ExtendedCommunities: []string{"rt:65000:100"}}))
	ps := OfPeer(&PeerState{Seq: 4, Peer: Peer{Address: "192.0.2.2", ASN: 65002, RouterID: "192.0.2.2"},
		State: "idle", OldState: "established", Reason: "hold timer expired", Timestamp: at})
	for _, ev := range []Event{bp, ps} {
		b, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"peer":{"address":"192.0.2.2","asn":65002,"router_id":"192.0.2.2"}`) {
			t.Errorf("peer not an object: %s", b)
		}
		l, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Marshal(l.Event)
		if string(again) != string(b) {
			t.Errorf("round trip:\n%s\n%s", b, again)
		}
	}
	s, _ := MarshalStream(ps, "192.0.2.1")
	if !strings.Contains(string(s), `"version":2`) || !strings.Contains(string(s), `"router":"192.0.2.1"`) {
		t.Errorf("stream message: %s", s)
	}
	for _, tc := range []struct{ line, want string }{
		{`{"type":"peer_state","peer":"192.0.2.2","asn":65002,"router_id":"192.0.2.9","state":"idle"}`, "192.0.2.2 65002 192.0.2.9 idle"},
		{`{"type":"peer_state","peer":{"address":"192.0.2.2","asn":65002},"state":"established"}`, "192.0.2.2 65002  established"},
	} {
		l, err := Unmarshal([]byte(tc.line))
		if err != nil || l.PeerState == nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		p := l.PeerState
		if got := strings.Join([]string{p.Peer.Address, fmt.Sprint(p.Peer.ASN), p.Peer.RouterID, p.State}, " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{
		`{"type":"peer_state","state":"idle"}`,
		`{"type":"peer_state","peer":7,"state":"idle"}`,
		`{"type":"best_path","prefix":"10.0.0.0/33"}`,
		`{"type":"advance"}`,
		`{"type":"nope"}`,
	} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
