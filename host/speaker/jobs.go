package speaker

import "sync"

// jobs runs functions one at a time, in the order given, on a goroutine
// of their own (started when there is work, gone when there is none).
type jobs struct {
	mu    sync.Mutex
	queue []func()
	busy  bool
	idle  *sync.Cond
}

// run queues fn.
func (j *jobs) run(fn func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.queue = append(j.queue, fn)
	if !j.busy {
		j.busy = true
		go j.drain()
	}
}

func (j *jobs) drain() {
	for {
		j.mu.Lock()
		if len(j.queue) == 0 {
			j.busy = false
			if j.idle != nil {
				j.idle.Broadcast()
			}
			j.mu.Unlock()
			return
		}
		fn := j.queue[0]
		j.queue = j.queue[1:]
		j.mu.Unlock()
		fn()
	}
}

// wait returns when nothing is queued or running.
func (j *jobs) wait() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.idle == nil {
		j.idle = sync.NewCond(&j.mu)
	}
	for j.busy {
		j.idle.Wait()
	}
}
