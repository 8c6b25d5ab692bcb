package pcsim

import (
	"net/http"
	"strconv"
)

// maxCursors bounds the continuation tokens kept; the oldest are forgotten
// first (a client that comes back with one gets 400, as with an expired token).
const maxCursors = 10_000

// pager is a snapshot of a collection taken at its first page.
type pager struct {
	kind  string // route kind the snapshot belongs to: a token of another collection is refused
	path  string // "customers" or "auditrecords"
	extra string // encoded query the next links carry besides size and seekOperation
	items []any
	size  int
}

type cursor struct {
	p      *pager
	offset int
	page   int // 0 for the first page
}

// pageStore maps continuation tokens to cursors. A token stays valid after
// use, so a retried page request gets the same page again.
type pageStore struct {
	cursors map[string]cursor
	fifo    []string
}

func (ps *pageStore) first(p *pager, r *http.Request) reply {
	return ps.render(cursor{p: p}, r)
}

func (ps *pageStore) next(tok, kind string, r *http.Request) (reply, bool) {
	c, ok := ps.cursors[tok]
	if !ok || c.p.kind != kind {
		return reply{}, false
	}
	return ps.render(c, r), true
}

func (ps *pageStore) render(c cursor, r *http.Request) reply {
	items := c.p.items
	end := min(c.offset+c.p.size, len(items))
	page := items[c.offset:end]
	if page == nil {
		page = []any{}
	}
	coll := wireCollection{
		TotalCount: len(items),
		Items:      page,
		Links:      wireLinks{Self: &wireLink{URI: r.URL.RequestURI(), Method: http.MethodGet, Headers: []wireHeader{}}},
		Attributes: wireAttributes{ObjectType: "Collection"},
	}
	if end < len(items) {
		tok := ps.put(cursor{p: c.p, offset: end, page: c.page + 1})
		// Partner Center's next links come both with and without /v1; alternate
		// so a client must resolve both forms in one listing.
		prefix := "/v1"
		if c.page%2 == 1 {
			prefix = ""
		}
		uri := prefix + "/" + c.p.path + "?size=" + strconv.Itoa(c.p.size)
		if c.p.extra != "" {
			uri += "&" + c.p.extra
		}
		uri += "&seekOperation=Next"
		coll.Links.Next = &wireLink{URI: uri, Method: http.MethodGet, Headers: []wireHeader{{Key: "MS-ContinuationToken", Value: tok}}}
	}
	return jsonReply(http.StatusOK, coll)
}

func (ps *pageStore) put(c cursor) string {
	if ps.cursors == nil {
		ps.cursors = map[string]cursor{}
	}
	tok := randomToken(24)
	ps.cursors[tok] = c
	ps.fifo = append(ps.fifo, tok)
	if len(ps.fifo) > maxCursors {
		drop := len(ps.fifo) - maxCursors
		for _, old := range ps.fifo[:drop] {
			delete(ps.cursors, old)
		}
		ps.fifo = append(ps.fifo[:0], ps.fifo[drop:]...)
	}
	return tok
}
