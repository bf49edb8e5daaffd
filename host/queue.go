package host

import (
	"log/slog"
	"sync"
	"time"
)

// backlogWarnStart is the queue depth at which a script is first reported
// as falling behind; each further warning comes at ten times the last.
const backlogWarnStart = 10_000

// eventQueueLimit bounds the events from GoBGP queued for one script. At
// the limit, the dispatcher waits: GoBGP's own watcher queue holds the
// rest, as references to paths it keeps anyway, instead of this queue
// holding each as a decoded copy. Measured: a 1M-prefix load queued whole
// took 3 GB and the garbage collector's time with it.
const eventQueueLimit = 16384

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
}

func newEventQueue(log *slog.Logger) *eventQueue {
	q := &eventQueue{ready: make(chan struct{}, 1), warnAt: backlogWarnStart, log: log}
	q.space = sync.NewCond(&q.mu)
	return q
}

// pushWait appends ev, first waiting while limit or more events are queued.
// Only the dispatcher uses it; the consumer's own pushes (timers, markers)
// must never wait on themselves.
func (q *eventQueue) pushWait(ev any, limit int) {
	q.mu.Lock()
	for len(q.items) >= limit && !q.closed {
		q.waits++
		q.space.Wait()
	}
	q.mu.Unlock()
	q.push(ev)
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
	if len(q.items) == 0 && q.warned {
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

// depth is the number of events waiting.
func (q *eventQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
