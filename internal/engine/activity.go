package engine

import (
	"time"

	"github.com/tipreaper/tipreaper/internal/pc"
)

// activityOverlap is how far back before the last read a pass reads the
// activity log again, for records that reach the log late.
const activityOverlap = 24 * time.Hour

// addedLog is what the partner activity log said about when an account's
// customers were added, and up to when it was read. An add record never
// changes, so after the first pass reads the log's 90 days, later passes
// read only the days since the last read: a daemon pays for the log once,
// not on every pass. It lives on the Engine; an account's passes never
// overlap, so only one goroutine uses an account's log at a time.
type addedLog struct {
	through time.Time            // the end of the last successful read; zero: never read
	added   map[string]time.Time // customer id → earliest add_customer record
}

// addedLog returns the account's log, made on first use.
func (e *Engine) addedLog(account string) *addedLog {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.added == nil {
		e.added = map[string]*addedLog{}
	}
	l, ok := e.added[account]
	if !ok {
		l = &addedLog{added: map[string]time.Time{}}
		e.added[account] = l
	}
	return l
}

// from is where a read at now starts: the log's whole reach the first time,
// then the last read's end less the overlap.
func (l *addedLog) from(now time.Time) time.Time {
	start := now.Add(-activityWindow)
	if since := l.through.Add(-activityOverlap); !l.through.IsZero() && since.After(start) && since.Before(now) {
		start = since
	}
	return start
}

// merge adds a successful read ending at now and forgets adds older than
// the log's reach, which a full read would not have returned either.
func (l *addedLog) merge(recs []pc.ActivityRecord, now time.Time) {
	for _, r := range recs {
		if r.OperationType != "add_customer" || r.CustomerID == "" || r.OperationDate.IsZero() {
			continue
		}
		if t, ok := l.added[r.CustomerID]; !ok || r.OperationDate.Before(t) {
			l.added[r.CustomerID] = r.OperationDate
		}
	}
	oldest := now.Add(-activityWindow)
	for id, t := range l.added {
		if t.Before(oldest) {
			delete(l.added, id)
		}
	}
	l.through = now
}
