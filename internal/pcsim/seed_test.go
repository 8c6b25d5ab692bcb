package pcsim

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadSeed(t *testing.T) {
	t.Run("a seed file decodes every field", func(t *testing.T) {
		got, err := LoadSeed(strings.NewReader(`
- id: c1
  domain: ci-1a2b3c4d.onmicrosoft.com
  company_name: CI run 7
  age: 1d12h
  orders:
    - type: reservedinstance
      id: o1
      age: 70d
    - type: software
      status: cancelled
      never_cancels: true
- domain: contoso-1.onmicrosoft.com
  created_at: 2026-01-02T03:04:05Z
  orders:
    - type: subscription
      created_at: 2026-01-03
`))
		require.NoError(t, err)
		require.Equal(t, []SeedCustomer{
			{ID: "c1", Domain: "ci-1a2b3c4d.onmicrosoft.com", CompanyName: "CI run 7", Age: 36 * time.Hour, Orders: []SeedOrder{
				{ID: "o1", Type: TypeReservedInstance, Age: 70 * 24 * time.Hour},
				{Type: TypeSoftware, Status: StatusCancelled, NeverCancels: true},
			}},
			{Domain: "contoso-1.onmicrosoft.com", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Orders: []SeedOrder{
				{Type: TypeSubscription, CreatedAt: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)},
			}},
		}, got)
	})

	t.Run("an empty file is an empty sandbox", func(t *testing.T) {
		for _, in := range []string{"", "# nothing yet\n", "[]"} {
			got, err := LoadSeed(strings.NewReader(in))
			require.NoError(t, err)
			require.Empty(t, got)
		}
	})

	t.Run("ages are measured from the server's clock when added", func(t *testing.T) {
		seed, err := LoadSeed(strings.NewReader("- {id: c1, domain: a.onmicrosoft.com, age: 10d, orders: [{id: o1, type: software, age: 61d}]}\n"))
		require.NoError(t, err)
		s := newSim(t, Config{}, seed...)
		var c collection
		s.get("/v1/auditrecords?startDate="+t0.Add(-10*24*time.Hour).Format(time.RFC3339)+"&endDate="+t0.Add(-10*24*time.Hour).Format(time.RFC3339), &c)
		require.Equal(t, 1, c.TotalCount)
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		requireError(t, res, body, http.StatusBadRequest, codeWindowPassed)
	})

	var tooMany strings.Builder
	for i := range SandboxLimit + 1 {
		fmt.Fprintf(&tooMany, "- domain: c%d.onmicrosoft.com\n", i)
	}
	cases := []struct {
		name, in string
		want     []string
	}{
		{"an unknown field is named with its line", "- domain: a.x\n  compnay_name: Typo\n", []string{`seed: line 2: customer: unknown field "compnay_name"`}},
		{"an unknown order field is named with its line", "- domain: a.x\n  orders:\n    - type: software\n      stauts: cancelled\n", []string{`line 4: order: unknown field "stauts"`}},
		{"a missing domain is reported", "- company_name: No domain\n", []string{"seed: line 1: domain is required"}},
		{"created_at and age together are reported", "- domain: a.x\n  age: 1d\n  created_at: 2026-01-01\n", []string{"line 2: give created_at or age, not both"}},
		{"a bad age is reported", "- domain: a.x\n  age: 10 days\n", []string{`line 2: age "10 days": want a duration like 10d, 72h or 1d12h`}},
		{"a bad created_at is reported", "- domain: a.x\n  created_at: last week\n", []string{`line 2: created_at "last week"`}},
		{"a missing order type is reported", "- domain: a.x\n  orders:\n    - status: pending\n", []string{"line 3: order: type is required"}},
		{"a bad order type is reported", "- domain: a.x\n  orders:\n    - type: azure\n", []string{`line 3: order: type "azure"`}},
		{"a bad order status is reported", "- domain: a.x\n  orders:\n    - {type: software, status: active}\n", []string{`line 3: order: status "active"`}},
		{"a duplicate customer id is reported", "- {id: c1, domain: a.x}\n- {id: c1, domain: b.x}\n", []string{"line 2: id c1: already used on line 1"}},
		{"a duplicate domain is reported", "- {domain: a.x}\n- {domain: A.x}\n", []string{"line 2: domain A.x: already used on line 1"}},
		{"a duplicate order id is reported", "- domain: a.x\n  orders: [{id: o1, type: software}, {id: o1, type: software}]\n", []string{"line 2: order: id o1 already used"}},
		{"an id that is not a path segment is reported", "- {id: a/b, domain: a.x}\n", []string{`line 1: id: "a/b" is not a path segment`}},
		{"a second YAML document is refused", "- domain: a.x\n---\n- domain: b.x\n", []string{"only one YAML document is allowed"}},
		{"a mapping instead of a list is refused", "domain: a.x\n", []string{"seed: line 1: want a list of customers"}},
		{"a wrong value type is reported", "- domain: a.x\n  orders: many\n", []string{"line 1: customer:", "a list of orders"}},
		{"more customers than the sandbox holds are refused", tooMany.String(), []string{"line 76: customer 76: the sandbox holds at most 75 customers"}},
		{"every problem is reported, in file order", "- {domain: a.x, age: x}\n- {company_name: y}\n", []string{"seed: line 1: age \"x\"", "\nseed: line 2: domain is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadSeed(strings.NewReader(tc.in))
			require.Error(t, err)
			require.Nil(t, got)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseAge(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"10d", 240 * time.Hour}, {"72h", 72 * time.Hour}, {"1w", 168 * time.Hour}, {"1d12h", 36 * time.Hour}, {"90m", 90 * time.Minute}, {"0s", 0},
	}
	for _, tc := range cases {
		t.Run(tc.in+" is read", func(t *testing.T) {
			got, err := parseAge(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", "d", "10", "10y", "-1d", "1.5d"} {
		t.Run(fmt.Sprintf("%q is refused", bad), func(t *testing.T) {
			_, err := parseAge(bad)
			require.Error(t, err)
		})
	}
}

func TestAddCustomer(t *testing.T) {
	cases := []struct {
		name string
		add  SeedCustomer
		want string
	}{
		{"a customer without a domain is refused", SeedCustomer{ID: "x"}, "domain is required"},
		{"a taken domain is refused", SeedCustomer{Domain: "C1.onmicrosoft.com"}, "domain already taken"},
		{"a taken id is refused", SeedCustomer{ID: "c1", Domain: "other.onmicrosoft.com"}, "already used"},
		{"an unknown order type is refused", SeedCustomer{Domain: "b.x", Orders: []SeedOrder{{Type: "azure"}}}, `type "azure"`},
		{"an unknown order status is refused", SeedCustomer{Domain: "b.x", Orders: []SeedOrder{{Type: TypeSoftware, Status: "active"}}}, `status "active"`},
		{"a duplicate order id is refused", SeedCustomer{Domain: "b.x", Orders: []SeedOrder{{ID: "o", Type: TypeSoftware}, {ID: "o", Type: TypeSoftware}}}, "already used"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(Config{})
			_, err := srv.AddCustomer(ciCustomer("c1", time.Hour))
			require.NoError(t, err)
			_, err = srv.AddCustomer(tc.add)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, []string{"c1"}, srv.Customers())
		})
	}

	t.Run("generated ids follow the seed", func(t *testing.T) {
		ids := func() []string {
			srv := New(Config{Seed: 42})
			a, err := srv.AddCustomer(SeedCustomer{Domain: "a.x", Orders: []SeedOrder{{Type: TypeSoftware}}})
			require.NoError(t, err)
			b, err := srv.AddCustomer(SeedCustomer{Domain: "b.x"})
			require.NoError(t, err)
			return []string{a, b}
		}
		first := ids()
		require.Equal(t, first, ids())
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, first[0])
		require.NotEqual(t, first[0], first[1])
	})

	t.Run("the 76th customer is refused with 800018", func(t *testing.T) {
		srv := New(Config{})
		for i := range SandboxLimit {
			_, err := srv.AddCustomer(SeedCustomer{Domain: fmt.Sprintf("c%d.x", i)})
			require.NoError(t, err)
		}
		_, err := srv.AddCustomer(SeedCustomer{Domain: "one-more.x"})
		require.ErrorContains(t, err, "800018")
		require.ErrorContains(t, err, "The sandbox limit has been met")
	})
}

func TestDemoSeed(t *testing.T) {
	ciDomain := regexp.MustCompile(`^ci-[0-9a-f]{8}\.onmicrosoft\.com$`)
	golden := regexp.MustCompile(`^CI golden`)

	t.Run("the demo sandbox is the same for the same time, and its ids do not depend on the time", func(t *testing.T) {
		require.Equal(t, DemoSeed(t0), DemoSeed(t0))
		a, b := DemoSeed(t0), DemoSeed(t0.Add(time.Hour))
		for i := range a {
			require.Equal(t, a[i].ID, b[i].ID)
			require.Equal(t, a[i].Domain, b[i].Domain)
		}
	})

	t.Run("the demo sandbox has the documented counts", func(t *testing.T) {
		seed := DemoSeed(t0)
		require.Len(t, seed, DemoCustomers)
		require.Equal(t, 34, DemoCustomers)
		var selected, young, expired, protected, blocked, other int
		ids, domains := map[string]bool{}, map[string]bool{}
		for _, c := range seed {
			require.False(t, ids[c.ID], "ids are unique")
			require.False(t, domains[c.Domain], "domains are unique")
			ids[c.ID], domains[c.Domain] = true, true
			require.NotEmpty(t, c.Orders)
			if !ciDomain.MatchString(c.Domain) {
				other++
				continue
			}
			selected++
			age := t0.Sub(c.CreatedAt)
			oldestOrder := time.Duration(0)
			for _, o := range c.Orders {
				require.Equal(t, c.CreatedAt, o.CreatedAt)
				oldestOrder = max(oldestOrder, t0.Sub(o.CreatedAt))
			}
			switch {
			case golden.MatchString(c.CompanyName):
				protected++
			case age <= 72*time.Hour:
				young++
			case oldestOrder > 60*24*time.Hour:
				blocked++
			default:
				expired++
			}
		}
		require.Equal(t, DemoCIRuns+DemoGolden+DemoBlocked, selected)
		require.Equal(t, DemoCIYoung, young)
		require.Equal(t, DemoExpired, expired)
		require.Equal(t, DemoGolden, protected)
		require.Equal(t, DemoBlocked, blocked)
		require.Equal(t, DemoOther, other)
	})

	t.Run("CI runs hold 1 to 3 orders of both kinds", func(t *testing.T) {
		kinds := map[string]int{}
		for _, c := range DemoSeed(t0)[:DemoCIRuns] {
			require.True(t, len(c.Orders) >= 1 && len(c.Orders) <= 3)
			for _, o := range c.Orders {
				kinds[o.Type]++
			}
		}
		require.Positive(t, kinds[TypeSoftware])
		require.Positive(t, kinds[TypeReservedInstance])
	})

	t.Run("the demo sandbox loads and its old customer cannot be emptied", func(t *testing.T) {
		s := newSim(t, Config{}, DemoSeed(t0)...)
		require.Len(t, s.srv.Customers(), DemoCustomers)
		var old SeedCustomer
		for _, c := range DemoSeed(t0) {
			if c.CompanyName == "CI run 80" {
				old = c
			}
		}
		o := old.Orders[0].ID
		res, body := s.do(http.MethodPatch, orderPath(old.ID, o), cancelBody(o))
		requireError(t, res, body, http.StatusBadRequest, codeWindowPassed)
		res, body = s.do(http.MethodDelete, customerPath(old.ID), "")
		requireError(t, res, body, http.StatusBadRequest, codeBadRequest)
	})
}
