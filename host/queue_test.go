package host

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/edbgpd/edbgpd/luaapi"
)

// TestQueueCoalescesPastLimit: past its limit a queue keeps the latest
// state of each prefix, after the peer events queued before it, and drops
// nothing else.
func TestQueueCoalescesPastLimit(t *testing.T) {
	bp := func(prefix string, seq uint64) *luaapi.BestPath {
		return &luaapi.BestPath{Prefix: prefix, Seq: seq}
	}
	peer := func(seq uint64) *luaapi.PeerState { return &luaapi.PeerState{Seq: seq} }
	show := func(batch []any) []string {
		var out []string
		for _, ev := range batch {
			switch e := ev.(type) {
			case *luaapi.BestPath:
				out = append(out, fmt.Sprintf("%s#%d", e.Prefix, e.Seq))
			case coalescedPath:
				out = append(out, fmt.Sprintf("%s#%d(-%d)", e.Prefix, e.Seq, e.skipped))
			case *luaapi.PeerState:
				out = append(out, fmt.Sprintf("peer#%d", e.Seq))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		limit  int
		events []any
		want   [][]string // successive takes
	}{
		{
			name: "under the limit, everything in order", limit: 10,
			events: []any{bp("a", 1), bp("a", 2), peer(3)},
			want:   [][]string{{"a#1", "a#2", "peer#3"}},
		},
		{
			name: "past the limit, the latest state of a prefix goes last", limit: 2,
			events: []any{bp("a", 1), bp("b", 2), bp("a", 3), peer(4), bp("c", 5), bp("a", 6), bp("a", 7)},
			want:   [][]string{{"a#1", "b#2"}, {"peer#4", "c#5", "a#7(-2)"}},
		},
		{
			name: "peer events are never coalesced", limit: 1,
			events: []any{peer(1), peer(2), peer(3), bp("a", 4), bp("a", 5)},
			want:   [][]string{{"peer#1"}, {"peer#2", "peer#3", "a#5(-1)"}},
		},
		{
			name: "unbounded queues never coalesce", limit: -1,
			events: []any{bp("a", 1), bp("a", 2), bp("a", 3)},
			want:   [][]string{{"a#1", "a#2", "a#3"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newEventQueue(slog.New(slog.NewTextHandler(io.Discard, nil)), tc.limit, nil)
			for _, ev := range tc.events {
				q.push(ev)
			}
			for i, want := range tc.want {
				if got := show(q.take()); !slices.Equal(got, want) {
					t.Errorf("take %d = %v, want %v", i+1, got, want)
				}
			}
			if n := q.depth(); n != 0 {
				t.Errorf("%d events left", n)
			}
		})
	}
}

// TestQueueCompacts: a prefix that flaps while its script is behind costs
// one entry, not one per flap.
func TestQueueCompacts(t *testing.T) {
	q := newEventQueue(slog.New(slog.NewTextHandler(io.Discard, nil)), 1, nil)
	q.push(&luaapi.BestPath{Prefix: "x"})
	for i := range 100_000 {
		q.push(&luaapi.BestPath{Prefix: fmt.Sprint("p", i%10), Seq: uint64(i)})
	}
	q.mu.Lock()
	n := len(q.over)
	q.mu.Unlock()
	if n > 3000 {
		t.Errorf("over holds %d entries for 10 prefixes", n)
	}
	if d := q.depth(); d != 11 {
		t.Errorf("depth = %d, want 11", d)
	}
	if c := q.coalescedCount(); c != 100_000-10 {
		t.Errorf("coalesced = %d, want %d", c, 100_000-10)
	}
}
