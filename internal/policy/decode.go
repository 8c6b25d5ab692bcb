package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse decodes and validates a config file. file names it in problems;
// lookupEnv resolves ${VAR} references (os.LookupEnv in Load; tests pass a
// map so they never touch the process environment).
//
// On any problem Parse returns a nil Config and Problems holding every
// problem found, sorted by line.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: file, lookupEnv: lookupEnv}
	root := d.document(data)
	if root == nil {
		return nil, d.probs.sorted()
	}
	cfg := d.config(root)
	if len(d.probs) > 0 {
		return nil, d.probs.sorted()
	}
	return cfg, nil
}

// decoder walks the yaml.Node tree with the schema in hand. Walking the nodes
// ourselves, rather than yaml's struct decoding, gives every problem its line
// and field path, finds every unknown key at any depth, and lets ${VAR}
// expansion happen on parsed scalars only.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	probs     Problems
	literals  []Problem // secrets written in the file as they are (see literal)
}

func (d *decoder) addf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document returns the single document's top-level mapping, or nil after
// recording why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.addf(nil, "", "the config file is empty")
		} else {
			d.syntax(err)
		}
		return nil
	}
	// yaml.v3 silently ignores documents after the first; a second one is
	// almost always a paste gone wrong, and its settings would be lost.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
	default:
		d.addf(&extra, "", "a second YAML document (after ---) is not allowed: put every setting in one document")
	}
	if len(doc.Content) != 1 {
		d.addf(&doc, "", "the config file is empty")
		return nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		d.addf(root, "", "the config file is empty")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.addf(root, "", "the top level must be a mapping of settings (schedule:, accounts:, policies:, ...), not %s", kindName(root))
		return nil
	}
	return root
}

func (d *decoder) syntax(err error) {
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.probs = append(d.probs, Problem{File: d.file, Line: line, Message: "YAML syntax: " + m[2]})
		return
	}
	d.addf(nil, "", "YAML syntax: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{File: d.file, StateDir: defaultStateDir, Limits: defaultLimits()}
	m := d.fields(root, "", topKeys...)

	if n := m["schedule"]; n != nil {
		cfg.scheduleLine = n.Line
		if s, ok := d.scalar(n, "schedule"); ok && s != "" {
			if msg := checkSchedule(s); msg != "" {
				if fromEnv(n) {
					msg = show(n, s) + " is not a valid cron schedule (5 fields, optional CRON_TZ=Zone prefix)"
				}
				d.addf(n, "schedule", "%s", msg)
			}
			cfg.Schedule = s
		}
	}
	if n := m["database"]; n != nil {
		db := d.fields(n, "database", databaseKeys...)
		if u := db["url"]; u != nil {
			if s, ok := d.scalar(u, "database.url"); ok {
				if msg := checkDatabaseURL(s); msg != "" {
					d.addf(u, "database.url", "%s", msg)
				} else if hasPassword(s) {
					d.literal(u, "database.url")
				}
				cfg.Database.URL = Secret(s)
			}
		}
	}
	if n := m["state_dir"]; n != nil {
		if s, ok := d.scalar(n, "state_dir"); ok && s != "" {
			cfg.StateDir = s
		}
	}
	if msg := checkStateDir(cfg.StateDir); msg != "" {
		d.addf(m["state_dir"], "state_dir", "%s", msg)
	}
	if n := m["limits"]; n != nil {
		d.limits(n, &cfg.Limits)
	}
	if n := m["http"]; n != nil {
		d.http(n, &cfg.HTTP)
	}
	cfg.Notify.QuotaWarn = defaultQuotaWarn
	if n := m["notify"]; n != nil {
		d.notify(n, &cfg.Notify)
	}
	tokenKeyNode := d.tokenKey(m, cfg)
	if n := m["keep"]; n != nil {
		cfg.Keep = d.keep(n, "keep")
	}

	accounts := d.list(m["accounts"], "accounts")
	if v := m["accounts"]; len(accounts) == 0 && (v == nil || isNull(resolve(v)) || resolve(v).Kind == yaml.SequenceNode) {
		at := v
		if at == nil {
			at = root
		}
		d.addf(at, "accounts", "at least one account is required")
	}
	accountLine := map[string]int{}
	endpointLine := map[string]int{}
	for i, n := range accounts {
		a, fields := d.account(n, fmt.Sprintf("accounts[%d]", i))
		if a.Name != "" {
			if first, dup := accountLine[a.Name]; dup {
				d.addf(fields["name"], fmt.Sprintf("accounts[%d].name", i), "account %s is defined twice (first on line %d)", show(fields["name"], a.Name), first)
			} else {
				accountLine[a.Name] = a.Line
			}
		}
		// Two accounts on one sandbox would reap it twice at once, each with
		// its own delete cap and leadership lock.
		if a.PartnerTenantID != "" {
			key := a.Cloud + " " + a.BaseURL + " " + a.PartnerTenantID
			if first, dup := endpointLine[key]; dup {
				d.addf(fields["partner_tenant_id"], fmt.Sprintf("accounts[%d].partner_tenant_id", i), "the same sandbox (cloud, base_url and tenant) is already configured on line %d", first)
			} else {
				endpointLine[key] = a.Line
			}
		}
		if a.Credential == CredentialRefreshToken && cfg.TokenKey == "" && tokenKeyNode == nil {
			at := fields["refresh_token"]
			if at == nil {
				at = fields["refresh_token_file"]
			}
			d.addf(at, fmt.Sprintf("accounts[%d].%s", i, resolveKey(fields, "refresh_token", "refresh_token_file")),
				"needs token_key or token_key_file at the top level: the rotated refresh tokens are kept in the store encrypted with it")
		}
		cfg.Accounts = append(cfg.Accounts, a)
	}

	cfg.literalSecrets = d.literals

	policyLine := map[string]int{}
	for i, n := range d.list(m["policies"], "policies") {
		path := fmt.Sprintf("policies[%d]", i)
		p, fields := d.policy(n, path)
		if p.Name != "" {
			if first, dup := policyLine[p.Name]; dup {
				d.addf(fields["name"], path+".name", "policy %s is defined twice (first on line %d)", show(fields["name"], p.Name), first)
			} else {
				policyLine[p.Name] = p.Line
			}
		}
		if p.Account != "" && len(accounts) > 0 {
			if _, ok := accountLine[p.Account]; !ok {
				d.addf(fields["account"], path+".account", "no account is named %s (accounts: %s)", show(fields["account"], p.Account), strings.Join(accountNames(cfg.Accounts), ", "))
			}
		}
		cfg.Policies = append(cfg.Policies, p)
	}
	return cfg
}

func accountNames(as []Account) []string {
	var names []string
	for _, a := range as {
		if a.Name != "" {
			names = append(names, a.Name)
		}
	}
	return names
}

// account decodes one account; it also returns the field nodes, for
// problems the caller finds across accounts.
func (d *decoder) account(n *yaml.Node, path string) (Account, map[string]*yaml.Node) {
	a := Account{Cloud: "public", ActivityLog: true, Line: resolve(n).Line}
	m := d.fields(n, path, accountKeys...)
	if m == nil {
		return a, nil
	}
	a.Name = d.name(n, m, path)
	if v := m["cloud"]; v != nil {
		if s, ok := d.scalar(v, path+".cloud"); ok && s != "" {
			if !slices.Contains(clouds, s) {
				d.addf(v, path+".cloud", "%s is not a cloud: use %s", show(v, s), strings.Join(clouds, ", "))
			}
			a.Cloud = s
		}
	}
	a.PartnerTenantID = d.requiredGUID(n, m, path, "partner_tenant_id")
	a.ClientID = d.requiredGUID(n, m, path, "client_id")
	d.credentials(n, m, path, &a)
	for _, f := range []struct {
		key string
		dst *string
	}{{"base_url", &a.BaseURL}, {"authority", &a.Authority}} {
		if v := m[f.key]; v != nil {
			if s, ok := d.scalar(v, path+"."+f.key); ok && s != "" {
				if msg := checkEndpoint(s); msg != "" {
					d.addf(v, path+"."+f.key, "%s", msg)
				}
				*f.dst = s
			}
		}
	}
	d.boolean(m["activity_log"], path+".activity_log", &a.ActivityLog)
	return a, m
}

// boolean reads an optional true/false into dst; absent or null keeps dst.
func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) {
	if n == nil {
		return
	}
	if s, ok := d.scalar(n, path); ok && s != "" {
		b, err := parseBool(s)
		if err != nil {
			d.addf(n, path, "%s is not true or false", show(n, s))
			return
		}
		*dst = b
	}
}

func (d *decoder) limits(n *yaml.Node, l *Limits) {
	m := d.fields(n, "limits", limitKeys...)
	d.positiveInt(m["concurrency"], "limits.concurrency", &l.Concurrency)
	d.positiveInt(m["requests_per_minute"], "limits.requests_per_minute", &l.RequestsPerMinute)
	d.positiveInt(m["max_deletes_per_pass"], "limits.max_deletes_per_pass", &l.MaxDeletesPerPass)
	d.positiveInt(m["max_listed"], "limits.max_listed", &l.MaxListed)
	d.duration(m["max_retry_wait"], "limits.max_retry_wait", true, &l.MaxRetryWait)
	d.boolean(m["allow_above_documented_rate"], "limits.allow_above_documented_rate", &l.AllowAboveDocumentedRate)
	intervalOK := d.duration(m["poll_interval"], "limits.poll_interval", true, &l.PollInterval)
	maxOK := d.duration(m["poll_max"], "limits.poll_max", true, &l.PollMax)
	d.duration(m["cancel_timeout"], "limits.cancel_timeout", true, &l.CancelTimeout)
	d.duration(m["plan_max_age"], "limits.plan_max_age", true, &l.PlanMaxAge)
	d.duration(m["drain_timeout"], "limits.drain_timeout", true, &l.DrainTimeout)
	d.checkLimits(m, l)
	if intervalOK && maxOK && l.PollInterval > l.PollMax {
		at := m["poll_interval"]
		if at == nil {
			at = m["poll_max"]
		}
		d.addf(at, "limits.poll_interval", "%s is longer than limits.poll_max %s", l.PollInterval, l.PollMax)
	}
}

// policy decodes one policy; it also returns the field nodes, for problems
// the caller finds across policies.
func (d *decoder) policy(n *yaml.Node, path string) (Policy, map[string]*yaml.Node) {
	p := Policy{Line: resolve(n).Line}
	m := d.fields(n, path, policyKeys...)
	if m == nil {
		return p, nil
	}
	p.Name = d.name(n, m, path)
	if accountNode := d.required(n, m, path, "account"); accountNode != nil {
		if s, ok := d.scalar(accountNode, path+".account"); ok {
			if s == "" {
				d.addf(accountNode, path+".account", "must name an account")
			}
			p.Account = s
		}
	}
	if v := d.required(n, m, path, "select"); v != nil {
		p.Select = d.selector(v, path+".select")
	}
	d.olderThan(n, m, path, &p.OlderThan)
	d.duration(m["grace"], path+".grace", false, &p.Grace)
	if v := m["max_selected_fraction"]; v != nil {
		if s, ok := d.scalar(v, path+".max_selected_fraction"); ok && s != "" {
			f, err := strconv.ParseFloat(s, 64)
			// Written as f > 0 && f <= 1 so NaN fails too.
			if err != nil || !(f > 0 && f <= 1) {
				d.addf(v, path+".max_selected_fraction", "%s must be a number greater than 0 and at most 1 (0.5 = half of the account's customers)", show(v, s))
			} else {
				p.MaxSelectedFraction = f
			}
		}
	}
	if v := m["keep"]; v != nil {
		p.Keep = d.keep(v, path+".keep")
	}
	d.checkSelectsAnything(&p, m, path)
	return p, m
}

// olderThan reads the required older_than. "No age requirement" must be
// said as 0s: an empty value, null, an empty variable or a bare 0 may be a
// slip, and would make every selected customer expired at once.
func (d *decoder) olderThan(parent *yaml.Node, m map[string]*yaml.Node, path string, dst *Duration) {
	const how = "how old a selected customer must be before it expires, e.g. 72h or 7d (write 0s for no age requirement)"
	field := path + ".older_than"
	v := m["older_than"]
	if v == nil {
		d.addf(resolve(parent), field, "is required: %s", how)
		return
	}
	if isNull(resolve(v)) {
		d.addf(v, field, "is empty; it is required: %s", how)
		return
	}
	s, ok := d.scalar(v, field)
	if !ok {
		return
	}
	switch s {
	case "":
		d.addf(v, field, "is empty; it is required: %s", how)
		return
	case "0", "+0":
		d.addf(v, field, "write 0s to mean no age requirement (a bare 0 is easily a slip)")
		return
	}
	d.duration(v, field, false, dst)
}

func (d *decoder) selector(n *yaml.Node, path string) Selector {
	var s Selector
	before := len(d.probs)
	m := d.fields(n, path, selectorKeys...)
	if m == nil {
		return s
	}
	// After a misspelt key, "needs at least one field" only repeats the news.
	mistyped := len(d.probs) > before
	if v := m["domain"]; v != nil {
		s.Domain = d.regexp(v, path+".domain", true)
	}
	if v := m["company_name"]; v != nil {
		s.CompanyName = d.regexp(v, path+".company_name", false)
	}
	if v := m["customer_ids"]; v != nil {
		s.CustomerIDs = d.guids(v, path+".customer_ids")
	}
	// A selector with no field would select nothing: safe, but surely not
	// what was meant. A field given but invalid has its own problem already.
	given := false
	for _, v := range m {
		v = resolve(v)
		if !isNull(v) && !(v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			given = true
		}
	}
	if !given && !mistyped {
		d.addf(n, path, "needs at least one of domain, company_name, customer_ids")
	}
	return s
}

func (d *decoder) keep(n *yaml.Node, path string) Keep {
	var k Keep
	m := d.fields(n, path, keepKeys...)
	if v := m["customer_ids"]; v != nil {
		k.CustomerIDs = d.guids(v, path+".customer_ids")
	}
	for i, v := range d.list(m["domains"], path+".domains") {
		if re := d.regexp(v, fmt.Sprintf("%s.domains[%d]", path, i), true); re != nil {
			k.Domains = append(k.Domains, re)
		}
	}
	for i, v := range d.list(m["company_names"], path+".company_names") {
		if re := d.regexp(v, fmt.Sprintf("%s.company_names[%d]", path, i), false); re != nil {
			k.CompanyNames = append(k.CompanyNames, re)
		}
	}
	return k
}

// fields checks that n is a mapping holding only the known keys, each once,
// and returns the value node of each key present. A null node (`keep:` with
// nothing after it) is an empty mapping.
func (d *decoder) fields(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return map[string]*yaml.Node{}
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "must be a mapping of %s, not %s", strings.Join(known, ", "), kindName(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	keyLine := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.addf(k, path, "a key must be a plain name, not %s", kindName(k))
			continue
		}
		field := join(path, k.Value)
		if k.Tag == "!!merge" {
			d.addf(k, field, "merge keys (<<) are not supported: write the settings out")
			continue
		}
		if !slices.Contains(known, k.Value) {
			d.addf(k, field, "unknown field%s", suggest(k.Value, known))
			continue
		}
		if first, dup := keyLine[k.Value]; dup {
			d.addf(k, field, "set twice (first on line %d)", first)
			continue
		}
		keyLine[k.Value] = k.Line
		out[k.Value] = v
	}
	return out
}

// required returns m[key], recording a problem at the parent mapping if the
// key is missing or null.
func (d *decoder) required(parent *yaml.Node, m map[string]*yaml.Node, path, key string) *yaml.Node {
	v := m[key]
	if v == nil || isNull(resolve(v)) {
		at := v
		if at == nil {
			at = resolve(parent)
		}
		d.addf(at, join(path, key), "is required")
		return nil
	}
	return v
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// name reads a required account or policy name. Names end up in audit rows,
// lock keys and command-line flags, so they are kept to a shell-safe set.
func (d *decoder) name(parent *yaml.Node, m map[string]*yaml.Node, path string) string {
	v := d.required(parent, m, path, "name")
	if v == nil {
		return ""
	}
	s, ok := d.scalar(v, path+".name")
	if !ok {
		return ""
	}
	if !namePattern.MatchString(s) {
		d.addf(v, path+".name", "%s is not a valid name: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", show(v, s))
	}
	return s
}

// scalar returns the expanded value of a scalar node ("" for null). ok is
// false after a problem was recorded. Problems never quote the value: it may
// be a secret.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.addf(n, path, "must be a single value, not %s", kindName(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	v, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.addf(n, path, "%s", err)
		return "", false
	}
	return v, true
}

// list returns the items of a sequence node; null or absent is an empty list.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	if n == nil {
		return nil
	}
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(n, path, "must be a list, not %s", kindName(n))
		return nil
	}
	return n.Content
}

func (d *decoder) positiveInt(n *yaml.Node, path string, dst *int) {
	if n == nil {
		return
	}
	s, ok := d.scalar(n, path)
	if !ok || s == "" {
		return
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		d.addf(n, path, "%s must be a whole number greater than 0", show(n, s))
		return
	}
	*dst = v
}

// duration parses an optional duration into dst. positive forbids 0. ok
// reports that dst holds a valid value (its default when absent).
func (d *decoder) duration(n *yaml.Node, path string, positive bool, dst *Duration) (ok bool) {
	if n == nil {
		return true
	}
	s, ok := d.scalar(n, path)
	if !ok {
		return false
	}
	if s == "" {
		return true
	}
	v, why := parseDuration(s)
	if why != "" {
		d.addf(n, path, "invalid duration %s: %s", show(n, s), why)
		return false
	}
	if positive && v == 0 {
		d.addf(n, path, "must be greater than 0")
		return false
	}
	*dst = v
	return true
}

func (d *decoder) requiredGUID(parent *yaml.Node, m map[string]*yaml.Node, path, key string) string {
	v := d.required(parent, m, path, key)
	if v == nil {
		return ""
	}
	s, ok := d.scalar(v, path+"."+key)
	if !ok {
		return ""
	}
	if !isGUID(s) {
		d.addf(v, path+"."+key, "%s is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", show(v, s))
		return ""
	}
	if isNilGUID(s) {
		d.addf(v, path+"."+key, "must not be the nil GUID")
		return ""
	}
	return strings.ToLower(s)
}

func (d *decoder) guids(n *yaml.Node, path string) []string {
	var out []string
	for i, v := range d.list(n, path) {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, ok := d.scalar(v, p)
		if !ok {
			continue
		}
		if !isGUID(s) {
			d.addf(v, p, "%s is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", show(v, s))
			continue
		}
		out = append(out, strings.ToLower(s))
	}
	return out
}

// regexp compiles an RE2 pattern. Domain patterns get (?i): domain names have
// no case, and a keep pattern that missed "Golden.onmicrosoft.com" would let
// a protected customer be deleted.
func (d *decoder) regexp(n *yaml.Node, path string, domain bool) *regexp.Regexp {
	s, ok := d.scalar(n, path)
	if !ok {
		return nil
	}
	if s == "" {
		// An empty pattern matches every customer.
		d.addf(n, path, "must not be empty (an empty pattern matches everything)")
		return nil
	}
	if _, err := syntax.Parse(s, syntax.Perl); err != nil {
		var se *syntax.Error
		switch {
		case errors.As(err, &se) && fromEnv(n):
			d.addf(n, path, "invalid RE2 regexp in %s: %s", show(n, s), se.Code)
		case errors.As(err, &se):
			d.addf(n, path, "invalid RE2 regexp: %s: `%s`", se.Code, se.Expr)
		default:
			d.addf(n, path, "invalid RE2 regexp")
		}
		return nil
	}
	if domain {
		s = "(?i)" + s
	}
	re, err := regexp.Compile(s)
	if err != nil {
		d.addf(n, path, "invalid RE2 regexp: %s", err)
		return nil
	}
	return re
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isNilGUID(s string) bool { return s == "00000000-0000-0000-0000-000000000000" }

// show quotes a value for a problem message. A value that came from the
// environment is shown as the file writes it, "${VAR}", never expanded: a
// secret exported under the wrong variable must not end up in an error.
func show(n *yaml.Node, v string) string {
	if fromEnv(n) {
		return strconv.Quote(resolve(n).Value) + " (from the environment)"
	}
	return strconv.Quote(v)
}

func fromEnv(n *yaml.Node) bool {
	n = resolve(n)
	return n != nil && strings.Contains(n.Value, "${")
}

// checkEndpoint checks a base_url or authority override. Plain http is only
// for a simulator or proxy on this machine: the token request carries the
// client secret.
func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "is not a valid URL"
	}
	if u.User != nil {
		return "must not contain credentials"
	}
	if u.Host == "" || u.Hostname() == "" {
		return "must be an absolute URL with a host (https://host/...)"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "must use https:// (http:// is allowed only for localhost or a loopback address)"
		}
	default:
		return "must use https:// (http:// is allowed only for localhost or a loopback address)"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var urlParse = url.Parse

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// resolve follows aliases (*name) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return "a single value"
	default:
		return "something else"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the closest known key when the unknown one looks like a
// typo of it, and lists the known keys otherwise.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return "; did you mean " + best + "?"
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
