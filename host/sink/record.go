package sink

import (
	"bufio"
	"log/slog"
	"os"
	"sync"

	"github.com/edbgpd/edbgpd/host/event"
)

// Record writes every event to a file as JSON lines, in the format
// `edbgpd test` reads, so that a real incident can be replayed against a
// script. Push only queues (no event is dropped, so the queue grows while
// the disk is slow); one goroutine writes in batches.
type Record struct {
	f     *os.File
	w     *bufio.Writer
	log   *slog.Logger
	mu    sync.Mutex
	queue []event.Event
	ready chan struct{} // has a token while the queue is not empty
	stop  chan struct{}
	done  chan struct{}
}

var _ event.Sink = (*Record)(nil)

// NewRecord appends to the file at path.
func NewRecord(path string, log *slog.Logger) (*Record, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l := &Record{f: f, w: bufio.NewWriterSize(f, 1<<16), log: log.With("record", path),
		ready: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// Push queues ev.
func (l *Record) Push(ev event.Event) {
	l.mu.Lock()
	l.queue = append(l.queue, ev)
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

func (l *Record) take() []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := l.queue
	l.queue = nil
	return batch
}

func (l *Record) run() {
	defer close(l.done)
	for {
		select {
		case <-l.ready:
			l.write(l.take())
		case <-l.stop:
			l.write(l.take())
			return
		}
	}
}

func (l *Record) write(batch []event.Event) {
	for _, ev := range batch {
		b, err := event.Marshal(ev)
		if err != nil {
			continue
		}
		l.w.Write(b)
		l.w.WriteByte('\n')
	}
	if err := l.w.Flush(); err != nil {
		l.log.Error("writing events", "err", err)
	}
}

// Close writes what is queued and closes the file.
func (l *Record) Close() {
	close(l.stop)
	<-l.done
	l.f.Close()
}
