package policy

import (
	"slices"
	"strings"
	"time"
)

// Subject is what Decide knows of one customer.
type Subject struct {
	ID, Domain, CompanyName string
	Age                     time.Duration // since the reaper first saw it, or the activity log's add_customer
	AgeKnown                bool          // false: no trustworthy age; never expired by an older_than policy
	MarkedAt                time.Time     // zero: not marked
}

// StoreKeep is a protection a person added with `reaper keep` (a reaper_keep row).
type StoreKeep struct {
	CustomerID, Reason string
	Until              time.Time // zero: forever
}

// Verdict is what a pass should do with a customer. The zero value,
// NotSelected, does nothing.
type Verdict int

const (
	NotSelected Verdict = iota // no policy selects it
	Protected                  // selected, but a keep protects it
	TooYoung                   // selected, not older than older_than yet
	AgeUnknown                 // selected by a policy with older_than, but its age is unknown
	Mark                       // expired under a policy with grace: mark it now, delete after the grace
	Pending                    // marked, grace not over
	Expired                    // delete it
)

var verdictNames = [...]string{"not_selected", "protected", "too_young", "age_unknown", "mark", "pending", "expired"}

func (v Verdict) String() string {
	if v < 0 || int(v) >= len(verdictNames) {
		return "verdict(" + string(appendInt(nil, int64(v))) + ")"
	}
	return verdictNames[v]
}

// Decision is the outcome of Decide for one customer.
type Decision struct {
	Verdict    Verdict
	Policy     string    // the deciding policy ("" for NotSelected)
	Selected   []string  // every policy whose selector matches, in file order
	Protection string    // for Protected: which keep protects it
	DeleteAt   time.Time // for Mark and Pending: when the grace ends
	Reason     string    // one sentence for people
}

const reasonNotSelected = "selected by no policy"

// Decide says what to do with customer s of account at time now. It is pure
// and cheap: it runs for every customer of every account on every pass, and a
// customer no policy selects costs no allocation.
//
// A protection beats every selection: the global keep, the keep of any policy
// of the account (not only of the selecting one), and every unexpired store
// keep. A customer whose age is unknown is never expired by a policy with
// older_than. If onlyPolicy is not "", only that policy selects (protections
// still come from every policy).
//
// Several policies may select a customer. The first in file order that finds
// it expired decides; failing that, the first that would mark it, and so on
// (Pending, Mark, AgeUnknown, TooYoung): a policy that cannot act yet must not
// hide one that can.
func (c *Config) Decide(account string, s Subject, keeps []StoreKeep, now time.Time, onlyPolicy string) Decision {
	var d Decision
	var decider *Policy
	var selected [8]string // collected on the stack, so Selected costs one allocation
	names := selected[:0]
	for i := range c.Policies {
		p := &c.Policies[i]
		if p.Account != account || onlyPolicy != "" && p.Name != onlyPolicy || !p.Select.matches(&s) {
			continue
		}
		names = append(names, p.Name)
		if v, _ := p.verdict(&s, now); decider == nil || v > d.Verdict {
			decider, d.Verdict = p, v
		}
	}
	if decider == nil {
		d.Reason = reasonNotSelected
		return d
	}
	d.Selected = slices.Clone(names)
	d.Policy = decider.Name
	var buf [256]byte
	b := append(buf[:0], "selected by "...)
	b = append(b, decider.Name...)
	if prot := c.protection(account, &s, keeps, now); prot != "" {
		d.Verdict, d.Protection = Protected, prot
		b = append(b, " but protected by "...)
		b = append(b, prot...)
		d.Reason = string(b)
		return d
	}
	d.Verdict, d.DeleteAt = decider.verdict(&s, now)
	d.Reason = string(decider.appendReason(b, d.Verdict, &s, d.DeleteAt))
	return d
}

// verdict is p's judgement of a customer it selects, protections aside.
func (p *Policy) verdict(s *Subject, now time.Time) (Verdict, time.Time) {
	if p.OlderThan > 0 {
		if !s.AgeKnown {
			return AgeUnknown, time.Time{}
		}
		// "older than 72h" is strict: at exactly 72h it is not.
		if s.Age <= time.Duration(p.OlderThan) {
			return TooYoung, time.Time{}
		}
	}
	if p.Grace <= 0 {
		return Expired, time.Time{}
	}
	if s.MarkedAt.IsZero() {
		return Mark, now.Add(time.Duration(p.Grace))
	}
	if end := s.MarkedAt.Add(time.Duration(p.Grace)); now.Before(end) {
		return Pending, end
	}
	return Expired, time.Time{}
}

func (p *Policy) appendReason(b []byte, v Verdict, s *Subject, deleteAt time.Time) []byte {
	b = append(b, "; "...)
	switch {
	case p.OlderThan == 0:
		b = append(b, "no age requirement"...)
	case v == AgeUnknown:
		b = append(b, "age unknown, so older_than "...)
		b = appendDuration(b, time.Duration(p.OlderThan))
		b = append(b, " cannot hold"...)
		return b
	case v == TooYoung:
		b = appendAge(b, s.Age)
		b = append(b, " old, not older than "...)
		b = appendDuration(b, time.Duration(p.OlderThan))
		b = append(b, " yet"...)
		return b
	default:
		b = appendAge(b, s.Age)
		b = append(b, " old (older_than "...)
		b = appendDuration(b, time.Duration(p.OlderThan))
		b = append(b, ')')
	}
	switch v {
	case Mark:
		b = append(b, "; marked now, grace "...)
		b = appendDuration(b, time.Duration(p.Grace))
		b = append(b, " ends "...)
		b = deleteAt.UTC().AppendFormat(b, time.RFC3339)
	case Pending:
		b = append(b, "; marked "...)
		b = s.MarkedAt.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, ", grace "...)
		b = appendDuration(b, time.Duration(p.Grace))
		b = append(b, " ends "...)
		b = deleteAt.UTC().AppendFormat(b, time.RFC3339)
	case Expired:
		if p.Grace > 0 {
			b = append(b, "; marked "...)
			b = s.MarkedAt.UTC().AppendFormat(b, time.RFC3339)
			b = append(b, ", grace "...)
			b = appendDuration(b, time.Duration(p.Grace))
			b = append(b, " is over"...)
		}
	}
	return b
}

// matches reports whether every given field of sel matches s. A selector
// with no field matches nothing: a hand-built Policy with a zero Selector
// must not select a whole sandbox.
func (sel *Selector) matches(s *Subject) bool {
	if sel.Domain == nil && sel.CompanyName == nil && len(sel.CustomerIDs) == 0 {
		return false
	}
	if len(sel.CustomerIDs) > 0 && !containsFold(sel.CustomerIDs, s.ID) {
		return false
	}
	if sel.Domain != nil && !sel.Domain.MatchString(s.Domain) {
		return false
	}
	if sel.CompanyName != nil && !sel.CompanyName.MatchString(s.CompanyName) {
		return false
	}
	return true
}

// protection names the first protection of s, or returns "". The order only
// decides which one is named: any one protects.
func (c *Config) protection(account string, s *Subject, keeps []StoreKeep, now time.Time) string {
	for _, k := range keeps {
		if strings.EqualFold(k.CustomerID, s.ID) && (k.Until.IsZero() || now.Before(k.Until)) {
			var buf [128]byte
			b := append(buf[:0], "reaper_keep"...)
			if !k.Until.IsZero() {
				b = append(b, " until "...)
				b = k.Until.UTC().AppendFormat(b, time.RFC3339)
			}
			if k.Reason != "" {
				b = append(b, ": "...)
				b = append(b, k.Reason...)
			}
			return string(b)
		}
	}
	if what := c.Keep.protects(s); what != "" {
		return what + " (global)"
	}
	for i := range c.Policies {
		p := &c.Policies[i]
		if p.Account != account {
			continue
		}
		if what := p.Keep.protects(s); what != "" {
			return "policy " + p.Name + " " + what
		}
	}
	return ""
}

// protects names the entry of k that matches s, or returns "".
func (k *Keep) protects(s *Subject) string {
	if containsFold(k.CustomerIDs, s.ID) {
		return "keep.customer_ids"
	}
	for _, re := range k.Domains {
		if re.MatchString(s.Domain) {
			return "keep.domains '" + strings.TrimPrefix(re.String(), "(?i)") + "'"
		}
	}
	for _, re := range k.CompanyNames {
		if re.MatchString(s.CompanyName) {
			return "keep.company_names '" + re.String() + "'"
		}
	}
	return ""
}

func containsFold(ids []string, id string) bool {
	for _, x := range ids {
		if strings.EqualFold(x, id) {
			return true
		}
	}
	return false
}
