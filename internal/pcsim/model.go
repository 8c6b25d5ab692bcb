package pcsim

import (
	"errors"
	"fmt"
	"hash/fnv"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Order types and statuses a seed may name.
const (
	TypeSoftware         = "software"
	TypeReservedInstance = "reservedinstance"
	TypeSubscription     = "subscription" // a subscription-based order: PATCH answers 400 800063

	StatusCompleted = "completed"
	StatusPending   = "pending"
	StatusCancelled = "cancelled"
	StatusUnknown   = "unknown"
)

// cancelWindow is how old a sandbox order may be and still be cancelled.
const cancelWindow = 60 * 24 * time.Hour

// namespace for the name-based (v5) ids the simulator derives, so commerce ids,
// audit record ids and demo ids are stable across runs.
var namespace = uuid.MustParse("5e0d2a52-6f1b-4c3e-9a57-70637369d000")

// SeedCustomer is a customer to put in the sandbox.
type SeedCustomer struct {
	ID          string // optional: generated from Config.Seed when empty
	Domain      string // required, unique among present customers
	CompanyName string
	CreatedAt   time.Time     // when the customer was added (the activity log's operationDate)
	Age         time.Duration // used when CreatedAt is zero: created Age before the server's Now at AddCustomer
	Orders      []SeedOrder
}

// SeedOrder is an order of a seeded customer.
type SeedOrder struct {
	ID           string        // optional: generated when empty
	Type         string        // TypeSoftware, TypeReservedInstance or TypeSubscription
	Status       string        // StatusCompleted (default), StatusPending, StatusCancelled or StatusUnknown
	CreatedAt    time.Time     // creationDate
	Age          time.Duration // used when CreatedAt is zero and Age > 0; both zero: the customer's CreatedAt
	NeverCancels bool          // PATCH is accepted but the order stays pending forever
}

type customer struct {
	id, commerceID, domain, company string
	createdAt                       time.Time
	deleted                         bool
	deletedAt                       time.Time
	orders                          []*order
}

type order struct {
	id, alternateID, typ, status string // status as seeded; a cancel request overrides it
	createdAt                    time.Time
	neverCancels                 bool
	cancelDelay                  time.Duration
	cancelRequested              time.Time // zero: no PATCH accepted yet
}

// statusAt reads the order's status lazily from the clock: no goroutine flips it.
func (o *order) statusAt(now time.Time) string {
	if o.cancelRequested.IsZero() {
		return o.status
	}
	if o.neverCancels || now.Before(o.cancelRequested.Add(o.cancelDelay)) {
		return StatusPending
	}
	return StatusCancelled
}

// AddCustomer puts a customer in the sandbox and returns its id. Like the
// real sandbox it refuses a 76th present customer (800018).
func (s *Server) AddCustomer(c SeedCustomer) (string, error) {
	if c.Domain == "" {
		return "", errors.New("add customer: domain is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	present := 0
	for _, have := range s.customers {
		if have.deleted {
			continue
		}
		present++
		if strings.EqualFold(have.domain, c.Domain) {
			return "", fmt.Errorf("add customer %s: domain already taken by customer %s", c.Domain, have.id)
		}
	}
	if present >= SandboxLimit {
		return "", fmt.Errorf("add customer %s: %s: The sandbox limit has been met (%d customers)", c.Domain, codeSandboxLimit, SandboxLimit)
	}
	id := c.ID
	if id == "" {
		id = randomGUID(s.rng)
	}
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("add customer %s: id: %w", c.Domain, err)
	}
	if _, taken := s.byID[id]; taken {
		return "", fmt.Errorf("add customer %s: id %s already used", c.Domain, id)
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = now.Add(-c.Age)
	}
	cu := &customer{
		id:         id,
		commerceID: uuid.NewSHA1(namespace, []byte("commerce/"+id)).String(),
		domain:     strings.ToLower(c.Domain),
		company:    c.CompanyName,
		createdAt:  created,
	}
	seen := map[string]bool{}
	for i, so := range c.Orders {
		o, err := s.newOrder(cu, so, now)
		if err != nil {
			return "", fmt.Errorf("add customer %s: order %d: %w", c.Domain, i+1, err)
		}
		if seen[o.id] {
			return "", fmt.Errorf("add customer %s: order %d: id %s already used", c.Domain, i+1, o.id)
		}
		seen[o.id] = true
		cu.orders = append(cu.orders, o)
	}
	s.customers = append(s.customers, cu)
	s.byID[id] = cu
	return id, nil
}

// newOrder builds an order of cu. Callers hold s.mu.
func (s *Server) newOrder(cu *customer, so SeedOrder, now time.Time) (*order, error) {
	switch so.Type {
	case TypeSoftware, TypeReservedInstance, TypeSubscription:
	default:
		return nil, fmt.Errorf("type %q: want %s, %s or %s", so.Type, TypeSoftware, TypeReservedInstance, TypeSubscription)
	}
	status := so.Status
	switch status {
	case "":
		status = StatusCompleted
	case StatusCompleted, StatusPending, StatusCancelled, StatusUnknown:
	default:
		return nil, fmt.Errorf("status %q: want %s, %s, %s or %s", so.Status, StatusCompleted, StatusPending, StatusCancelled, StatusUnknown)
	}
	id := so.ID
	if id == "" {
		id = strings.ReplaceAll(randomGUID(s.rng), "-", "")
	}
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	created := so.CreatedAt
	switch {
	case created.IsZero() && so.Age > 0:
		created = now.Add(-so.Age)
	case created.IsZero():
		created = cu.createdAt
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return &order{
		id:           id,
		alternateID:  fmt.Sprintf("%012x", h.Sum64()&0xffffffffffff),
		typ:          so.Type,
		status:       status,
		createdAt:    created,
		neverCancels: so.NeverCancels,
		cancelDelay:  s.drawCancelDelay(cu.id + "/" + id),
	}, nil
}

// drawCancelDelay is uniform in Config.CancelDelay, drawn from the seed and
// the order's name so it does not depend on the order requests arrive in.
func (s *Server) drawCancelDelay(name string) time.Duration {
	lo, hi := s.cfg.CancelDelay[0], s.cfg.CancelDelay[1]
	if hi <= lo {
		return max(lo, 0)
	}
	return lo + time.Duration(hashSeed(s.cfg.Seed, name).Int64N(int64(hi-lo)+1))
}

// checkID keeps ids usable as one URL path segment.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/?#% \t\r\n") {
		return fmt.Errorf("%q is not a path segment", id)
	}
	return nil
}

func randomGUID(rng *mrand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b).String()
}

// Customers returns the ids of the customers still present, in the order they were added.
func (s *Server) Customers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, c := range s.customers {
		if !c.deleted {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// DeletedCustomers returns the ids of the customers deleted, in the order
// they were added: the simulator's own record, for tests that compare an
// audit trail with what really happened.
func (s *Server) DeletedCustomers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, c := range s.customers {
		if c.deleted {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// Order returns the status an order reads now. Orders of a deleted customer
// still answer, so tests can check what was cancelled before the delete.
func (s *Server) Order(customerID, orderID string) (status string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[customerID]
	if c == nil {
		return "", false
	}
	for _, o := range c.orders {
		if o.id == orderID {
			return o.statusAt(s.now()), true
		}
	}
	return "", false
}

// present returns the customer if it exists and is not deleted. Callers hold s.mu.
func (s *Server) present(id string) *customer {
	if c := s.byID[id]; c != nil && !c.deleted {
		return c
	}
	return nil
}

func (c *customer) order(id string) *order {
	for _, o := range c.orders {
		if o.id == id {
			return o
		}
	}
	return nil
}
