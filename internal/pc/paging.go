package pc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// ErrListingTooLong is wrapped by the error of a listing that went past
// Config.MaxListed items or pages: the server is looping or the account is
// not a Tip sandbox, and no partial list is returned.
var ErrListingTooLong = errors.New("listing too long")

const continuationHeader = "MS-ContinuationToken"

type collection struct {
	Items json.RawMessage `json:"items"`
	Links struct {
		Next *link `json:"next"`
	} `json:"links"`
}

type link struct {
	URI     string `json:"uri"`
	Method  string `json:"method"`
	Headers []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

// listAll GETs firstURL and every page after it by links.next, decoding the
// items of each into T and checking each with check (may be nil). Any page
// failing fails the whole listing: a partial list is never returned. More
// than maxItems items or c.maxListed pages is ErrListingTooLong.
func listAll[T any](ctx context.Context, c *Client, op, endpoint, firstURL string, maxItems int, check func(T) error) ([]T, error) {
	var (
		all    []T
		seen   = map[string]bool{}
		next   = firstURL
		header http.Header
	)
	correlationID := correlationIDFrom(ctx)
	if correlationID == "" {
		// One correlation id ties the pages of one listing together.
		correlationID = NewGUID()
	}
	for page := 1; ; page++ {
		if page > c.maxListed {
			return nil, fmt.Errorf("%s: more than %d pages, the most a listing may have: %w", op, c.maxListed, ErrListingTooLong)
		}
		pageOp := op
		if page > 1 {
			pageOp = fmt.Sprintf("%s (page %d)", op, page)
		}
		cl := newCall(ctx, pageOp, endpoint, http.MethodGet, next)
		cl.correlationID = correlationID
		cl.header = header
		if page > 1 {
			// The caller's MS-RequestId names the listing's first request;
			// each further page is a request of its own.
			cl.requestID = NewGUID()
		}
		resp, err := c.do(ctx, cl)
		if err != nil {
			return nil, err
		}
		items, nl, err := decodePage(resp.body, maxItems-len(all), check)
		if errors.Is(err, ErrListingTooLong) {
			return nil, fmt.Errorf("%s: more than %d items, the most a listing may have: %w", op, maxItems, ErrListingTooLong)
		}
		if err != nil {
			return nil, decodeError(cl, resp, err)
		}
		all = append(all, items...)
		if nl == nil {
			return all, nil
		}
		if nl.Method != "" && !strings.EqualFold(nl.Method, http.MethodGet) {
			return nil, decodeError(cl, resp, fmt.Errorf("next link method %q is not GET", nl.Method))
		}
		if next, err = resolveLink(c.root, nl.URI); err != nil {
			return nil, decodeError(cl, resp, err)
		}
		header = http.Header{}
		token := ""
		for _, h := range nl.Headers {
			if h.Key == "" {
				continue
			}
			header.Add(h.Key, h.Value)
			if strings.EqualFold(h.Key, continuationHeader) {
				token = h.Value
			}
		}
		key := "token:" + token
		if token == "" {
			key = "link:" + next + "\n" + headerKey(header)
		}
		if seen[key] {
			return nil, fmt.Errorf("%s: page %d links to a page already read (continuation repeated): the server is looping", op, page)
		}
		seen[key] = true
	}
}

// decodePage decodes one page of a collection: its items (at most maxItems,
// else ErrListingTooLong), each passing check (may be nil), and its next link
// (nil on the last page). On error it returns neither items nor link.
func decodePage[T any](body []byte, maxItems int, check func(T) error) ([]T, *link, error) {
	var col collection
	if err := decodeObject(body, &col); err != nil {
		return nil, nil, err
	}
	var ts []T
	if items := bytes.TrimSpace(col.Items); len(items) > 0 && !bytes.Equal(items, []byte("null")) {
		if err := json.Unmarshal(items, &ts); err != nil {
			return nil, nil, fmt.Errorf("items: %w", err)
		}
		if len(ts) > maxItems {
			return nil, nil, ErrListingTooLong
		}
		if check != nil {
			for i, t := range ts {
				if err := check(t); err != nil {
					return nil, nil, fmt.Errorf("item %d: %w", i, err)
				}
			}
		}
	}
	return ts, col.Links.Next, nil
}

func headerKey(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q;", k, h[k])
	}
	return b.String()
}

// resolveLink turns a next link's uri into an absolute URL under root. The
// contract shows both "/v1/customers?…" and "/customers?…": a relative uri
// without the /v1 prefix gets it. An absolute uri must stay on the root's
// scheme and host, so a server cannot send our token elsewhere.
func resolveLink(root *url.URL, uri string) (string, error) {
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return "", errors.New("next link without uri")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("next link uri: %w", err)
	}
	if u.Scheme != "" || u.Host != "" {
		if !strings.EqualFold(u.Scheme, root.Scheme) || !strings.EqualFold(u.Host, root.Host) {
			return "", fmt.Errorf("next link %q leaves the API host %s", truncate(uri, 120), root.Host)
		}
		return uri, nil
	}
	if !strings.HasPrefix(uri, "/") {
		uri = "/" + uri
	}
	p, _, _ := strings.Cut(uri, "?")
	if p != "/v1" && !strings.HasPrefix(p, "/v1/") {
		uri = "/v1" + uri
	}
	return root.String() + uri, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// decodeObject decodes a 2xx body that must be one JSON object.
func decodeObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	return json.Unmarshal(body, v)
}

// decodeError reports a 2xx answer the client cannot use.
func decodeError(cl *call, resp *response, err error) error {
	return &Error{
		Op:            cl.op,
		StatusCode:    resp.status,
		RequestID:     cl.requestID,
		CorrelationID: cl.correlationID,
		CV:            resp.header.Get("MS-CV"),
		Err:           fmt.Errorf("undecodable response: %w", err),
	}
}
