package store

import (
	"errors"
	"fmt"
	"time"
)

// checkLeaseArgs refuses leases and ttls no store could honour; both stores call it first.
func checkLeaseArgs(op, account string, ttl time.Duration) error {
	if account == "" {
		return fmt.Errorf("%s: no account given", op)
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("%s of account %s: ttl %s is shorter than a millisecond", op, account, ttl)
	}
	return nil
}

// checkGuard refuses guards that cannot apply to the write: a lease of another account than the
// customer's, or Unprotected on a write that names no customer.
func checkGuard(g Guard, account, customerID string) error {
	if g.Lease != nil && account != "" && g.Lease.Account != account {
		return fmt.Errorf("the lease is for account %s, not %s", g.Lease.Account, account)
	}
	if g.Unprotected && customerID == "" {
		return errors.New("an unprotected guard needs a customer")
	}
	return nil
}

func leaseLost(l *Lease) error {
	return fmt.Errorf("%w: account %s, token %d", ErrLeaseLost, l.Account, l.Token)
}

func protected(reason string) error {
	return fmt.Errorf("%w: reaper_keep: %s", ErrProtected, reason)
}

// eventsAccount is the one account evs write to, "" if none; an error if they name several.
func eventsAccount(evs []Event) (string, error) {
	account := ""
	for _, e := range evs {
		if e.Account == "" {
			continue
		}
		if account != "" && e.Account != account {
			return "", fmt.Errorf("events of accounts %s and %s in one guarded write", account, e.Account)
		}
		account = e.Account
	}
	return account, nil
}
