package engine

import (
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// heapGrowth counts the times the process heap grew by heapStep since
// the last count: scripts then measure their memory sooner (see
// memoryCheckSoon) than every memoryCheckEvery. Reading the heap costs
// about 0.2 µs, too much per event, so one goroutine polls it.
var (
	heapGrowth    atomic.Uint64
	heapWatchOnce sync.Once
)

const (
	heapStep      = 64 << 20
	heapPollEvery = 50 * time.Millisecond
)

// watchHeap starts the poller, once per process; it runs for the
// process's life.
func watchHeap() {
	heapWatchOnce.Do(func() {
		go func() {
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			read := func() uint64 {
				metrics.Read(sample)
				return sample[0].Value.Uint64()
			}
			base := read()
			for range time.Tick(heapPollEvery) {
				switch h := read(); {
				case h > base+heapStep:
					heapGrowth.Add(1)
					base = h
				case h < base:
					base = h
				}
			}
		}()
	})
}
