package ratelimit

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pending starts Acquire in a goroutine and reports its outcome on the
// returned channel, so a test can check whether it is still blocked.
type pending struct {
	done    chan struct{}
	release func()
	err     error
	at      time.Time
}

func acquireAsync(ctx context.Context, w *Window) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.release, p.err = w.Acquire(ctx)
		p.at = time.Now()
	}()
	return p
}

func (p *pending) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func mustAcquire(t *testing.T, w *Window) func() {
	t.Helper()
	release, err := w.Acquire(context.Background())
	require.NoError(t, err)
	return release
}

func TestABurstOfLimitRequestsPassesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(5, time.Minute)
		start := time.Now()
		for range 5 {
			release := mustAcquire(t, w)
			release()
		}
		require.Equal(t, start, time.Now(), "no fake time may pass while the window has room")
		require.Equal(t, 5, w.Stats().PeakInWindow)
	})
}

func TestTheNextRequestWaitsUntilTheFirstSlotExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(3, time.Minute)
		first := mustAcquire(t, w)
		first()
		time.Sleep(5 * time.Second)
		for range 2 {
			mustAcquire(t, w)()
		}
		firstExpiry := time.Now().Add(-5 * time.Second).Add(time.Minute)

		p := acquireAsync(context.Background(), w)
		time.Sleep(time.Until(firstExpiry) - time.Nanosecond)
		synctest.Wait()
		require.False(t, p.finished(), "granted before the first slot left the window")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.True(t, p.finished(), "not granted when the first slot left the window")
		require.NoError(t, p.err)
		require.Equal(t, firstExpiry, p.at)
		p.release()
	})
}

func TestTheWindowOfASlotStartsAtReleaseNotAtAcquire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Minute)
		release := mustAcquire(t, w)
		time.Sleep(10 * time.Second) // a slow response
		release()
		expiry := time.Now().Add(time.Minute)

		p := acquireAsync(context.Background(), w)
		time.Sleep(time.Until(expiry) - time.Nanosecond)
		synctest.Wait()
		require.False(t, p.finished(), "the window was counted from Acquire, not from release")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.True(t, p.finished())
		p.release()
	})
}

func TestAnUnreleasedSlotBlocksForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Minute)
		release := mustAcquire(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		p := acquireAsync(ctx, w)
		time.Sleep(time.Hour)
		synctest.Wait()
		require.False(t, p.finished(), "a slot in flight must hold the window however long it takes")
		cancel()
		<-p.done
		release()
	})
}

func TestCancellingTheContextUnblocksAWaiterWithoutTakingASlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Minute)
		held := mustAcquire(t, w)

		ctx, cancel := context.WithCancel(context.Background())
		cancelled := acquireAsync(ctx, w)
		synctest.Wait()
		behind := acquireAsync(context.Background(), w)
		synctest.Wait()

		cancel()
		synctest.Wait()
		require.True(t, cancelled.finished())
		require.ErrorIs(t, cancelled.err, context.Canceled)
		require.Nil(t, cancelled.release)

		held()
		releasedAt := time.Now()
		<-behind.done
		require.NoError(t, behind.err)
		require.Equal(t, releasedAt.Add(time.Minute), behind.at, "the cancelled waiter must not have used a slot")
		behind.release()
		require.Equal(t, int64(2), w.Stats().Sent)
	})
}

func TestAnExpiredDeadlineReturnsDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Minute)
		held := mustAcquire(t, w)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := w.Acquire(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		held()
	})
}

func TestAnAlreadyCancelledContextIsRefusedEvenWithRoom(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, limit := range []int{0, 10} {
		_, err := NewWindow(limit, time.Minute).Acquire(ctx)
		require.ErrorIs(t, err, context.Canceled)
	}
}

func TestThrottledLowersTheLimitToNinetyPercentOfTheWindow(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		inWindow  int
		wantLimit int
	}{
		{"twenty slots in the window leave a limit of eighteen", 100, 20, 18},
		{"a full window of ten leaves nine", 10, 10, 9},
		{"five in a window of five leave four", 5, 5, 4},
		{"a single slot never lowers the limit below one", 10, 1, 1},
		{"an empty window lowers the limit to one", 10, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := NewWindow(tt.limit, time.Minute)
				for range tt.inWindow {
					mustAcquire(t, w)()
				}
				w.Throttled(time.Second)
				require.Equal(t, tt.wantLimit, w.Stats().Limit)
				require.Equal(t, int64(1), w.Stats().Throttled)
			})
		})
	}
}

func TestThrottledPausesEverySendUntilRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(10, time.Minute)
		w.Throttled(30 * time.Second)
		resume := time.Now().Add(30 * time.Second)

		p := acquireAsync(context.Background(), w)
		time.Sleep(time.Until(resume) - time.Nanosecond)
		synctest.Wait()
		require.False(t, p.finished(), "a send went out during the Retry-After pause")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.True(t, p.finished())
		require.NoError(t, p.err)

		// The limit is now 1, so the next send waits for the first to leave the window.
		next := acquireAsync(context.Background(), w)
		synctest.Wait()
		require.False(t, next.finished(), "the lowered limit was not applied")
		p.release()
		<-next.done
		next.release()
	})
}

func TestTheLimitRecoversByOnePerQuietWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(4, time.Minute)
		w.Throttled(0)
		require.Equal(t, 1, w.Stats().Limit)

		var limits []int
		for range 5 {
			time.Sleep(time.Minute)
			limits = append(limits, w.Stats().Limit)
		}
		require.Equal(t, []int{2, 3, 4, 4, 4}, limits)
	})
}

func TestAThrottleRestartsTheQuietWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(4, time.Minute)
		w.Throttled(0)
		time.Sleep(50 * time.Second)
		w.Throttled(0)
		time.Sleep(50 * time.Second)
		require.Equal(t, 1, w.Stats().Limit, "100 s after the first 429 but only 50 s after the second")
		time.Sleep(10 * time.Second)
		require.Equal(t, 2, w.Stats().Limit)
	})
}

func TestRecoveryWakesAWaiterWithoutAnyRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(2, time.Minute)
		held := mustAcquire(t, w) // stays in flight throughout
		w.Throttled(0)            // one slot in the window → limit 1
		require.Equal(t, 1, w.Stats().Limit)
		raise := time.Now().Add(time.Minute)

		p := acquireAsync(context.Background(), w)
		time.Sleep(time.Until(raise) - time.Nanosecond)
		synctest.Wait()
		require.False(t, p.finished())
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.True(t, p.finished(), "the raised limit did not wake the waiter")
		p.release()
		held()
	})
}

func TestWaitersAreServedInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Second)
		held := mustAcquire(t, w)

		var (
			mu    sync.Mutex
			order []int
			wg    sync.WaitGroup
		)
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				release, err := w.Acquire(context.Background())
				if err != nil {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				release()
			}()
			synctest.Wait() // queue them in a known order
		}
		held()
		wg.Wait()
		require.Equal(t, []int{0, 1, 2, 3, 4, 5}, order)
	})
}

func TestReleasingTwiceFreesOnlyOneSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWindow(1, time.Minute)
		release := mustAcquire(t, w)
		release()
		release()
		time.Sleep(time.Minute)

		second := mustAcquire(t, w)
		p := acquireAsync(context.Background(), w)
		synctest.Wait()
		require.False(t, p.finished(), "a double release let a second request into a window of one")
		second()
		<-p.done
		p.release()
	})
}

func TestAnUnlimitedWindowNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			w := NewWindow(limit, time.Minute)
			w.Throttled(time.Hour)
			start := time.Now()
			var releases []func()
			for range 1000 {
				releases = append(releases, mustAcquire(t, w))
			}
			require.Equal(t, start, time.Now())
			for _, r := range releases {
				r()
			}
			s := w.Stats()
			require.Equal(t, int64(1000), s.Sent)
			require.Equal(t, 1000, s.PeakInFlight)
		}
	})
}

// TestConcurrentRequestsNeverExceedTheWindow checks the invariant itself: at
// every grant, the requests whose occupancy [acquire, release+window)
// contains that instant number at most limit.
func TestConcurrentRequestsNeverExceedTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			limit   = 7
			workers = 20
			each    = 15
			window  = time.Second
		)
		w := NewWindow(limit, window)
		type span struct{ from, to time.Time }
		var (
			mu    sync.Mutex
			spans []span
			wg    sync.WaitGroup
		)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each {
					release, err := w.Acquire(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					from := time.Now()
					time.Sleep(time.Duration(1+(i*j)%13) * time.Millisecond) // the request's round trip
					release()
					mu.Lock()
					spans = append(spans, span{from, time.Now().Add(window)})
					mu.Unlock()
					if j == 3 && i == 0 {
						w.Throttled(200 * time.Millisecond)
					}
				}
			}()
		}
		wg.Wait()

		require.Len(t, spans, workers*each)
		for _, s := range spans {
			n := 0
			for _, o := range spans {
				if !s.from.Before(o.from) && s.from.Before(o.to) {
					n++
				}
			}
			require.LessOrEqual(t, n, limit, "window overfilled at %v", s.from)
		}
		st := w.Stats()
		require.Equal(t, int64(workers*each), st.Sent)
		require.LessOrEqual(t, st.PeakInWindow, limit)
		require.LessOrEqual(t, st.PeakInFlight, limit)
	})
}

func BenchmarkAcquireRelease(b *testing.B) {
	b.Run("limited window with room", func(b *testing.B) {
		w := NewWindow(1<<30, time.Minute)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			release, err := w.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("unlimited", func(b *testing.B) {
		w := NewWindow(0, time.Minute)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			release, err := w.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		w := NewWindow(1<<30, time.Minute)
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				release, err := w.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				release()
			}
		})
	})
}

func TestAcquireEndsAtTheDeadlineOrAtOnceWhenAPausePassesIt(t *testing.T) {
	tests := []struct {
		name      string
		pause     time.Duration // Throttled(pause) before the Acquire; 0: a full window instead
		deadline  time.Duration
		returnsIn time.Duration // fake time from Acquire to its return
	}{
		{"a full window is waited for until the deadline, not until a slot frees", 0, 5 * time.Second, 5 * time.Second},
		{"a pause that ends before the deadline is waited out", 2 * time.Second, 5 * time.Second, 2 * time.Second},
		{"a pause beyond the deadline ends the wait at once", time.Hour, 5 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := NewWindow(1, time.Minute)
				if tt.pause > 0 {
					w.Throttled(tt.pause)
				} else {
					release, err := w.Acquire(context.Background())
					require.NoError(t, err)
					release() // the slot stays taken for the 60 s window
				}
				ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
				defer cancel()
				start := time.Now()
				release, err := w.Acquire(ctx)
				require.Equal(t, tt.returnsIn, time.Since(start))
				if tt.returnsIn == tt.deadline || tt.returnsIn == 0 {
					require.ErrorIs(t, err, context.DeadlineExceeded)
					require.Nil(t, release)
					require.Zero(t, w.Stats().Sent-btoi(tt.pause == 0), "a slot was taken by a failed Acquire")
					return
				}
				require.NoError(t, err)
				release()
			})
		})
	}
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
