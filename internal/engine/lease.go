package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tipreaper/tipreaper/internal/store"
)

// errLeaseLost is the cause of an account pass's context when its lease was
// lost: its work stops at once, without the graceful-stop drain.
var errLeaseLost = errors.New("lost the account's lease")

// leaseKeeper holds an account's lease for a pass: it renews it every
// quarter of the ttl and calls lose when the store says it is lost, or when
// no renewal succeeded for three quarters of the ttl (the lease may then
// expire any moment by the database's clock: the margin covers clock rate
// and the time a write takes).
type leaseKeeper struct {
	st    store.Store
	ttl   time.Duration
	lease store.Lease // as acquired; holder and token never change
	lose  func(error)
	warn  func(msg string, args ...any)

	stop chan struct{}
	done sync.WaitGroup
}

// acquireLease takes the account's lease; ok is false while another holder has it.
func (p *accountPass) acquireLease(ctx context.Context, lose func(error)) (*leaseKeeper, bool, error) {
	ttl := p.e.o.LeaseTTL
	start := time.Now()
	l, ok, err := p.e.o.Store.AcquireLease(ctx, p.acct.Name, ttl)
	if err != nil || !ok {
		return nil, ok, err
	}
	k := &leaseKeeper{st: p.e.o.Store, ttl: ttl, lease: l, lose: lose, warn: p.log.Warn, stop: make(chan struct{})}
	k.done.Go(func() { k.renew(context.WithoutCancel(ctx), start) })
	return k, true, nil
}

func (k *leaseKeeper) renew(ctx context.Context, lastStart time.Time) {
	every := k.ttl / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(lastStart.Add(k.ttl - every)))
	defer deadline.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-deadline.C:
			k.lose(fmt.Errorf("%w: no renewal succeeded within %s", errLeaseLost, k.ttl-every))
			return
		case <-tick.C:
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		_, err := k.st.RenewLease(rctx, k.lease, k.ttl)
		cancel()
		switch {
		case err == nil:
			deadline.Reset(time.Until(start.Add(k.ttl - every)))
		case errors.Is(err, store.ErrLeaseLost):
			k.lose(fmt.Errorf("%w: %v", errLeaseLost, err))
			return
		default:
			k.warn("renew the account's lease; retrying", "error", err)
		}
	}
}

// release stops the renewals and gives the lease up, so that the next pass
// (of any process) need not wait for it to expire.
func (k *leaseKeeper) release(ctx context.Context) {
	close(k.stop)
	k.done.Wait()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := k.st.ReleaseLease(rctx, k.lease); err != nil {
		k.warn("release the account's lease; it expires by itself", "error", err)
	}
}

// lostLease ends the account's pass at once when err says a write was
// refused because the lease is lost: nothing more can be written, so no
// further call may be made.
func (p *accountPass) lostLease(err error) {
	if errors.Is(err, store.ErrLeaseLost) && p.lose != nil {
		p.lose(fmt.Errorf("%w: %v", errLeaseLost, err))
	}
}

// writeRetries are the waits before the later attempts of a write that
// failed for a reason other than its guard: a database session that was
// terminated or a failover costs a statement per pooled connection (up to
// the pool's size: each failed attempt discards one dead connection), and a
// new connection answers the retry. 1.55 s in all. A retry can write an event twice if the failed attempt
// did commit (its answer lost): a duplicate row, never a missing one.
var writeRetries = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

// retryWrite runs write until it succeeds, its guard refuses it (lease lost,
// customer protected: final answers), the retries are used up, or ctx ends.
func retryWrite(ctx context.Context, write func() error) error {
	err := write()
	for _, wait := range writeRetries {
		if err == nil || errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrProtected) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = write()
	}
	return err
}
