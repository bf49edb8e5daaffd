package engine

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/edbgpd/edbgpd/host/event"
)

// TestQueueCoalescesPastLimit: past its limit a queue keeps the latest
// state of each prefix, after the peer events queued before it, and drops
// nothing else.
func TestQueueCoalescesPastLimit(t *testing.T) {
	bp := func(prefix string, seq uint64) item {
		return item{ev: event.Of(&event.BestPath{Prefix: prefix, Seq: seq})}
	}
	peer := func(seq uint64) item { return item{ev: event.OfPeer(&event.PeerState{Seq: seq})} }
	show := func(batch []item) []string {
		var out []string
		for _, it := range batch {
			switch e := it.ev; {
			case e.BestPath != nil && it.skipped == 0:
				out = append(out, fmt.Sprintf("%s#%d", e.BestPath.Prefix, e.BestPath.Seq))
			case e.BestPath != nil:
				out = append(out, fmt.Sprintf("%s#%d(-%d)", e.BestPath.Prefix, e.BestPath.Seq, it.skipped))
			case e.PeerState != nil:
				out = append(out, fmt.Sprintf("peer#%d", e.PeerState.Seq))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		limit  int
		events []item
		want   [][]string // successive takes
	}{
		{
			name: "under the limit, everything in order", limit: 10,
			events: []item{bp("a", 1), bp("a", 2), peer(3)},
			want:   [][]string{{"a#1", "a#2", "peer#3"}},
		},
		{
			name: "past the limit, the latest state of a prefix goes last", limit: 2,
			events: []item{bp("a", 1), bp("b", 2), bp("a", 3), peer(4), bp("c", 5), bp("a", 6), bp("a", 7)},
			want:   [][]string{{"a#1", "b#2"}, {"peer#4", "c#5", "a#7(-2)"}},
		},
		{
			name: "peer events are never coalesced", limit: 1,
			events: []item{peer(1), peer(2), peer(3), bp("a", 4), bp("a", 5)},
			want:   [][]string{{"peer#1"}, {"peer#2", "peer#3", "a#5(-1)"}},
		},
		{
			name: "unbounded queues never coalesce", limit: -1,
			events: []item{bp("a", 1), bp("a", 2), bp("a", 3)},
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
	q.push(item{ev: event.Of(&event.BestPath{Prefix: "x"})})
	for i := range 100_000 {
		q.push(item{ev: event.Of(&event.BestPath{Prefix: fmt.Sprint("p", i%10), Seq: uint64(i)})})
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
