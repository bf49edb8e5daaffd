package host

import (
	"bufio"
	"log/slog"
	"os"

	"github.com/edbgpd/edbgpd/luaapi"
)

// eventLog writes every event to a file as JSON lines, in the format
// `edbgpd test` reads, so a real incident can be replayed against a
// script. It has its own queue and goroutine, like a script.
type eventLog struct {
	f     *os.File
	w     *bufio.Writer
	queue *eventQueue
	stop  chan struct{}
	done  chan struct{}
	log   *slog.Logger
}

func newEventLog(path string, log *slog.Logger) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l := &eventLog{f: f, w: bufio.NewWriterSize(f, 1<<16), stop: make(chan struct{}), done: make(chan struct{}), log: log.With("record", path)}
	l.queue = newEventQueue(l.log, -1, nil) // a recording has every event
	go l.run()
	return l, nil
}

func (l *eventLog) run() {
	defer close(l.done)
	for {
		select {
		case <-l.queue.ready:
			l.write(l.queue.take())
		case <-l.stop:
			l.write(l.queue.take())
			return
		}
	}
}

func (l *eventLog) write(batch []any) {
	for _, ev := range batch {
		b, err := luaapi.MarshalEvent(ev)
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

func (l *eventLog) push(ev any) { l.queue.push(ev) }

// Close writes what is queued and closes the file.
func (l *eventLog) Close() {
	close(l.stop)
	<-l.done
	l.f.Close()
}
