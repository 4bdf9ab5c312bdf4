package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
)

const (
	homeTenant = "11111111-1111-1111-1111-111111111111"
	custTenant = "22222222-2222-2222-2222-222222222222"
	miObjectID = "55555555-5555-5555-5555-555555555555"
)

// standIn is the local Entra ID and Graph stand-in, served over TLS for one test.
type standIn struct {
	t          *testing.T
	s          *localazure.Server
	srv        *httptest.Server
	miClientID string
	local      *localazuretest.StandIn

	mu        sync.Mutex
	encodings []string // Content-Encoding of each Graph POST and PATCH
}

// newStandIn starts a stand-in whose managed identity's client id is fresh for every test
// (see localazuretest.Start).
func newStandIn(t *testing.T) *standIn {
	t.Helper()
	si := &standIn{t: t}
	si.local = localazuretest.Start(t, localazure.Config{
		HomeTenantID:    homeTenant,
		ManagedIdentity: localazure.ManagedIdentity{ObjectID: miObjectID},
		Tenants:         []string{custTenant},
	}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && strings.HasPrefix(r.URL.Path, "/v1.0/") {
				si.mu.Lock()
				si.encodings = append(si.encodings, r.Header.Get("Content-Encoding"))
				si.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	si.s, si.srv, si.miClientID = si.local.Server, si.local.HTTPS, si.local.Config.ManagedIdentity.ClientID
	return si
}

// mi is the backend's managed identity, calling the stand-in's App Service endpoint.
func (si *standIn) mi() *localazuretest.ManagedIdentityCredential {
	return si.local.ManagedIdentity()
}

// directory is the home-tenant client, as the backend's managed identity.
func (si *standIn) directory() *Client {
	si.t.Helper()
	c, err := New(si.mi(), si.options())
	if err != nil {
		si.t.Fatal(err)
	}
	return c
}

func (si *standIn) options() Options {
	return Options{BaseURL: si.srv.URL + "/v1.0", HTTPClient: si.srv.Client()}
}

// appCredential is the app's credential in tenantID (see localazuretest's AppCredential).
func (si *standIn) appCredential(tenantID, appID string) azcore.TokenCredential {
	si.t.Helper()
	return si.local.AppCredential(si.t, tenantID, appID)
}

// backendFIC is the federated credential that trusts the backend's managed identity.
func backendFIC() credential.FederatedCredential {
	return credential.FederatedCredential{
		Name:        "azcreds-backend",
		Issuer:      localazure.V2Issuer(homeTenant),
		Subject:     miObjectID,
		Audiences:   []string{localazure.TokenExchangeAudience},
		Description: "the azcreds backend's managed identity",
	}
}

// controlApps lists the apps the stand-in holds, through its control endpoint.
func (si *standIn) controlApps() []map[string]any {
	si.t.Helper()
	resp, err := si.srv.Client().Get(si.srv.URL + "/control/applications")
	if err != nil {
		si.t.Fatal(err)
	}
	defer resp.Body.Close()
	var apps []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&apps); err != nil {
		si.t.Fatal(err)
	}
	return apps
}

func (si *standIn) fault(f localazure.Fault) {
	si.t.Helper()
	if err := si.s.InjectFault(f); err != nil {
		si.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDirectoryLifecycle(t *testing.T) {
	si := newStandIn(t)
	dir := si.directory()
	ctx := context.Background()

	const redirect = "https://azcreds.example.net/wizard/"
	app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "azcreds-org1-cred1", UniqueName: "unique-azcreds-org1-cred1",
		RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if err := dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()); err != nil {
		t.Fatalf("AddFederatedCredential: %v", err)
	}

	apps := si.controlApps()
	if len(apps) != 1 {
		t.Fatalf("apps = %v, want one", apps)
	}
	got := apps[0]
	fics := got["federated_credentials"].([]any)
	if got["id"] != app.ObjectID || got["appId"] != app.AppID || got["displayName"] != "azcreds-org1-cred1" ||
		got["signInAudience"] != "AzureADMultipleOrgs" || got["owner_id"] != miObjectID || len(fics) != 1 ||
		fmt.Sprint(got["redirectUris"]) != "["+redirect+"]" {
		t.Fatalf("stand-in holds %v", got)
	}
	fic := fics[0].(map[string]any)
	want := backendFIC()
	if fic["name"] != want.Name || fic["issuer"] != want.Issuer || fic["subject"] != want.Subject ||
		fmt.Sprint(fic["audiences"]) != fmt.Sprint(want.Audiences) {
		t.Errorf("FIC = %v, want %+v", fic, want)
	}

	// msgraph-sdk-go compresses request bodies; the stand-in must have read them.
	si.mu.Lock()
	if fmt.Sprint(si.encodings) != "[gzip gzip]" {
		t.Errorf("Graph POST and PATCH encodings = %v, want both gzip", si.encodings)
	}
	si.mu.Unlock()

	// Creating again under the same unique name (a retry after a lost answer) is the same
	// app, found by its unique name, and no second one.
	again, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "azcreds-org1-cred1", UniqueName: "unique-azcreds-org1-cred1"})
	if err != nil || again != app {
		t.Fatalf("second CreateApp = %+v, %v; want %+v", again, err, app)
	}
	if found, ok, err := dir.FindApp(ctx, "unique-azcreds-org1-cred1"); err != nil || !ok || found != app {
		t.Fatalf("FindApp = %+v, %v, %v; want %+v", found, ok, err, app)
	}
	if apps := si.controlApps(); len(apps) != 1 || apps[0]["uniqueName"] != "unique-azcreds-org1-cred1" {
		t.Fatalf("after the second create: apps = %v, want the one with its unique name", apps)
	}

	if err := dir.DeleteApp(ctx, app.ObjectID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if _, ok, err := dir.FindApp(ctx, "unique-azcreds-org1-cred1"); err != nil || ok {
		t.Fatalf("FindApp after delete = %v, %v; want not found", ok, err)
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Errorf("after delete: apps = %v", apps)
	}
	if err := dir.DeleteApp(ctx, app.ObjectID); err != nil {
		t.Errorf("second DeleteApp = %v, want nil (404 counts as deleted)", err)
	}
}

// TestDirectoryWithManagedIdentityCredential runs the home-tenant calls with azidentity's
// own ManagedIdentityCredential against the stand-in's App Service endpoint.
func TestDirectoryWithManagedIdentityCredential(t *testing.T) {
	si := newStandIn(t)
	t.Setenv("IDENTITY_ENDPOINT", si.srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", localazure.DefaultIdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(si.miClientID),
		ClientOptions: azcore.ClientOptions{Transport: si.srv.Client()},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := New(cred, si.options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "via-msi", UniqueName: uuid.NewString()})
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if err := dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()); err != nil {
		t.Fatalf("AddFederatedCredential: %v", err)
	}
	if err := dir.DeleteApp(ctx, app.ObjectID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
}

func TestDirectoryFailures(t *testing.T) {
	si := newStandIn(t)
	dir := si.directory()
	ctx := context.Background()
	app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "faulty", UniqueName: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}

	// The SDK retries 429, 503 and 504 three times itself; four firings outlast it.
	tests := []struct {
		name        string
		fault       localazure.Fault
		call        func() error
		status      int
		code        string
		unavailable bool
		is          error
	}{
		{
			name:   "FIC creation fails",
			fault:  localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: 500, Count: 1},
			call:   func() error { return dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()) },
			status: 500, code: "Service_InternalServerError", unavailable: true,
		},
		{
			name:   "FIC creation refused",
			fault:  localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: 400, Count: 1, Code: "Request_BadRequest"},
			call:   func() error { return dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()) },
			status: 400, code: "Request_BadRequest",
		},
		{
			name:  "throttled app creation",
			fault: localazure.Fault{Operation: localazure.OpCreateApplication, Status: 429, Count: 4, RetryAfter: ptr(0)},
			call: func() error {
				_, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "x", UniqueName: uuid.NewString()})
				return err
			},
			status: 429, code: "TooManyRequests", unavailable: true,
		},
		{
			name:   "app deletion unavailable",
			fault:  localazure.Fault{Operation: localazure.OpDeleteApplication, Status: 503, Count: 4, RetryAfter: ptr(0)},
			call:   func() error { return dir.DeleteApp(ctx, app.ObjectID) },
			status: 503, code: "ServiceUnavailable", unavailable: true,
		},
		{
			name:   "FIC on an app Graph does not see",
			call:   func() error { return dir.AddFederatedCredential(ctx, uuid.NewString(), backendFIC()) },
			status: 404, code: "Request_ResourceNotFound", unavailable: true, is: ErrAppNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault.Operation != "" {
				si.fault(tt.fault)
			}
			err := tt.call()
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v, want *graph.Error", err)
			}
			if ge.StatusCode != tt.status || ge.Code != tt.code || ge.RequestID == "" {
				t.Errorf("Error = %+v, want status %d code %s and a request id", ge, tt.status, tt.code)
			}
			if got := errors.Is(err, credential.ErrUnavailable); got != tt.unavailable {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v; err %v", got, tt.unavailable, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to match %v", err, tt.is)
			}
		})
	}

	// A fault consumed by the failures above leaves the next call working.
	if err := dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()); err != nil {
		t.Fatalf("after faults: %v", err)
	}
	if err := dir.DeleteApp(ctx, app.ObjectID); err != nil {
		t.Fatalf("after faults: %v", err)
	}
}

func TestFindServicePrincipal(t *testing.T) {
	si := newStandIn(t)
	dir := si.directory()
	ctx := context.Background()
	newApp := func(fic credential.FederatedCredential) credential.App {
		app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "lookup", UniqueName: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.AddFederatedCredential(ctx, app.ObjectID, fic); err != nil {
			t.Fatal(err)
		}
		return app
	}
	install := func(tenantID, appID string) string {
		sp, _, err := si.s.InstallServicePrincipal(tenantID, appID)
		if err != nil {
			t.Fatal(err)
		}
		return sp.ID
	}

	t.Run("found, then removed", func(t *testing.T) {
		app := newApp(backendFIC())
		spID := install(custTenant, app.AppID)
		cred := si.appCredential(custTenant, app.AppID)
		got, err := dir.FindServicePrincipal(ctx, cred, app.AppID)
		if err != nil || got != spID {
			t.Fatalf("FindServicePrincipal = %q, %v; want %q", got, err, spID)
		}
		// The token stays cached; Graph itself now answers 404.
		if err := si.s.RemoveServicePrincipal(custTenant, app.AppID); err != nil {
			t.Fatal(err)
		}
		_, err = dir.FindServicePrincipal(ctx, cred, app.AppID)
		checkError(t, err, ErrServicePrincipalNotFound, false, "Request_ResourceNotFound")
	})

	t.Run("not installed: AADSTS700016 at token time", func(t *testing.T) {
		app := newApp(backendFIC())
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(custTenant, app.AppID), app.AppID)
		checkError(t, err, ErrServicePrincipalNotFound, false, "AADSTS700016")
	})

	t.Run("unknown tenant: AADSTS90002", func(t *testing.T) {
		app := newApp(backendFIC())
		other := uuid.NewString()
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(other, app.AppID), app.AppID)
		checkError(t, err, ErrTenantNotFound, false, "AADSTS90002")
	})

	t.Run("federated credential mismatch: AADSTS700213", func(t *testing.T) {
		fic := backendFIC()
		fic.Subject = uuid.NewString()
		app := newApp(fic)
		install(custTenant, app.AppID)
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(custTenant, app.AppID), app.AppID)
		checkError(t, err, ErrFederationMismatch, false, "AADSTS700213")
	})

	t.Run("new federated credential propagating: AADSTS70021", func(t *testing.T) {
		app := newApp(backendFIC())
		install(custTenant, app.AppID)
		si.fault(localazure.Fault{Operation: localazure.OpToken, Status: 400, Code: "AADSTS70021"})
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(custTenant, app.AppID), app.AppID)
		checkError(t, err, credential.ErrUnavailable, true, "AADSTS70021")
	})

	t.Run("Entra unavailable", func(t *testing.T) {
		app := newApp(backendFIC())
		install(custTenant, app.AppID)
		si.fault(localazure.Fault{Operation: localazure.OpToken, Status: 503})
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(custTenant, app.AppID), app.AppID)
		checkError(t, err, credential.ErrUnavailable, true, "AADSTS90033")
	})

	t.Run("Graph throttling", func(t *testing.T) {
		app := newApp(backendFIC())
		install(custTenant, app.AppID)
		si.fault(localazure.Fault{Operation: localazure.OpGetServicePrincipal, Status: 429, Count: 4, RetryAfter: ptr(0)})
		_, err := dir.FindServicePrincipal(ctx, si.appCredential(custTenant, app.AppID), app.AppID)
		checkError(t, err, credential.ErrUnavailable, true, "TooManyRequests")
	})
}

// checkError asserts err is an *Error with code that matches is, and ErrUnavailable
// exactly when unavailable says so.
func checkError(t *testing.T, err, is error, unavailable bool, code string) {
	t.Helper()
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want *graph.Error", err)
	}
	if ge.Code != code {
		t.Errorf("Code = %q, want %q; err %v", ge.Code, code, err)
	}
	if !errors.Is(err, is) {
		t.Errorf("err = %v, want it to match %v", err, is)
	}
	if got := errors.Is(err, credential.ErrUnavailable); got != unavailable {
		t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", got, unavailable)
	}
	if ge.RequestID == "" {
		t.Errorf("no request id in %+v", ge)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	si := newStandIn(t)
	for _, base := range []string{"graph.microsoft.com/v1.0", "ftp://x/v1.0", "::"} {
		if _, err := New(si.mi(), Options{BaseURL: base}); err == nil {
			t.Errorf("New with base URL %q succeeded", base)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New with a nil credential succeeded")
	}
	if _, err := New(si.mi(), Options{}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

// scopeRecorder is a token credential that records the scopes it is asked for and gives
// no token.
type scopeRecorder struct {
	mu     sync.Mutex
	scopes [][]string
}

func (r *scopeRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scopes = append(r.scopes, o.Scopes)
	return azcore.AccessToken{}, errors.New("no token here")
}

// TestScopeFollowsTheCloud: Graph tokens are asked for the configured cloud's Graph
// resource, for the home tenant's calls and for the app's own lookup in a customer tenant.
func TestScopeFollowsTheCloud(t *testing.T) {
	for _, tc := range []struct{ name, scope, want string }{
		{"public (the default)", "", "https://graph.microsoft.com/.default"},
		{"US Government", "https://graph.microsoft.us/.default", "https://graph.microsoft.us/.default"},
		{"China", "https://microsoftgraph.chinacloudapi.cn/.default", "https://microsoftgraph.chinacloudapi.cn/.default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("a request reached Graph without a token: %s %s", r.Method, r.URL)
			}))
			t.Cleanup(srv.Close)
			home, app := &scopeRecorder{}, &scopeRecorder{}
			c, err := New(home, Options{BaseURL: srv.URL + "/v1.0", HTTPClient: srv.Client(), Scope: tc.scope})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, _, err := c.FindApp(ctx, "x"); err == nil {
				t.Fatal("FindApp without a token succeeded")
			}
			if _, err := c.FindServicePrincipal(ctx, app, uuid.NewString()); err == nil {
				t.Fatal("FindServicePrincipal without a token succeeded")
			}
			for name, r := range map[string]*scopeRecorder{"home": home, "app": app} {
				r.mu.Lock()
				got := fmt.Sprint(r.scopes)
				r.mu.Unlock()
				if !strings.HasPrefix(got, "[["+tc.want+"]") {
					t.Errorf("%s token scopes %s, want %s", name, got, tc.want)
				}
			}
		})
	}
}
