package host

import (
	"container/list"
	"log/slog"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/luaapi"
)

// backlogWarnStart is the queue depth at which a script is first reported
// as falling behind; each further warning comes at ten times the last.
const backlogWarnStart = 10_000

// eventQueueLimit bounds the events from GoBGP queued for one script. Past
// it, the queue coalesces: it keeps, per prefix, only the fact that the
// prefix changed (in order of its last change), and the script is handed
// the prefix's best path as it is when it gets there, marked coalesced.
// Peer-state events are kept, in order. So a script far behind costs a
// few bytes per prefix, never holds back GoBGP or the other scripts, and
// still ends with the true state of every prefix. Measured: a 1M-prefix
// load queued whole as events took 3 GB.
const eventQueueLimit = 16384

// overflowEntry is one coalesced change: a best-path key, or a peer event.
type overflowEntry struct {
	prefix, family string
	seq            uint64
	ev             any // a *luaapi.PeerState, or nil for a best path
}

// eventQueue is a script's inbox: unbounded, FIFO, many producers and one
// consumer. Unbounded because dropping a best-path change would leave the
// script with a wrong picture of the table; the depth is logged instead
// (see README, "Slow scripts").
type eventQueue struct {
	mu       sync.Mutex
	space    *sync.Cond // signalled when take empties the queue, or on close
	closed   bool
	items    []any
	spare    []any
	ready    chan struct{} // has a token while items is not empty
	warnAt   int
	warned   bool
	maxDepth int
	waits    uint64    // times the dispatcher waited for room
	firstAt  time.Time // when the oldest queued event was queued
	log      *slog.Logger

	over      *list.List               // coalesced changes, *overflowEntry, oldest first
	overKeys  map[string]*list.Element // best-path key -> its entry
	coalesced uint64                   // events folded into an existing entry
}

func newEventQueue(log *slog.Logger) *eventQueue {
	q := &eventQueue{ready: make(chan struct{}, 1), warnAt: backlogWarnStart, log: log, over: list.New(), overKeys: map[string]*list.Element{}}
	q.space = sync.NewCond(&q.mu)
	return q
}

// pushEvent queues an event from GoBGP: as it is while fewer than limit
// are waiting, coalesced beyond (see eventQueueLimit). It never blocks.
func (q *eventQueue) pushEvent(ev any, limit int) {
	q.mu.Lock()
	if len(q.items) < limit && q.over.Len() == 0 {
		q.mu.Unlock()
		q.push(ev)
		return
	}
	first := q.over.Len() == 0
	switch e := ev.(type) {
	case *luaapi.BestPath:
		key := e.Family + " " + e.Prefix
		if el, ok := q.overKeys[key]; ok {
			q.over.Remove(el)
			q.coalesced++
		}
		q.overKeys[key] = q.over.PushBack(&overflowEntry{prefix: e.Prefix, family: e.Family, seq: e.Seq})
	default:
		q.over.PushBack(&overflowEntry{ev: ev})
	}
	q.mu.Unlock()
	if first {
		q.log.Warn("script is far behind: keeping only the latest state of each prefix until it catches up", "queued", limit)
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// takeOverflow removes and returns up to n coalesced entries, oldest first.
func (q *eventQueue) takeOverflow(n int) []*overflowEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*overflowEntry, 0, min(n, q.over.Len()))
	for q.over.Len() > 0 && len(out) < n {
		e := q.over.Remove(q.over.Front()).(*overflowEntry)
		if e.ev == nil {
			delete(q.overKeys, e.family+" "+e.prefix)
		}
		out = append(out, e)
	}
	return out
}

// close releases waiting producers for good (the script is gone).
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.space.Broadcast()
	q.mu.Unlock()
}

// push appends ev. It never blocks on the consumer.
func (q *eventQueue) push(ev any) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	n := len(q.items)
	if n == 1 {
		q.firstAt = time.Now() // take empties the queue: this is the oldest
	}
	if n > q.maxDepth {
		q.maxDepth = n
	}
	warn := n >= q.warnAt
	if warn {
		q.warnAt *= 10
		q.warned = true
	}
	q.mu.Unlock()
	if warn {
		q.log.Warn("script is falling behind; events are queued, none dropped", "queued", n, "oldest_for", q.age().Round(time.Millisecond))
	}
	if n == 1 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
}

// take removes and returns everything queued, oldest first. The slice is
// only valid until the next take.
func (q *eventQueue) take() []any {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.items
	clear(q.spare)
	q.items = q.spare[:0]
	q.spare = batch
	q.space.Broadcast()
	return batch
}

// caughtUp is called by the consumer after it drained a batch.
func (q *eventQueue) caughtUp() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && q.over.Len() == 0 && q.warned {
		q.warned = false
		q.warnAt = backlogWarnStart
		q.log.Info("script caught up with its event backlog")
	}
}

// age is how long the oldest queued event has waited (0 if none).
func (q *eventQueue) age() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return 0
	}
	return time.Since(q.firstAt)
}

// depth is the number of events waiting, coalesced entries included.
func (q *eventQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.over.Len()
}
