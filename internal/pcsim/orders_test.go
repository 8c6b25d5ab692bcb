package pcsim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var slowCancel = Config{CancelDelay: [2]time.Duration{10 * time.Minute, 20 * time.Minute}}

func TestCancelOrder(t *testing.T) {
	t.Run("a cancel answers pending and the order reads cancelled once its delay has passed", func(t *testing.T) {
		s := newSim(t, slowCancel, ciCustomer("c1", 24*time.Hour, SeedOrder{Type: TypeReservedInstance}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var o orderJSON
		require.NoError(t, json.Unmarshal(body, &o))
		require.Equal(t, StatusPending, o.Status)

		s.clock.Advance(9 * time.Minute)
		s.get(orderPath("c1", "o1"), &o)
		require.Equal(t, StatusPending, o.Status, "not before the minimum delay")

		s.clock.Advance(11 * time.Minute)
		s.get(orderPath("c1", "o1"), &o)
		require.Equal(t, StatusCancelled, o.Status)
		status, ok := s.srv.Order("c1", "o1")
		require.True(t, ok)
		require.Equal(t, StatusCancelled, status)
	})

	t.Run("a cancel of a pending order answers 409 800060 as a number", func(t *testing.T) {
		s := newSim(t, slowCancel, ciCustomer("c1", 24*time.Hour, SeedOrder{Type: TypeSoftware}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		res, body = s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		e := requireError(t, res, body, http.StatusConflict, float64(codeInProgress))
		require.Contains(t, e.Description, "in progress")
	})

	t.Run("a cancel of a cancelled order answers 200 cancelled", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", 24*time.Hour, SeedOrder{Type: TypeSoftware, Status: StatusCancelled}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var o orderJSON
		require.NoError(t, json.Unmarshal(body, &o))
		require.Equal(t, StatusCancelled, o.Status)
	})

	t.Run("a seeded pending order answers 409 and stays pending", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", 24*time.Hour, SeedOrder{Type: TypeSoftware, Status: StatusPending}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		requireError(t, res, body, http.StatusConflict, float64(codeInProgress))
	})

	t.Run("a never-cancelling order accepts the cancel and stays pending forever", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", 24*time.Hour, SeedOrder{Type: TypeSoftware, NeverCancels: true}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		s.advance(1000 * time.Hour)
		var o orderJSON
		s.get(orderPath("c1", "o1"), &o)
		require.Equal(t, StatusPending, o.Status)
	})

	t.Run("an order just under 60 days old can still be cancelled", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", 59*24*time.Hour, SeedOrder{Type: TypeReservedInstance}))
		res, body := s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	})

	refusals := []struct {
		name   string
		order  SeedOrder
		target string
		body   string
		status int
		code   any
	}{
		{"an order older than 60 days answers 400 900117", SeedOrder{Type: TypeReservedInstance, Age: 61 * 24 * time.Hour}, "o1", cancelBody("o1"), 400, codeWindowPassed},
		{"a subscription-based order answers 400 800063", SeedOrder{Type: TypeSubscription}, "o1", cancelBody("o1"), 400, codeSubscriptionOrder},
		{"an order in status unknown answers 400 800061", SeedOrder{Type: TypeSoftware, Status: StatusUnknown}, "o1", cancelBody("o1"), 400, codeCannotCancel},
		{"an unknown order answers 404 20000 as a number", SeedOrder{Type: TypeSoftware}, "nope", cancelBody("nope"), 404, float64(codeNotFound)},
		{"a body naming another order is refused", SeedOrder{Type: TypeSoftware}, "o1", cancelBody("o2"), 400, codeBadRequest},
		{"a body asking for another status is refused", SeedOrder{Type: TypeSoftware}, "o1", `{"id":"o1","status":"completed"}`, 400, codeBadRequest},
		{"a body that is not JSON is refused", SeedOrder{Type: TypeSoftware}, "o1", `status=cancelled`, 400, codeBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{}, ciCustomer("c1", 24*time.Hour, tc.order))
			res, body := s.do(http.MethodPatch, orderPath("c1", tc.target), tc.body)
			e := requireError(t, res, body, tc.status, tc.code)
			if tc.code == codeWindowPassed {
				require.Contains(t, e.Description, "sandbox orders older than 60 days cannot be cancelled")
			}
			if status, ok := s.srv.Order("c1", "o1"); ok && tc.order.Status == "" {
				require.Equal(t, StatusCompleted, status, "a refused cancel changes nothing")
			}
		})
	}

	t.Run("orders of an unknown customer answer 404", func(t *testing.T) {
		s := newSim(t, Config{})
		res, body := s.do(http.MethodPatch, orderPath("nope", "o1"), cancelBody("o1"))
		requireError(t, res, body, http.StatusNotFound, float64(codeNotFound))
	})
}

func TestListOrders(t *testing.T) {
	t.Run("the order collection holds every order in one page with its status and creation date", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", 24*time.Hour,
			SeedOrder{Type: TypeSoftware}, SeedOrder{Type: TypeReservedInstance, Status: StatusCancelled}))
		var c collection
		s.get("/v1/customers/c1/orders", &c)
		require.Equal(t, 2, c.TotalCount)
		require.Nil(t, c.Links.Next)
		var orders []orderJSON
		for _, raw := range c.Items {
			var o orderJSON
			require.NoError(t, json.Unmarshal(raw, &o))
			orders = append(orders, o)
		}
		require.Equal(t, StatusCompleted, orders[0].Status)
		require.Equal(t, StatusCancelled, orders[1].Status)
		created, err := time.Parse(time.RFC3339Nano, orders[0].CreationDate)
		require.NoError(t, err)
		require.Equal(t, t0.Add(-24*time.Hour), created)
	})
}

type entitlementJSON struct {
	ReferenceOrder struct {
		ID string `json:"id"`
	} `json:"referenceOrder"`
	EntitlementType      string            `json:"entitlementType"`
	IncludedEntitlements []entitlementJSON `json:"includedEntitlements"`
}

func (s *sim) entitlements(path string) []entitlementJSON {
	s.t.Helper()
	var c collection
	s.get(path, &c)
	var out []entitlementJSON
	for _, raw := range c.Items {
		var e entitlementJSON
		require.NoError(s.t, json.Unmarshal(raw, &e))
		out = append(out, e)
	}
	return out
}

func TestEntitlements(t *testing.T) {
	seed := ciCustomer("c1", 24*time.Hour, SeedOrder{ID: "ri", Type: TypeReservedInstance}, SeedOrder{ID: "sw", Type: TypeSoftware})

	t.Run("a reserved instance order is named by two entitlements and once more nested", func(t *testing.T) {
		s := newSim(t, Config{}, seed)
		es := s.entitlements("/v1/customers/c1/entitlements")
		require.Len(t, es, 3)
		require.Equal(t, "ri", es[0].ReferenceOrder.ID)
		require.Len(t, es[0].IncludedEntitlements, 1)
		require.Equal(t, "ri", es[0].IncludedEntitlements[0].ReferenceOrder.ID)
		require.Equal(t, "ri", es[1].ReferenceOrder.ID)
		require.Equal(t, "sw", es[2].ReferenceOrder.ID)
		require.Equal(t, TypeSoftware, es[2].EntitlementType)
	})

	t.Run("the entitlementType filter keeps one kind", func(t *testing.T) {
		s := newSim(t, Config{}, seed)
		require.Len(t, s.entitlements("/v1/customers/c1/entitlements?entitlementType=reservedInstance"), 2)
		require.Len(t, s.entitlements("/v1/customers/c1/entitlements?entitlementType=software"), 1)
	})

	t.Run("a cancelled order has no entitlements", func(t *testing.T) {
		s := newSim(t, Config{}, seed)
		res, body := s.do(http.MethodPatch, orderPath("c1", "ri"), cancelBody("ri"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		es := s.entitlements("/v1/customers/c1/entitlements")
		require.Len(t, es, 1)
		require.Equal(t, "sw", es[0].ReferenceOrder.ID)
	})

	t.Run("EntitlementsAppOnlyForbidden answers 403 900150", func(t *testing.T) {
		s := newSim(t, Config{EntitlementsAppOnlyForbidden: true}, seed)
		res, body := s.do(http.MethodGet, "/v1/customers/c1/entitlements", "")
		requireError(t, res, body, http.StatusForbidden, float64(codeRoleForbidden))
	})
}
