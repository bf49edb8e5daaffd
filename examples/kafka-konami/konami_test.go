package main

import "testing"

// TestOrderAcrossPartitions: the decision goes by seq, not by the order in
// which partitions deliver.
func TestOrderAcrossPartitions(t *testing.T) {
	path := func(seq uint64, c string) message {
		m := message{Version: schema, Type: "best_path", Seq: seq, Prefix: watched, Communities: []string{c}}
		m.Peer.Address = "192.0.2.2"
		return m
	}
	state := func(seq uint64, old, now string) message {
		m := message{Version: schema, Type: "peer_state", Seq: seq, OldState: old, State: now}
		m.Peer.Address = "192.0.2.2"
		return m
	}
	var codeMsgs []message
	for i, c := range code {
		codeMsgs = append(codeMsgs, path(uint64(10+i), c))
	}
	up, down := state(1, "openconfirm", "established"), state(100, "established", "idle")
	for _, tc := range []struct {
		name   string
		msgs   []message
		want   bool
		router string
	}{
		{"in order", append(append([]message{up}, codeMsgs...), down), true, ""},
		{"down first", append([]message{down, up}, codeMsgs...), true, ""},
		{"code reversed", append([]message{up, down}, reversed(codeMsgs)...), true, ""},
		{"code before the session", append(append(codeMsgs, state(50, "openconfirm", "established")), down), false, ""},
		{"code after the down", append([]message{up, state(5, "established", "idle")}, codeMsgs...), false, ""},
		{"events of another edbgpd", append(append([]message{up}, codeMsgs...), down), false, "192.0.2.99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKonami(tc.router)
			var d *decision
			for _, m := range tc.msgs {
				if got := k.handle(m); got != nil {
					d = got
				}
			}
			got := d != nil && k.entered(*d)
			if got != tc.want {
				t.Errorf("entered = %v, want %v", got, tc.want)
			}
		})
	}
}

func reversed(m []message) []message {
	out := make([]message, len(m))
	for i := range m {
		out[len(m)-1-i] = m[i]
	}
	return out
}
