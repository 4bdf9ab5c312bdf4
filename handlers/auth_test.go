package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "c1", "az://bloblake/lakedata")
	path := "/organizations/" + org + "/credentials/" + d.ID

	expired, err := h.minter.Mint("user-1", []string{org}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := h.other.Mint("user-1", []string{org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Minute) // expired is now past its exp and the leeway

	cases := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no token", map[string]string{OrgHeader: org}, http.StatusUnauthorized},
		{"not bearer", map[string]string{"Authorization": "Basic dXNlcjpwYXNz", OrgHeader: org}, http.StatusUnauthorized},
		{"garbage", map[string]string{"Authorization": "Bearer not.a.jwt", OrgHeader: org}, http.StatusUnauthorized},
		{"expired", map[string]string{"Authorization": "Bearer " + expired, OrgHeader: org}, http.StatusUnauthorized},
		{"forged", map[string]string{"Authorization": "Bearer " + forged, OrgHeader: org}, http.StatusUnauthorized},
		{"no org header", map[string]string{"Authorization": "Bearer " + h.token(org)}, http.StatusForbidden},
		{"header differs from path", map[string]string{"Authorization": "Bearer " + h.token(org, "org-b"), OrgHeader: "org-b"}, http.StatusForbidden},
		{"token for another org", map[string]string{"Authorization": "Bearer " + h.token("org-b"), OrgHeader: org}, http.StatusForbidden},
		{"good", map[string]string{"Authorization": "Bearer " + h.token(org), OrgHeader: org}, http.StatusOK},
	}
	for _, c := range cases {
		r := h.do("GET", path, nil, c.header)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		if c.status >= 400 {
			e := r.errorBody(t)
			if e.RequestID != r.header.Get("X-Request-Id") {
				t.Errorf("%s: error request id %q, header %q", c.name, e.RequestID, r.header.Get("X-Request-Id"))
			}
			for _, secret := range []string{expired, forged} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("%s: the response echoes a token", c.name)
				}
			}
		}
	}
}

// TestCrossOrgIsNotFound: another org's credential is 404 on every route, never 403.
func TestCrossOrgIsNotFound(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "c1", "az://bloblake/lakedata")
	other := "org-b"
	base := "/organizations/" + other + "/credentials/" + d.ID
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", base, nil},
		{"GET", base + "/events", nil},
		{"POST", base + "/tenant", map[string]string{"tenant_id": tenantID}},
		{"POST", base + "/save-unverified", map[string]string{}},
		{"DELETE", base, nil},
		{"PUT", "/organizations/" + other + "/credential", map[string]string{"credential_id": d.ID}},
	} {
		r := h.call(c.method, other, c.path, c.body)
		if r.status != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", c.method, c.path, r.status)
		}
	}
	var got detailView
	h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID, nil).decode(t, &got)
	if got.State != "draft" {
		t.Fatalf("another org changed the credential: %s", got.State)
	}
}

func TestBodyRules(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials"
	huge := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	cases := []struct {
		name, body, contentType string
		status                  int
		msg                     string
	}{
		{"too large", huge, "application/json", http.StatusRequestEntityTooLarge, "request body is larger than 65536 bytes"},
		{"unknown field", `{"name":"a","storage_type":"azure_federated","base_path":"az://bloblake/lakedata","extra":1}`, "application/json", http.StatusBadRequest, `invalid JSON body: unknown field "extra"`},
		{"wrong type", `{"name":5}`, "application/json", http.StatusBadRequest, `invalid JSON body: field "name" must be a string`},
		{"truncated", `{"name":"a"`, "application/json", http.StatusBadRequest, "invalid JSON body: the body ends early"},
		{"trailing data", `{"name":"a"} {}`, "application/json", http.StatusBadRequest, "invalid JSON body: unexpected data after the JSON object"},
		{"array", `[]`, "application/json", http.StatusBadRequest, "invalid JSON body: the body must be a JSON object"},
		{"empty", ``, "application/json", http.StatusBadRequest, "request body is empty; a JSON object is required"},
		{"not json", `name=a`, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, "request bodies must be JSON (Content-Type: application/json)"},
	}
	for _, c := range cases {
		r := h.do("POST", base, c.body, map[string]string{"Authorization": "Bearer " + h.token(org), OrgHeader: org, "Content-Type": c.contentType})
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		if e := r.errorBody(t); e.Message != c.msg {
			t.Errorf("%s: message %q, want %q", c.name, e.Message, c.msg)
		}
	}
	if h.dir.Apps() != 0 {
		t.Fatal("a refused body created an app")
	}
}

func TestUnroutedAndIDs(t *testing.T) {
	h := newHarness(t)
	r := h.call("GET", org, "/organizations/"+org+"/nothing-here", nil)
	h.want(r, http.StatusNotFound)
	if e := r.errorBody(t); e.Code != "not_found" {
		t.Errorf("code %q", e.Code)
	}
	r = h.call("PATCH", org, "/organizations/"+org+"/credentials", nil)
	h.want(r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	for _, id := range []string{"not-a-uuid", "..%2F..%2Fx", "%2e%2e"} {
		r = h.call("GET", org, "/organizations/"+org+"/credentials/"+id, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("id %q: status %d", id, r.status)
		}
	}
	r = h.do("GET", "/", nil, nil)
	h.want(r, http.StatusOK)
}
