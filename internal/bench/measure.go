package bench

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"
)

// cpuTime is the CPU the whole process has used, user + system. The
// simulator runs in the same process, so its share is included: the
// numbers are an upper bound of the engine's own.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapObjects is the runtime/metrics name of the bytes of heap objects, live
// and not yet swept: what ReadMemStats calls HeapAlloc, read without
// stopping the world.
const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// allocated is the bytes allocated on the heap since the process started.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap is the heap after a full collection: what is really held.
func liveHeap() uint64 {
	runtime.GC()
	return heapNow()
}

// heapSampler records the peak of the heap while it runs.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

// sampleHeap starts a sampler reading the heap every interval.
func sampleHeap(interval time.Duration) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), peak: heapNow()}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				h.peak = max(h.peak, heapNow())
				return
			case <-t.C:
				h.peak = max(h.peak, heapNow())
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}
