package engine

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/host/event"
)

// backlogWarnStart is the queue depth at which a script is first reported
// as falling behind; each further warning comes at ten times the last.
const backlogWarnStart = 10_000

// DefaultQueueLimit is how many events a script may have queued in order
// before later best paths are coalesced per prefix. Measured: a 1M-prefix
// load queued whole took 3 GB and the garbage collector's time with it.
const DefaultQueueLimit = 16384

// item is one thing a script's goroutine has to do, in order: an event,
// or a task of its own (a timer due, a notification's callback, a chunk
// of a walk, a sync marker).
type item struct {
	ev event.Event
	// skipped > 0: a best path that replaced older states of its prefix
	// while the script was behind (coalesced); the script will not see them.
	skipped int
	task    task // set instead of ev
}

// task is an item that is not an event; run is called on the script's
// goroutine.
type task interface{ run(s *Script) }

// empty tells a replaced item in over.
func (it item) empty() bool { return it.task == nil && it.ev.BestPath == nil && it.ev.PeerState == nil }

// bestPath is the item's best path, nil if it holds something else.
func (it item) bestPath() *event.BestPath { return it.ev.BestPath }

// eventQueue is a script's inbox: many producers, one consumer, nothing
// dropped. Up to limit events wait in order (items). Past that the script
// is behind, and later events wait in over, where a best path replaces the
// queued best path of the same prefix: the script still gets the latest
// state of every prefix, marked coalesced, and every peer event, in order.
// Its memory is then bounded by the table size, not by the churn rate.
// See README, "Slow scripts".
type eventQueue struct {
	mu        sync.Mutex
	limit     int
	closed    bool
	items     []item
	spare     []item
	itemsAt   time.Time       // when items' oldest event was queued
	over      []item          // past the limit, in order; zero where replaced
	overIdx   map[string]int  // prefix -> its best path's index in over
	overDead  int             // nils in over
	overAt    time.Time       // when over's oldest event was queued
	ready     chan struct{}   // has a token while the queue is not empty
	room      chan<- struct{} // told when take makes room (the dispatcher waits on it)
	warnAt    int
	warned    bool
	maxDepth  int
	coalesced uint64 // best paths replaced by a newer one of the same prefix
	log       *slog.Logger
}

// newEventQueue makes a queue that coalesces past limit (0: the default;
// negative: never, for consumers that must see every event).
func newEventQueue(log *slog.Logger, limit int, room chan<- struct{}) *eventQueue {
	switch {
	case limit == 0:
		limit = DefaultQueueLimit
	case limit < 0:
		limit = math.MaxInt
	}
	return &eventQueue{ready: make(chan struct{}, 1), room: room, limit: limit, warnAt: backlogWarnStart, log: log}
}

// close drops later events for good (the script is gone).
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.tellRoom()
}

// behind reports whether the script has its limit of events queued in order.
func (q *eventQueue) behind() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed && (len(q.items) >= q.limit || len(q.over) > 0)
}

// push queues it. It never blocks on the consumer.
func (q *eventQueue) push(it item) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	wasEmpty := len(q.items) == 0 && len(q.over) == 0
	if len(q.items) < q.limit && len(q.over) == 0 {
		if len(q.items) == 0 {
			q.itemsAt = time.Now() // the clock only for the oldest
		}
		q.items = append(q.items, it)
	} else {
		q.pushOver(it)
	}
	n := len(q.items) + len(q.over) - q.overDead
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
		q.log.Warn("script is falling behind; past the queue limit its best paths are coalesced per prefix", "queued", n, "oldest_for", q.age().Round(time.Millisecond))
	}
	if wasEmpty {
		q.tellReady()
	}
}

// pushOver queues it past the limit. Caller holds mu.
func (q *eventQueue) pushOver(it item) {
	if len(q.over) == 0 {
		q.overAt = time.Now()
	}
	if bp := it.bestPath(); bp != nil {
		if q.overIdx == nil {
			q.overIdx = make(map[string]int)
		}
		if i, ok := q.overIdx[bp.Prefix]; ok {
			// The newest state goes to the end, after the peer events
			// queued since the one it replaces.
			it.skipped = q.over[i].skipped + 1
			q.over[i] = item{}
			q.overDead++
			q.coalesced++
		}
		q.overIdx[bp.Prefix] = len(q.over)
	}
	q.over = append(q.over, it)
	if q.overDead > 1024 && q.overDead > len(q.over)/2 {
		q.compactOver()
	}
}

// compactOver squeezes the replaced entries out of over. Caller holds mu.
func (q *eventQueue) compactOver() {
	live := q.over[:0]
	for _, it := range q.over {
		if it.empty() {
			continue
		}
		if bp := it.bestPath(); bp != nil {
			q.overIdx[bp.Prefix] = len(live)
		}
		live = append(live, it)
	}
	clear(q.over[len(live):])
	q.over = live
	q.overDead = 0
}

// take removes and returns the oldest events: those queued in order, or
// when there are none, the coalesced ones. The slice is only valid until
// the next take.
func (q *eventQueue) take() []item {
	q.mu.Lock()
	var batch []item
	switch {
	case len(q.items) > 0:
		batch = q.items
		clear(q.spare)
		q.items = q.spare[:0]
		q.spare = batch
	case len(q.over) > 0:
		q.compactOver()
		batch = q.over
		q.over = nil
		clear(q.overIdx)
	}
	more := len(q.items) > 0 || len(q.over) > 0
	q.mu.Unlock()
	q.tellRoom()
	if more {
		q.tellReady()
	}
	return batch
}

func (q *eventQueue) tellReady() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *eventQueue) tellRoom() {
	if q.room == nil {
		return
	}
	select {
	case q.room <- struct{}{}:
	default:
	}
}

// caughtUp is called by the consumer after it drained a batch.
func (q *eventQueue) caughtUp() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && len(q.over) == 0 && q.warned {
		q.warned = false
		q.warnAt = backlogWarnStart
		q.log.Info("script caught up with its event backlog", "coalesced_so_far", q.coalesced)
	}
}

// age is how long the oldest queued event has waited (0 if none).
func (q *eventQueue) age() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch { // items, when there are any, are older than over
	case len(q.items) > 0:
		return time.Since(q.itemsAt)
	case len(q.over) > 0:
		return time.Since(q.overAt)
	}
	return 0
}

// depth is the number of events waiting.
func (q *eventQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + len(q.over) - q.overDead
}

// coalescedCount is the number of best paths replaced so far.
func (q *eventQueue) coalescedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.coalesced
}
