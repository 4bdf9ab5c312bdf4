package localazure

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestChaosValidation(t *testing.T) {
	f := newFixture(t, nil)
	for name, body := range map[string]map[string]any{
		"probability above 1":  {"probability": 1.5},
		"negative probability": {"probability": -0.1},
		"not a fault status":   {"probability": 0.5, "statuses": []int{404}},
		"negative retry":       {"probability": 0.5, "retry_after": -1},
		"unknown operation":    {"probability": 0.5, "operations": []string{"nope"}},
		"unknown field":        {"probability": 0.5, "rate": 0.5},
	} {
		if r := f.do(http.MethodPost, "/control/chaos", body, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; body %s", name, r.status, r.body)
		}
	}
	st := f.mustStatus(f.do(http.MethodGet, "/control/chaos", nil, nil), http.StatusOK)
	var stats ChaosStats
	if err := json.Unmarshal(st.body, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Chaos != nil || stats.Total != 0 {
		t.Errorf("chaos after refused settings = %+v", stats)
	}
}

// chaosRun turns chaos on with seed and makes n managed identity token calls and n Graph
// service principal lookups, returning the statuses seen in order and the counters.
func chaosRun(t *testing.T, seed uint64, n int) ([]int, ChaosStats) {
	t.Helper()
	f := newFixture(t, nil)
	app := f.createApp("chaotic")
	f.installSP(custTenant, app.appID)
	form := tokenForm(app.appID, f.miToken(TokenExchangeAudience), GraphAudience+"/.default")
	graphTok := f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token", form, nil), http.StatusOK).json(t)["access_token"].(string)

	f.mustStatus(f.do(http.MethodPost, "/control/chaos", map[string]any{
		"probability": 0.3, "statuses": []int{429, 503}, "retry_after": 2, "seed": seed,
		"operations": []string{"managed_identity_token", "get_service_principal"},
	}, nil), http.StatusOK)

	var seen []int
	check := func(r response, ok int) {
		t.Helper()
		seen = append(seen, r.status)
		switch r.status {
		case ok:
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if ra := r.header.Get("Retry-After"); ra != "2" {
				t.Errorf("status %d with Retry-After %q, want 2", r.status, ra)
			}
		default:
			t.Errorf("status %d, want %d, 429 or 503; body %s", r.status, ok, r.body)
		}
	}
	path := "/v1.0/servicePrincipals(appId='" + app.appID + "')"
	for range n {
		check(f.do(http.MethodGet, "/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(GraphAudience), nil,
			map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader}), http.StatusOK)
		check(f.do(http.MethodGet, path, nil, bearerHeader(graphTok)), http.StatusOK)
	}
	// Operations not named stay clean: the token endpoint is not among them here.
	f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token", form, nil), http.StatusOK)

	r := f.mustStatus(f.do(http.MethodDelete, "/control/chaos", nil, nil), http.StatusOK)
	var stats ChaosStats
	if err := json.Unmarshal(r.body, &stats); err != nil {
		t.Fatal(err)
	}
	// Off means off.
	for range 20 {
		f.mustStatus(f.do(http.MethodGet, path, nil, bearerHeader(graphTok)), http.StatusOK)
	}
	return seen, stats
}

func TestChaosFiresCountsAndReplays(t *testing.T) {
	const n = 100
	seen, stats := chaosRun(t, 42, n)
	failed := map[int]int{}
	for _, st := range seen {
		if st != http.StatusOK {
			failed[st]++
		}
	}
	total := failed[429] + failed[503]
	t.Logf("%d calls, %d faults (429: %d, 503: %d); counters %+v", len(seen), total, failed[429], failed[503], stats)
	// 200 calls at p=0.3: fewer than 30 or more than 100 faults would be far outside chance.
	if total < 30 || total > 100 || failed[429] == 0 || failed[503] == 0 {
		t.Errorf("faults 429=%d 503=%d over %d calls at p=0.3", failed[429], failed[503], len(seen))
	}
	if stats.Total != total {
		t.Errorf("counter total %d, faults seen %d", stats.Total, total)
	}
	if stats.Chaos != nil {
		t.Errorf("chaos still on after DELETE: %+v", stats.Chaos)
	}
	for _, op := range []Operation{OpManagedIdentityToken, OpGetServicePrincipal} {
		if stats.Calls[op] != n {
			t.Errorf("calls of %s = %d, want %d", op, stats.Calls[op], n)
		}
		if stats.Fired[op]["429"]+stats.Fired[op]["503"] == 0 {
			t.Errorf("no fault fired for %s: %v", op, stats.Fired[op])
		}
	}
	if stats.Calls[OpToken] != 0 {
		t.Errorf("token calls counted although not under chaos: %d", stats.Calls[OpToken])
	}

	again, _ := chaosRun(t, 42, n)
	if !slices.Equal(seen, again) {
		t.Errorf("seed 42 did not replay the same faults:\n%v\n%v", seen, again)
	}
	other, _ := chaosRun(t, 7, n)
	if slices.Equal(seen, other) {
		t.Error("seeds 42 and 7 fired the same faults")
	}
}

func TestCountedFaultsGoFirst(t *testing.T) {
	f := newFixture(t, nil)
	f.mustStatus(f.do(http.MethodPost, "/control/chaos", map[string]any{"probability": 0, "seed": 1}, nil), http.StatusOK)
	f.mustStatus(f.do(http.MethodPost, "/control/faults", map[string]any{"operation": "create_application", "status": 500}, nil), http.StatusCreated)
	f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "x"}), http.StatusInternalServerError)
	f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "x"}), http.StatusCreated)
	st := f.s.ChaosStats()
	if st.Total != 0 || st.Calls[OpCreateApplication] != 1 {
		t.Errorf("chaos counters %+v: want the counted fault outside them and one call seen", st)
	}
}
