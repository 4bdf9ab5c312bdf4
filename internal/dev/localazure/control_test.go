package localazure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestControlTenants(t *testing.T) {
	f := newFixture(t, nil)

	r := f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{"id": otherTenant, "display_name": "Contoso"}, nil), http.StatusCreated)
	if m := r.json(t); m["id"] != otherTenant || m["display_name"] != "Contoso" || m["home"] != false {
		t.Errorf("created tenant = %v", m)
	}
	f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{"id": strings.ToUpper(otherTenant)}, nil), http.StatusOK)
	generated := f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{}, nil), http.StatusCreated).json(t)["id"].(string)
	if !isGUID(generated) {
		t.Errorf("generated tenant id %q is not a GUID", generated)
	}
	f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{"id": "contoso.onmicrosoft.com"}, nil), http.StatusBadRequest)
	f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{"tenant": otherTenant}, nil), http.StatusBadRequest)

	var ids []string
	for _, tn := range f.mustStatus(f.do(http.MethodGet, "/control/tenants", nil, nil), http.StatusOK).list(t) {
		ids = append(ids, tn["id"].(string))
	}
	want := []string{homeTenant, custTenant, otherTenant, generated}
	if diff := cmp.Diff(want, ids, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}

	// The new tenant is usable at once.
	f.mustStatus(f.do(http.MethodGet, "/"+otherTenant+"/v2.0/.well-known/openid-configuration", nil, nil), http.StatusOK)
}

func TestControlServicePrincipals(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createApp("install-me")

	r := f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": app.appID}, nil), http.StatusCreated)
	first := r.json(t)
	if !isGUID(first["id"].(string)) || first["appId"] != app.appID || first["displayName"] != "install-me" || first["appOwnerOrganizationId"] != homeTenant {
		t.Errorf("installed SP = %v", first)
	}
	again := f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": app.appID}, nil), http.StatusOK).json(t)
	if again["id"] != first["id"] {
		t.Errorf("second install id = %v, want the existing %v", again["id"], first["id"])
	}

	// Errors.
	f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+otherTenant+"/servicePrincipals", map[string]string{"appId": app.appID}, nil), http.StatusNotFound)
	f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": otherTenant}, nil), http.StatusNotFound)
	single := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "single"}), http.StatusCreated).json(t)["appId"].(string)
	f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": single}, nil), http.StatusBadRequest)
	f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+homeTenant+"/servicePrincipals", map[string]string{"appId": single}, nil), http.StatusCreated)

	list := f.mustStatus(f.do(http.MethodGet, "/control/tenants/"+custTenant+"/servicePrincipals", nil, nil), http.StatusOK).list(t)
	if len(list) != 1 || list[0]["id"] != first["id"] || list[0]["orphaned"] != false {
		t.Errorf("SPs = %v", list)
	}

	// Remove by object id; removing again is 404.
	f.mustStatus(f.do(http.MethodDelete, "/control/tenants/"+custTenant+"/servicePrincipals/"+first["id"].(string), nil, nil), http.StatusNoContent)
	f.mustStatus(f.do(http.MethodDelete, "/control/tenants/"+custTenant+"/servicePrincipals/"+first["id"].(string), nil, nil), http.StatusNotFound)
	r = f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token",
		tokenForm(app.appID, f.miToken(TokenExchangeAudience), StorageAudience+"/.default"), nil), http.StatusBadRequest)
	if code := entraCode(t, r); code != 700016 {
		t.Errorf("token after removal: AADSTS%d, want 700016", code)
	}

	apps := f.mustStatus(f.do(http.MethodGet, "/control/applications", nil, nil), http.StatusOK).list(t)
	if len(apps) != 2 {
		t.Errorf("control applications = %v, want 2", apps)
	}
}

func TestParseScope(t *testing.T) {
	const sub = subscription
	acct := "/subscriptions/" + sub + "/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/custacct1"
	tests := []struct {
		scope string
		want  Scope
		ok    bool
	}{
		{"/subscriptions/" + sub, Scope{SubscriptionID: sub}, true},
		{"/subscriptions/" + sub + "/resourceGroups/rg-data", Scope{SubscriptionID: sub, ResourceGroup: "rg-data"}, true},
		{acct, Scope{sub, "rg-data", "custacct1", ""}, true},
		{acct + "/", Scope{sub, "rg-data", "custacct1", ""}, true},
		{acct + "/blobServices/default/containers/tables", Scope{sub, "rg-data", "custacct1", "tables"}, true},
		{strings.ToLower(acct) + "/BLOBSERVICES/default/containers/tables", Scope{sub, "rg-data", "custacct1", "tables"}, true},
		{"", Scope{}, false},
		{"subscriptions/" + sub, Scope{}, false},
		{"/subscriptions/not-a-guid", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg./providers/Microsoft.Storage/storageAccounts/custacct1", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Compute/storageAccounts/custacct1", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/CustAcct", Scope{}, false},
		{acct + "/blobServices/default", Scope{}, false},
		{acct + "/blobServices/default/containers", Scope{}, false},
		{acct + "/fileServices/default/containers/tables", Scope{}, false},
		{acct + "/blobServices/default/containers/a--b", Scope{}, false},
		{acct + "/blobServices/default/containers/-ab", Scope{}, false},
		{acct + "/blobServices/default/containers/ab", Scope{}, false},
		{acct + "/blobServices/default/containers/tables/blobs/x", Scope{}, false},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.scope)
		if (err == nil) != tt.ok {
			t.Errorf("ParseScope(%q) err = %v, want ok %v", tt.scope, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tt.scope, got, tt.want)
		}
		var e *Error
		if !tt.ok && (!errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "InvalidScope") {
			t.Errorf("ParseScope(%q) err = %v, want a 400 InvalidScope", tt.scope, err)
		}
	}
}

// rbacFixture has a registered account and an installed SP to grant roles to.
func rbacFixture(t *testing.T) (*fixture, string, string) {
	f := newFixture(t, nil)
	app := f.createApp("rbac")
	spID := f.installSP(custTenant, app.appID)
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts",
		map[string]string{"name": "custacct1", "subscription_id": subscription, "resource_group": "rg-data", "tenant_id": custTenant}, nil), http.StatusCreated)
	return f, spID, "/subscriptions/" + subscription + "/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/custacct1"
}

func TestControlStorageAccounts(t *testing.T) {
	f, _, _ := rbacFixture(t)
	body := map[string]string{"name": "custacct1", "subscription_id": subscription, "resource_group": "rg-data"}
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts", body, nil), http.StatusOK)
	body["resource_group"] = "rg-other"
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts", body, nil), http.StatusConflict)
	for _, bad := range []map[string]string{
		{"name": "Bloblake", "subscription_id": subscription, "resource_group": "rg"},
		{"name": "acct", "subscription_id": "sub", "resource_group": "rg"},
		{"name": "acct", "subscription_id": subscription, "resource_group": "rg."},
	} {
		f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts", bad, nil), http.StatusBadRequest)
	}
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts",
		map[string]string{"name": "acct2", "subscription_id": subscription, "resource_group": "rg", "tenant_id": otherTenant}, nil), http.StatusNotFound)
	list := f.mustStatus(f.do(http.MethodGet, "/control/storageAccounts", nil, nil), http.StatusOK).list(t)
	if len(list) != 1 || list[0]["name"] != "custacct1" || list[0]["tenant_id"] != custTenant {
		t.Errorf("accounts = %v", list)
	}
}

func TestControlGrantValidation(t *testing.T) {
	f, spID, acct := rbacFixture(t)
	grant := func(principal, role, scope string) response {
		return f.do(http.MethodPost, "/control/roleAssignments", map[string]string{"principal_id": principal, "role": role, "scope": scope}, nil)
	}
	tests := []struct {
		name                   string
		principal, role, scope string
		status                 int
		code                   string
	}{
		{"malformed scope", spID, "Storage Blob Data Contributor", "/subscriptions/" + subscription + "/storageAccounts/custacct1", 400, "InvalidScope"},
		{"unknown role", spID, "Owner", acct, 400, "RoleDefinitionDoesNotExist"},
		{"unknown account", spID, "Storage Blob Data Contributor", strings.Replace(acct, "custacct1", "nosuchacct", 1), 404, "ResourceNotFound"},
		{"wrong resource group", spID, "Storage Blob Data Contributor", strings.Replace(acct, "rg-data", "rg-other", 1), 404, "ResourceNotFound"},
		{"unknown subscription", spID, "Storage Blob Data Contributor", "/subscriptions/" + custTenant, 404, "SubscriptionNotFound"},
		{"unknown principal", custTenant, "Storage Blob Data Contributor", acct, 400, "PrincipalNotFound"},
		{"principal outside the account's tenant", miObjectID, "Storage Blob Data Contributor", acct, 400, "PrincipalNotFound"},
		{"by name, any case", spID, "storage blob data reader", acct, 201, ""},
		{"by definition id", spID, "ba92f5b4-2d11-453d-a403-e96b0029c9fe", acct, 201, ""},
		{"container scope", spID, "Storage Blob Data Contributor", acct + "/blobServices/default/containers/tables", 201, ""},
		{"resource group scope", spID, "Storage Blob Data Owner", "/subscriptions/" + subscription + "/resourceGroups/rg-data", 201, ""},
		{"twice", spID, "Storage Blob Data Contributor", acct, 409, "RoleAssignmentExists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := grant(tt.principal, tt.role, tt.scope)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				if code := r.json(t)["error"].(map[string]any)["code"]; code != tt.code {
					t.Errorf("code = %v, want %s", code, tt.code)
				}
			}
		})
	}

	a := f.mustStatus(grant(spID, "Storage Blob Data Reader", acct+"/blobServices/default/containers/other"), http.StatusCreated).json(t)
	want := map[string]any{
		"principalId":        spID,
		"principalType":      "ServicePrincipal",
		"roleDefinitionName": "Storage Blob Data Reader",
		"roleDefinitionId":   "/subscriptions/" + subscription + "/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
		"scope":              acct + "/blobServices/default/containers/other",
		"id":                 acct + "/blobServices/default/containers/other/providers/Microsoft.Authorization/roleAssignments/" + a["name"].(string),
		"created_at":         "2025-03-01T12:00:00Z",
		"effective_at":       "2025-03-01T12:00:30Z",
		"state":              "propagating",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %v, want %v", k, a[k], v)
		}
	}
}

func TestRolePropagation(t *testing.T) {
	f, spID, acct := rbacFixture(t)
	grant := func(role, scope string) string {
		r := f.mustStatus(f.do(http.MethodPost, "/control/roleAssignments",
			map[string]string{"principal_id": spID, "role": role, "scope": scope}, nil), http.StatusCreated)
		return r.json(t)["name"].(string)
	}
	roles := func(container string) []Role {
		var out []Role
		for _, a := range f.s.EffectiveRoles(spID, "custacct1", container, f.clock.Now()) {
			out = append(out, a.RoleDefinitionName)
		}
		return out
	}
	states := func() map[string]string {
		out := map[string]string{}
		for _, a := range f.mustStatus(f.do(http.MethodGet, "/control/roleAssignments?principal_id="+spID, nil, nil), http.StatusOK).list(t) {
			out[a["name"].(string)] = a["state"].(string)
		}
		return out
	}

	account := grant("Storage Blob Data Contributor", acct)
	container := grant("Storage Blob Data Reader", acct+"/blobServices/default/containers/tables")

	if got := roles("tables"); len(got) != 0 {
		t.Fatalf("before propagation: roles %v, want none", got)
	}
	f.clock.Advance(29 * time.Second)
	if got := roles("tables"); len(got) != 0 {
		t.Fatalf("after 29s: roles %v, want none", got)
	}
	f.clock.Advance(time.Second)
	if diff := cmp.Diff([]Role{RoleBlobDataContributor, RoleBlobDataReader}, roles("tables")); diff != "" {
		t.Errorf("container tables after 30s (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Role{RoleBlobDataContributor}, roles("other")); diff != "" {
		t.Errorf("container other (-want +got):\n%s", diff)
	}
	// The account itself (user delegation key): the container-scope grant does not count.
	if diff := cmp.Diff([]Role{RoleBlobDataContributor}, roles("")); diff != "" {
		t.Errorf("account (-want +got):\n%s", diff)
	}
	if got := f.s.EffectiveRoles(spID, "unregistered", "tables", f.clock.Now()); got != nil {
		t.Errorf("unregistered account: %v", got)
	}
	if diff := cmp.Diff(map[string]string{account: "active", container: "active"}, states()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}

	// Revoke the account grant by id and the container grant the az way; both linger.
	f.mustStatus(f.do(http.MethodDelete, "/control/roleAssignments/"+account, nil, nil), http.StatusOK)
	q := url.Values{"principal_id": {spID}, "role": {"Storage Blob Data Reader"}, "scope": {acct + "/blobServices/default/containers/tables"}}
	f.mustStatus(f.do(http.MethodDelete, "/control/roleAssignments?"+q.Encode(), nil, nil), http.StatusOK)
	f.mustStatus(f.do(http.MethodDelete, "/control/roleAssignments/"+account, nil, nil), http.StatusNotFound)
	if diff := cmp.Diff(map[string]string{account: "revoking", container: "revoking"}, states()); diff != "" {
		t.Errorf("states after revoke (-want +got):\n%s", diff)
	}
	f.clock.Advance(29 * time.Second)
	if got := roles("tables"); len(got) != 2 {
		t.Errorf("29s after revoke: roles %v, want both still effective", got)
	}
	f.clock.Advance(time.Second)
	if got := roles("tables"); len(got) != 0 {
		t.Errorf("30s after revoke: roles %v, want none", got)
	}
	if diff := cmp.Diff(map[string]string{account: "revoked", container: "revoked"}, states()); diff != "" {
		t.Errorf("states after propagation (-want +got):\n%s", diff)
	}

	// A revoked grant can be made again.
	grant("Storage Blob Data Contributor", acct)
}

func TestControlContainers(t *testing.T) {
	key := []byte("not-a-real-key-but-long-enough!!")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	existing := map[string]bool{}
	blob := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		// Recompute the SharedKey signature from the documented string-to-sign.
		date := r.Header.Get("x-ms-date")
		toSign := "PUT\n\n\n\n\n\n\n\n\n\n\n\n" +
			"x-ms-date:" + date + "\nx-ms-version:" + r.Header.Get("x-ms-version") + "\n" +
			"/custacct1" + r.URL.Path + "\nrestype:container"
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(toSign))
		want := "SharedKey custacct1:" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		switch {
		case r.Method != http.MethodPut || r.URL.Query().Get("restype") != "container":
			w.WriteHeader(http.StatusBadRequest)
		case r.Header.Get("Authorization") != want || date != now.Format(http.TimeFormat):
			w.Header().Set("x-ms-error-code", "AuthorizationFailure")
			w.WriteHeader(http.StatusForbidden)
		case existing[r.URL.Path]:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>ContainerAlreadyExists</Code><Message>The specified container already exists.</Message></Error>`))
		default:
			existing[r.URL.Path] = true
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(blob.Close)

	f := newFixture(t, func(c *Config) {
		c.Containers = &SharedKeyBlob{Endpoint: blob.URL, Keys: map[string][]byte{"custacct1": key}, Client: blob.Client(), Now: func() time.Time { return now }}
	})
	create := func(account, name string) response {
		return f.do(http.MethodPost, "/control/storageAccounts/"+account+"/containers", map[string]string{"name": name}, nil)
	}
	if m := f.mustStatus(create("custacct1", "tables"), http.StatusCreated).json(t); m["created"] != true {
		t.Errorf("first create = %v", m)
	}
	if m := f.mustStatus(create("custacct1", "tables"), http.StatusOK).json(t); m["created"] != false {
		t.Errorf("second create = %v", m)
	}
	f.mustStatus(create("custacct1", "Tables"), http.StatusBadRequest)
	f.mustStatus(create("custacct1", "a/b"), http.StatusBadRequest)
	f.mustStatus(create("unknownacct", "tables"), http.StatusNotFound)

	// A wrong key surfaces the blob service's code.
	bad := &SharedKeyBlob{Endpoint: blob.URL, Keys: map[string][]byte{"custacct1": []byte("wrong")}, Client: blob.Client(), Now: func() time.Time { return now }}
	_, err := bad.CreateContainer(context.Background(), "custacct1", "other")
	var e *Error
	if !errors.As(err, &e) || e.Code != "AuthorizationFailure" {
		t.Errorf("wrong key: err = %v, want AuthorizationFailure", err)
	}

	// Without a blob endpoint the endpoint says so.
	plain := newFixture(t, nil)
	plain.mustStatus(plain.do(http.MethodPost, "/control/storageAccounts/custacct1/containers", map[string]string{"name": "tables"}, nil), http.StatusNotImplemented)
}

func TestParseAccounts(t *testing.T) {
	k1, k2 := base64.StdEncoding.EncodeToString([]byte("key-one")), base64.StdEncoding.EncodeToString([]byte("key-two"))
	got, err := ParseAccounts("devstoreaccount1:" + k1 + ";custacct1:" + k2 + ":" + k1 + ";")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"devstoreaccount1": []byte("key-one"), "custacct1": []byte("key-two")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseAccounts (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"noKey", "acct:", "acct:%%%"} {
		if _, err := ParseAccounts(bad); err == nil {
			t.Errorf("ParseAccounts(%q) succeeded", bad)
		}
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t, nil)
	inject := func(body map[string]any) response { return f.do(http.MethodPost, "/control/faults", body, nil) }

	for name, body := range map[string]map[string]any{
		"unknown operation": {"operation": "nope", "status": 500},
		"not an error":      {"operation": "token", "status": 200},
		"negative count":    {"operation": "token", "status": 500, "count": -1},
		"token code":        {"operation": "token", "status": 400, "code": "SomethingElse"},
		"unknown field":     {"operation": "token", "status": 500, "times": 2},
	} {
		if r := inject(body); r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, r.status)
		}
	}

	t.Run("graph", func(t *testing.T) {
		f.mustStatus(inject(map[string]any{"operation": "create_application", "status": 503, "count": 2, "retry_after": 7}), http.StatusCreated)
		body := map[string]any{"displayName": "x"}
		for i := 0; i < 2; i++ {
			r := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", body), http.StatusServiceUnavailable)
			if code := graphCode(t, r); code != "ServiceUnavailable" || r.header.Get("Retry-After") != "7" {
				t.Errorf("fault %d: code %s, Retry-After %q", i, code, r.header.Get("Retry-After"))
			}
		}
		f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", body), http.StatusCreated)
	})

	t.Run("listed and cleared", func(t *testing.T) {
		f.mustStatus(inject(map[string]any{"operation": "delete_application", "status": 500, "count": 3, "code": "Boom"}), http.StatusCreated)
		list := f.mustStatus(f.do(http.MethodGet, "/control/faults", nil, nil), http.StatusOK).list(t)
		if len(list) != 1 || list[0]["count"] != float64(3) || list[0]["code"] != "Boom" {
			t.Errorf("faults = %v", list)
		}
		f.mustStatus(f.do(http.MethodDelete, "/control/faults", nil, nil), http.StatusNoContent)
		if list := f.mustStatus(f.do(http.MethodGet, "/control/faults", nil, nil), http.StatusOK).list(t); len(list) != 0 {
			t.Errorf("faults after clear = %v", list)
		}
	})

	t.Run("token", func(t *testing.T) {
		app := f.createApp("faulty")
		f.installSP(custTenant, app.appID)
		form := tokenForm(app.appID, f.miToken(TokenExchangeAudience), StorageAudience+"/.default")
		for _, tt := range []struct {
			fault  map[string]any
			status int
			code   int
		}{
			{map[string]any{"operation": "token", "status": 400, "code": "AADSTS70021"}, 400, 70021},
			{map[string]any{"operation": "token", "status": 400, "code": "aadsts700016"}, 400, 700016},
			{map[string]any{"operation": "token", "status": 503}, 503, 90033},
			{map[string]any{"operation": "token", "status": 429}, 429, 90055},
		} {
			f.mustStatus(inject(tt.fault), http.StatusCreated)
			r := f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token", form, nil), tt.status)
			if code := entraCode(t, r); code != tt.code {
				t.Errorf("fault %v: AADSTS%d, want %d", tt.fault, code, tt.code)
			}
		}
		f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token", form, nil), http.StatusOK)
	})

	t.Run("service principal and FIC", func(t *testing.T) {
		app := f.createApp("faulty-sp")
		f.installSP(custTenant, app.appID)
		graphTok := f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token",
			tokenForm(app.appID, f.miToken(TokenExchangeAudience), GraphAudience+"/.default"), nil), http.StatusOK).json(t)["access_token"].(string)
		f.mustStatus(inject(map[string]any{"operation": "get_service_principal", "status": 429}), http.StatusCreated)
		path := "/v1.0/servicePrincipals(appId='" + app.appID + "')"
		f.mustStatus(f.do(http.MethodGet, path, nil, bearerHeader(graphTok)), http.StatusTooManyRequests)
		f.mustStatus(f.do(http.MethodGet, path, nil, bearerHeader(graphTok)), http.StatusOK)

		f.mustStatus(inject(map[string]any{"operation": "create_federated_credential", "status": 500}), http.StatusCreated)
		fic := map[string]any{"name": "n", "issuer": "i", "subject": "s", "audiences": []string{"a"}}
		f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials", fic), http.StatusInternalServerError)
		f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials", fic), http.StatusCreated)
	})

	t.Run("managed identity", func(t *testing.T) {
		f.mustStatus(inject(map[string]any{"operation": "managed_identity_token", "status": 500}), http.StatusCreated)
		f.mustStatus(f.do(http.MethodGet, "/msi/token?api-version=2019-08-01&resource=x", nil,
			map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader}), http.StatusInternalServerError)
		f.miToken("x")
	})
}

func TestNewValidatesConfig(t *testing.T) {
	good := Config{HomeTenantID: homeTenant, ManagedIdentity: ManagedIdentity{ClientID: miClientID, ObjectID: miObjectID}}
	for name, mutate := range map[string]func(*Config){
		"home tenant":    func(c *Config) { c.HomeTenantID = "home" },
		"MI client id":   func(c *Config) { c.ManagedIdentity.ClientID = "" },
		"MI object id":   func(c *Config) { c.ManagedIdentity.ObjectID = "x" },
		"negative delay": func(c *Config) { c.PropagationDelay = -time.Second },
		"bad tenant":     func(c *Config) { c.Tenants = []string{"contoso"} },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestUnknownControlEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	r := f.mustStatus(f.do(http.MethodGet, "/control/nothing", nil, nil), http.StatusNotFound)
	if code := r.json(t)["error"].(map[string]any)["code"]; code != "NotFound" {
		t.Errorf("code = %v", code)
	}
	if r.header.Get("request-id") == "" {
		t.Error("no request-id header")
	}
}
