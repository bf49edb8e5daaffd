package host

import (
	"log/slog"
	"sync"
)

// backlogWarnStart is the queue depth at which a script is first reported
// as falling behind; each further warning comes at ten times the last.
const backlogWarnStart = 10_000

// eventQueue is a script's inbox: unbounded, FIFO, many producers and one
// consumer. Unbounded because dropping a best-path change would leave the
// script with a wrong picture of the table; the depth is logged instead
// (see README, "Slow scripts").
type eventQueue struct {
	mu       sync.Mutex
	items    []any
	spare    []any
	ready    chan struct{} // has a token while items is not empty
	warnAt   int
	warned   bool
	maxDepth int
	log      *slog.Logger
}

func newEventQueue(log *slog.Logger) *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1), warnAt: backlogWarnStart, log: log}
}

// push appends ev. It never blocks on the consumer.
func (q *eventQueue) push(ev any) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	n := len(q.items)
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
		q.log.Warn("script is falling behind; events are queued, none dropped", "queued", n)
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

// depth is the number of events waiting.
func (q *eventQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
