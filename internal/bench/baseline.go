package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/tipreaper/tipreaper/internal/pc"
)

// sampleRun is what the sample algorithm did.
type sampleRun struct {
	deleted int
	polls   int // GET order calls made while waiting for cancellation
}

// sample is the algorithm of Microsoft's "Delete a customer account from the
// integration sandbox" page, one call at a time, for each customer in turn:
//
//  1. get the customer's entitlements;
//  2. for each entitlement, get its order (entitlement.ReferenceOrder.Id),
//     set its status to cancelled and PATCH it;
//  3. poll: for each entitlement get its order; when one is not cancelled,
//     sleep 5 s and poll every order again;
//  4. DELETE the customer.
//
// The page's loop never resets its "all cancelled" flag, so one pending
// order makes it spin for ever; here the flag is reset each round and the
// loop stops once every order reads cancelled. The page iterates
// entitlements, not orders, and a reserved instance has two: its second
// PATCH finds the order pending and Partner Center answers 409 800060
// ("in progress"), which the page would throw on; here it is taken as
// "already being cancelled", the one change besides the loop fix.
func sample(ctx context.Context, c *pc.Client, ids []string, sleep time.Duration) (sampleRun, error) {
	var r sampleRun
	for _, id := range ids {
		ents, err := c.ListEntitlements(ctx, id)
		if err != nil {
			return r, fmt.Errorf("sample: entitlements of %s: %w", id, err)
		}
		for _, e := range ents {
			o, err := c.GetOrder(ctx, id, e.ReferenceOrder.ID)
			if err != nil {
				return r, fmt.Errorf("sample: get order %s of %s: %w", e.ReferenceOrder.ID, id, err)
			}
			if o.Status == pc.StatusCancelled {
				continue
			}
			if _, err := c.CancelOrder(ctx, id, o.ID); err != nil && pc.ErrorCode(err) != "800060" {
				return r, fmt.Errorf("sample: cancel order %s of %s: %w", o.ID, id, err)
			}
		}
		for {
			all := true // reset each round: the page's bug was to set it once
			for _, e := range ents {
				o, err := c.GetOrder(ctx, id, e.ReferenceOrder.ID)
				if err != nil {
					return r, fmt.Errorf("sample: poll order %s of %s: %w", e.ReferenceOrder.ID, id, err)
				}
				r.polls++
				if o.Status != pc.StatusCancelled {
					all = false
				}
			}
			if all {
				break
			}
			t := time.NewTimer(sleep)
			select {
			case <-ctx.Done():
				t.Stop()
				return r, ctx.Err()
			case <-t.C:
			}
		}
		if err := c.DeleteCustomer(ctx, id); err != nil {
			return r, fmt.Errorf("sample: delete %s: %w", id, err)
		}
		r.deleted++
	}
	return r, nil
}
