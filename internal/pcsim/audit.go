package pcsim

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// activityRetention is how far back the partner activity log reaches.
const activityRetention = 90 * 24 * time.Hour

// listAuditRecords serves GET /v1/auditrecords?startDate=…&endDate=…: one
// add_customer record per customer added in the range (deleted ones too, the
// add still happened) and not older than 90 days, paged like customers.
func (s *Server) listAuditRecords(r *http.Request) reply {
	if isContinuation(r) {
		return s.continuePaging(r, kindAuditRecords)
	}
	q := r.URL.Query()
	if q.Get("startDate") == "" {
		return errorReply(http.StatusBadRequest, codeBadRequest, "startDate is required.")
	}
	start, ok := parseDate(q.Get("startDate"), false)
	if !ok {
		return errorReply(http.StatusBadRequest, codeBadRequest, "startDate must be RFC 3339 or YYYY-MM-DD.")
	}
	size, rp, ok := s.pageSize(r)
	if !ok {
		return rp
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	end := now
	if raw := q.Get("endDate"); raw != "" {
		if end, ok = parseDate(raw, true); !ok {
			return errorReply(http.StatusBadRequest, codeBadRequest, "endDate must be RFC 3339 or YYYY-MM-DD.")
		}
	}
	if end.Before(start) {
		return errorReply(http.StatusBadRequest, codeBadRequest, "endDate is before startDate.")
	}
	oldest := now.Add(-activityRetention)
	var added []*customer
	for _, c := range s.customers {
		if !c.createdAt.Before(start) && !c.createdAt.After(end) && !c.createdAt.Before(oldest) {
			added = append(added, c)
		}
	}
	sort.SliceStable(added, func(i, j int) bool { return added[i].createdAt.Before(added[j].createdAt) })
	items := make([]any, 0, len(added))
	for _, c := range added {
		items = append(items, wireAuditRecord{
			ID:              uuid.NewSHA1(namespace, []byte("add_customer/"+c.id)).String(),
			CustomerID:      c.id,
			CustomerName:    c.company,
			OperationType:   "add_customer",
			OperationDate:   wireTime(c.createdAt),
			OperationStatus: "succeeded",
			Attributes:      wireAttributes{ObjectType: "AuditRecord"},
		})
	}
	extra := url.Values{"startDate": {q.Get("startDate")}}
	if q.Get("endDate") != "" {
		extra.Set("endDate", q.Get("endDate"))
	}
	return s.pages.first(&pager{kind: kindAuditRecords, path: "auditrecords", extra: extra.Encode(), items: items, size: size}, r)
}

// parseDate reads RFC 3339 or a bare date. A bare end date covers its whole day.
func parseDate(raw string, endOfDay bool) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t, true
	}
	t, err := time.Parse("2006-01-02", strings.TrimSpace(raw))
	if err != nil {
		return time.Time{}, false
	}
	if endOfDay {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, true
}
