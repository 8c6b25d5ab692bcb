package bench

import (
	"time"
)

// pageSize is the number of customers per listing page (pc's default and
// the simulator's maximum).
const pageSize = 40

// rateWindow is Partner Center's sliding request window.
const rateWindow = time.Minute

// Bound is the lower bound of a pass's wall time: nothing can finish
// faster than its critical path, nor send its calls faster than the rate
// window allows.
type Bound struct {
	Pages     int           // listing pages: ceil(listed / 40)
	Customers int           // customers to delete
	Orders    int           // their live orders
	Pending   int           // customers with at least one order: one poll each at least
	MaxOrders int           // orders of the slowest customer
	Latency   time.Duration // mean request latency
	MaxDelay  time.Duration // the configured maximum cancellation delay
	Cap       int           // requests per window that the server admits (min of client and server cap); 0 = none

	// Critical = (pages + 1 orders listing + MaxOrders PATCHes + 1 poll + 1 DELETE) × Latency + MaxDelay.
	Critical time.Duration
	// Calls the contract forces: pages + 1 orders listing per customer + 1 PATCH per order
	// + 1 poll per customer with orders + 1 DELETE per customer. CallsNoPoll leaves the polls out.
	Calls, CallsNoPoll int
	// Floor = (ceil(Calls / Cap) − 1) × 60 s + Latency (the last call's answer) when Calls > Cap, else 0.
	Floor, FloorNoPoll time.Duration
}

func newBound(listed int, selected []customer, latency [2]time.Duration, maxDelay time.Duration, serverRate, clientRate int) Bound {
	b := Bound{Pages: (listed + pageSize - 1) / pageSize, Latency: (latency[0] + latency[1]) / 2, MaxDelay: maxDelay}
	for _, c := range selected {
		n := len(c.seed.Orders)
		b.Customers++
		b.Orders += n
		if n > 0 {
			b.Pending++
		}
		b.MaxOrders = max(b.MaxOrders, n)
	}
	switch {
	case serverRate > 0 && clientRate > 0:
		b.Cap = min(serverRate, clientRate)
	case serverRate > 0:
		b.Cap = serverRate
	default:
		b.Cap = clientRate
	}
	chain := b.Pages + 1 + b.MaxOrders + 1 // pages, orders listing, PATCHes, DELETE
	delay := time.Duration(0)
	if b.MaxOrders > 0 {
		chain++ // the poll
		delay = b.MaxDelay
	}
	b.Critical = time.Duration(chain)*b.Latency + delay
	b.CallsNoPoll = b.Pages + b.Customers + b.Orders + b.Customers
	b.Calls = b.CallsNoPoll + b.Pending
	b.Floor = b.floor(b.Calls)
	b.FloorNoPoll = b.floor(b.CallsNoPoll)
	return b
}

func (b Bound) floor(calls int) time.Duration {
	if b.Cap <= 0 || calls <= b.Cap {
		return 0
	}
	windows := (calls + b.Cap - 1) / b.Cap
	return time.Duration(windows-1)*rateWindow + b.Latency
}

// Lower is the lower bound: the larger of the critical path and the rate floor.
func (b Bound) Lower() time.Duration { return max(b.Critical, b.Floor) }

// LowerNoPoll is Lower with the floor of the calls without the mandatory poll.
func (b Bound) LowerNoPoll() time.Duration { return max(b.Critical, b.FloorNoPoll) }
