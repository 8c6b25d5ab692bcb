package pcsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// LoadSeed reads a YAML seed file (the format is in the package comment).
// Every problem is reported, one "line N: …" per line, in file order.
// Ages stay relative: AddCustomer resolves them against the server's clock.
func LoadSeed(r io.Reader) ([]SeedCustomer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file is an empty sandbox
		}
		return nil, fmt.Errorf("seed: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("seed: line %d: only one YAML document is allowed", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("seed: line %d: want a list of customers", root.Line)
	}

	var p problems
	var out []SeedCustomer
	ids := map[string]int{}
	domains := map[string]int{}
	for i, node := range root.Content {
		c, ok := decodeCustomer(node, &p)
		if !ok {
			continue
		}
		if i == SandboxLimit {
			p.add(node.Line, "customer %d: the sandbox holds at most %d customers", i+1, SandboxLimit)
		}
		if c.ID != "" {
			if first, dup := ids[c.ID]; dup {
				p.add(node.Line, "id %s: already used on line %d", c.ID, first)
			}
			ids[c.ID] = node.Line
		}
		if d := strings.ToLower(c.Domain); d != "" {
			if first, dup := domains[d]; dup {
				p.add(node.Line, "domain %s: already used on line %d", c.Domain, first)
			}
			domains[d] = node.Line
		}
		out = append(out, c)
	}
	if len(p) > 0 {
		return nil, p
	}
	return out, nil
}

type seedCustomerYAML struct {
	ID          string          `yaml:"id"`
	Domain      string          `yaml:"domain"`
	CompanyName string          `yaml:"company_name"`
	CreatedAt   string          `yaml:"created_at"`
	Age         string          `yaml:"age"`
	Orders      []seedOrderYAML `yaml:"orders"`
}

type seedOrderYAML struct {
	ID           string `yaml:"id"`
	Type         string `yaml:"type"`
	Status       string `yaml:"status"`
	CreatedAt    string `yaml:"created_at"`
	Age          string `yaml:"age"`
	NeverCancels bool   `yaml:"never_cancels"`
}

var (
	customerKeys = []string{"id", "domain", "company_name", "created_at", "age", "orders"}
	orderKeys    = []string{"id", "type", "status", "created_at", "age", "never_cancels"}
)

func decodeCustomer(node *yaml.Node, p *problems) (SeedCustomer, bool) {
	if !checkKeys(node, customerKeys, "customer", p) {
		return SeedCustomer{}, false
	}
	var y seedCustomerYAML
	if err := node.Decode(&y); err != nil {
		p.add(node.Line, "customer: %s", yamlMessage(err))
		return SeedCustomer{}, false
	}
	c := SeedCustomer{ID: y.ID, Domain: y.Domain, CompanyName: y.CompanyName}
	line := func(key string) int { return keyLine(node, key) }
	if y.Domain == "" {
		p.add(node.Line, "domain is required")
	}
	if y.ID != "" {
		if err := checkID(y.ID); err != nil {
			p.add(line("id"), "id: %v", err)
		}
	}
	c.CreatedAt, c.Age = seedTime(y.CreatedAt, y.Age, line, p)

	orders := valueOf(node, "orders")
	seen := map[string]bool{}
	for i, y := range y.Orders {
		on := node
		if orders != nil && i < len(orders.Content) {
			on = orders.Content[i]
		}
		if !checkKeys(on, orderKeys, "order", p) {
			continue
		}
		oline := func(key string) int { return keyLine(on, key) }
		o := SeedOrder{ID: y.ID, Type: y.Type, Status: y.Status, NeverCancels: y.NeverCancels}
		switch y.Type {
		case TypeSoftware, TypeReservedInstance, TypeSubscription:
		case "":
			p.add(on.Line, "order: type is required (%s, %s or %s)", TypeSoftware, TypeReservedInstance, TypeSubscription)
		default:
			p.add(oline("type"), "order: type %q: want %s, %s or %s", y.Type, TypeSoftware, TypeReservedInstance, TypeSubscription)
		}
		switch y.Status {
		case "", StatusCompleted, StatusPending, StatusCancelled, StatusUnknown:
		default:
			p.add(oline("status"), "order: status %q: want %s, %s, %s or %s", y.Status, StatusCompleted, StatusPending, StatusCancelled, StatusUnknown)
		}
		if y.ID != "" {
			if err := checkID(y.ID); err != nil {
				p.add(oline("id"), "order: id: %v", err)
			}
			if seen[y.ID] {
				p.add(oline("id"), "order: id %s already used by this customer", y.ID)
			}
			seen[y.ID] = true
		}
		o.CreatedAt, o.Age = seedTime(y.CreatedAt, y.Age, oline, p)
		c.Orders = append(c.Orders, o)
	}
	return c, true
}

// seedTime reads created_at or age (not both).
func seedTime(createdAt, age string, line func(string) int, p *problems) (time.Time, time.Duration) {
	if createdAt != "" && age != "" {
		p.add(line("age"), "give created_at or age, not both")
		return time.Time{}, 0
	}
	if createdAt != "" {
		t, ok := parseDate(createdAt, false)
		if !ok {
			p.add(line("created_at"), "created_at %q: want RFC 3339 (2006-01-02T15:04:05Z) or a date (2006-01-02)", createdAt)
		}
		return t, 0
	}
	if age != "" {
		d, err := parseAge(age)
		if err != nil {
			p.add(line("age"), "%v", err)
		}
		return time.Time{}, d
	}
	return time.Time{}, 0
}

// parseAge reads an age such as 10d, 72h, 1w, 1d12h or 90m (units w, d, h, m, s).
func parseAge(s string) (time.Duration, error) {
	units := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}
	bad := fmt.Errorf("age %q: want a duration like 10d, 72h or 1d12h", s)
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, bad
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		n, err := strconv.ParseInt(rest[:i], 10, 32)
		unit, ok := units[rest[i:j]]
		if err != nil || !ok {
			return 0, bad
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	return total, nil
}

// checkKeys reports keys a customer or order may not have, with their lines,
// so a typo such as `compnay_name` is not silently ignored.
func checkKeys(node *yaml.Node, allowed []string, what string, p *problems) bool {
	if node.Kind != yaml.MappingNode {
		p.add(node.Line, "%s: want a mapping of %s", what, strings.Join(allowed, ", "))
		return false
	}
	ok := true
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		known := false
		for _, a := range allowed {
			known = known || k.Value == a
		}
		if !known {
			p.add(k.Line, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(allowed, ", "))
			ok = false
		}
	}
	return ok
}

func valueOf(node *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

func keyLine(node *yaml.Node, key string) int {
	if v := valueOf(node, key); v != nil {
		return v.Line
	}
	return node.Line
}

// yamlMessage drops yaml.v3's "yaml: unmarshal errors:" preamble and Go type names.
func yamlMessage(err error) string {
	msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:"))
	msg = strings.NewReplacer("pcsim.seedCustomerYAML", "a customer", "[]pcsim.seedOrderYAML", "a list of orders",
		"pcsim.seedOrderYAML", "an order").Replace(msg)
	return strings.Join(strings.Fields(msg), " ")
}

type problem struct {
	line int
	msg  string
}

// problems is every mistake in a seed file, in file order.
type problems []problem

func (p *problems) add(line int, format string, args ...any) {
	*p = append(*p, problem{line: line, msg: fmt.Sprintf(format, args...)})
}

func (p problems) Error() string {
	lines := make([]string, len(p))
	for i, q := range p {
		lines[i] = fmt.Sprintf("seed: line %d: %s", q.line, q.msg)
	}
	return strings.Join(lines, "\n")
}

// The demo sandbox DemoSeed builds, by the numbers. The demo config selects
// domains `^ci-[0-9a-f]{8}\.onmicrosoft\.com$` older than 72h and keeps
// company names `^CI golden`.
const (
	DemoCIRuns    = 20                                                // "CI run N", ci-<8 hex>.onmicrosoft.com, created N days (and one hour) ago, N = 1..20
	DemoCIYoung   = 2                                                 // of those, younger than 72h (runs 1 and 2): selected but too young
	DemoExpired   = DemoCIRuns - DemoCIYoung                          // 18: older than 72h, every order cancellable: deletable
	DemoGolden    = 3                                                 // "CI golden N", ci-<8 hex>, 10 days old, with orders: protected by the keep
	DemoBlocked   = 1                                                 // "CI run 80", ci-<8 hex>, 80 days old, one 80-day-old order: cannot be cancelled (blocked)
	DemoOther     = 10                                                // "Contoso N", contoso-N.onmicrosoft.com, 30 days old: not selected
	DemoCustomers = DemoCIRuns + DemoGolden + DemoBlocked + DemoOther // 34
)

// DemoSeed returns the demo sandbox (see the Demo constants), the same for
// the same now: ids are name-based UUIDs. Each CI run N has 1 + N%3 orders,
// alternating software and reservedinstance, created with the customer;
// each golden customer has two (one of each), each Contoso customer one software order.
func DemoSeed(now time.Time) []SeedCustomer {
	day := 24 * time.Hour
	id := func(name string) string { return uuid.NewSHA1(namespace, []byte("demo/"+name)).String() }
	ciDomain := func(name string) string { return "ci-" + id("domain/" + name)[:8] + ".onmicrosoft.com" }
	orders := func(name string, created time.Time, types ...string) []SeedOrder {
		var os []SeedOrder
		for k, t := range types {
			os = append(os, SeedOrder{
				ID:        strings.ReplaceAll(id(fmt.Sprintf("order/%s/%d", name, k+1)), "-", ""),
				Type:      t,
				CreatedAt: created,
			})
		}
		return os
	}
	mixed := func(n, count int) []string {
		types := make([]string, count)
		for k := range types {
			types[k] = TypeSoftware
			if (n+k)%2 == 0 {
				types[k] = TypeReservedInstance
			}
		}
		return types
	}

	var out []SeedCustomer
	for n := 1; n <= DemoCIRuns; n++ {
		name := fmt.Sprintf("ci-run-%d", n)
		// The extra hour keeps every age off a whole-day boundary, so "older than 72h" is never a tie.
		created := now.Add(-time.Duration(n)*day - time.Hour)
		out = append(out, SeedCustomer{
			ID: id("customer/" + name), Domain: ciDomain(name), CompanyName: fmt.Sprintf("CI run %d", n),
			CreatedAt: created, Orders: orders(name, created, mixed(n, 1+n%3)...),
		})
	}
	for n := 1; n <= DemoGolden; n++ {
		name := fmt.Sprintf("ci-golden-%d", n)
		created := now.Add(-10 * day)
		out = append(out, SeedCustomer{
			ID: id("customer/" + name), Domain: ciDomain(name), CompanyName: fmt.Sprintf("CI golden %d", n),
			CreatedAt: created, Orders: orders(name, created, TypeSoftware, TypeReservedInstance),
		})
	}
	{
		name := "ci-run-80"
		created := now.Add(-80 * day)
		out = append(out, SeedCustomer{
			ID: id("customer/" + name), Domain: ciDomain(name), CompanyName: "CI run 80",
			CreatedAt: created, Orders: orders(name, created, TypeReservedInstance),
		})
	}
	for n := 1; n <= DemoOther; n++ {
		name := fmt.Sprintf("contoso-%d", n)
		created := now.Add(-30 * day)
		out = append(out, SeedCustomer{
			ID: id("customer/" + name), Domain: name + ".onmicrosoft.com", CompanyName: fmt.Sprintf("Contoso %d", n),
			CreatedAt: created, Orders: orders(name, created, TypeSoftware),
		})
	}
	return out
}
