package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
)

const (
	homeTenant = "11111111-1111-1111-1111-111111111111"
	custTenant = "22222222-2222-2222-2222-222222222222"
	miObjectID = "55555555-5555-5555-5555-555555555555"

	storageScope = "https://storage.azure.com/.default"
	graphScope   = "https://graph.microsoft.com/.default"
)

// standIn is the local Entra ID stand-in over TLS for one test, counting the requests the
// token chain makes.
type standIn struct {
	t     *testing.T
	s     *localazure.Server
	local *localazuretest.StandIn

	mu         sync.Mutex
	n          counts
	miResource []string // resource of every managed identity token request
	retryAfter string   // Retry-After added to failed token responses, when set
}

// counts are requests by kind.
type counts struct {
	token  int // POST /{tenant}/oauth2/v2.0/token
	openID int // GET /{tenant}/v2.0/.well-known/openid-configuration
	mi     int // GET /msi/token
}

func (c counts) minus(o counts) counts {
	return counts{token: c.token - o.token, openID: c.openID - o.openID, mi: c.mi - o.mi}
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	si := &standIn{t: t}
	si.local = localazuretest.Start(t, localazure.Config{
		HomeTenantID:    homeTenant,
		ManagedIdentity: localazure.ManagedIdentity{ObjectID: miObjectID},
		Tenants:         []string{custTenant},
	}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			si.mu.Lock()
			switch {
			case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
				si.n.token++
				if si.retryAfter != "" {
					w.Header().Set("Retry-After", si.retryAfter)
				}
			case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
				si.n.openID++
			case r.URL.Path == "/msi/token":
				si.n.mi++
				si.miResource = append(si.miResource, r.URL.Query().Get("resource"))
			}
			si.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	si.s = si.local.Server
	return si
}

func (si *standIn) counts() counts {
	si.mu.Lock()
	defer si.mu.Unlock()
	return si.n
}

func (si *standIn) setRetryAfter(v string) {
	si.mu.Lock()
	defer si.mu.Unlock()
	si.retryAfter = v
}

// chain is a Chain against the stand-in, with the managed identity of mi.
func (si *standIn) chain(max int) *Chain {
	si.t.Helper()
	c, err := New(si.mi(), Options{AuthorityHost: si.local.HTTPS.URL, Transport: si.local.HTTPS.Client(), MaxCredentials: max})
	if err != nil {
		si.t.Fatal(err)
	}
	return c
}

// mi is the backend's managed identity: it calls the stand-in's App Service endpoint every
// time, so requests can be counted.
func (si *standIn) mi() *localazuretest.ManagedIdentityCredential {
	return si.local.ManagedIdentity()
}

// createApp registers a multi-tenant app in the home tenant, as the managed identity, with
// one federated credential for subject (the managed identity's object id unless told
// otherwise; none when subject is "-").
func (si *standIn) createApp(subject string) (appID string) {
	si.t.Helper()
	switch subject {
	case "":
		subject = miObjectID
	case "-":
		subject = ""
	}
	return si.local.RegisterApp(si.t, "chain-test", subject).AppID
}

// install is the customer's `az ad sp create --id appID`; it returns the SP's object id.
func (si *standIn) install(appID string) string {
	si.t.Helper()
	sp, _, err := si.s.InstallServicePrincipal(custTenant, appID)
	if err != nil {
		si.t.Fatal(err)
	}
	return sp.ID
}

func (si *standIn) fault(f localazure.Fault) {
	si.t.Helper()
	if err := si.s.InjectFault(f); err != nil {
		si.t.Fatal(err)
	}
}

func getToken(t *testing.T, cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	t.Helper()
	return cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
}

func mustFor(t *testing.T, c *Chain, tenantID, appID string, fresh bool) azcore.TokenCredential {
	t.Helper()
	cred, err := c.For(tenantID, appID, fresh)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// entraResponse is the response a token failure carries, and its body.
func entraResponse(t *testing.T, err error) (*http.Response, []byte) {
	t.Helper()
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) || af.RawResponse == nil {
		t.Fatalf("err = %v, want an AuthenticationFailedError with Entra's response", err)
	}
	raw, perr := runtime.Payload(af.RawResponse)
	if perr != nil {
		t.Fatal(perr)
	}
	return af.RawResponse, raw
}

// entraCode is the AADSTS number in a token failure's body.
func entraCode(t *testing.T, err error) (status, code int) {
	t.Helper()
	resp, raw := entraResponse(t, err)
	var body struct {
		Codes []int `json:"error_codes"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Codes) > 0 {
		code = body.Codes[0]
	}
	return resp.StatusCode, code
}

func TestChainSignsInAsTheApp(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	spID := si.install(appID)

	before := si.counts()
	cred := mustFor(t, c, custTenant, appID, false)
	tok, err := getToken(t, cred, storageScope)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	claims, err := si.s.VerifyToken(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.TenantID != custTenant || claims.ObjectID != spID || claims.AppID != appID || claims.Audience != "https://storage.azure.com" {
		t.Errorf("token claims = %+v; want tenant %s, oid %s, appid %s, storage audience", claims, custTenant, spID, appID)
	}
	if got, want := si.counts().minus(before), (counts{token: 1, openID: 1, mi: 1}); got != want {
		t.Errorf("first token: requests %+v, want %+v", got, want)
	}
	si.mu.Lock()
	if res := si.miResource[len(si.miResource)-1]; res != localazure.TokenExchangeAudience {
		t.Errorf("managed identity token asked for resource %q, want %q", res, localazure.TokenExchangeAudience)
	}
	si.mu.Unlock()

	// The next poll gets the same credential and its cached token: no request at all.
	before = si.counts()
	if again := mustFor(t, c, strings.ToUpper(custTenant), strings.ToUpper(appID), false); again != cred {
		t.Error("For returned a new credential for a cached (tenant, app)")
	}
	tok2, err := getToken(t, cred, storageScope)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.Token != tok.Token {
		t.Error("second GetToken did not come from the cache")
	}
	if got := si.counts().minus(before); got != (counts{}) {
		t.Errorf("cached token: requests %+v, want none", got)
	}

	// Another resource is another token, through a new client assertion.
	before = si.counts()
	gt, err := getToken(t, cred, graphScope)
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := si.s.VerifyToken(gt.Token); err != nil || claims.Audience != "https://graph.microsoft.com" {
		t.Errorf("graph token claims %+v, %v", claims, err)
	}
	if got, want := si.counts().minus(before), (counts{token: 1, mi: 1}); got != want {
		t.Errorf("graph token: requests %+v, want %+v", got, want)
	}
}

func TestChainFresh(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	si.install(appID)

	cached := mustFor(t, c, custTenant, appID, false)
	if _, err := getToken(t, cached, storageScope); err != nil {
		t.Fatal(err)
	}
	before := si.counts()
	fresh := mustFor(t, c, custTenant, appID, true)
	if fresh == cached {
		t.Fatal("For(fresh) returned the cached credential")
	}
	if _, err := getToken(t, fresh, storageScope); err != nil {
		t.Fatal(err)
	}
	if got, want := si.counts().minus(before), (counts{token: 1, openID: 1, mi: 1}); got != want {
		t.Errorf("fresh credential: requests %+v, want %+v", got, want)
	}
	// The fresh credential replaced the cached one.
	if again := mustFor(t, c, custTenant, appID, false); again != fresh {
		t.Error("For after For(fresh) did not return the fresh credential")
	}
	if n := c.lru.Len(); n != 1 {
		t.Errorf("cache holds %d credentials, want 1", n)
	}
}

// TestChainSignInFailureIsNotCached: Entra's AADSTS700016 (no service principal in the
// tenant) is a failed token request, which MSAL does not cache: once the customer installs
// the app, the same cached credential signs in.
func TestChainSignInFailureIsNotCached(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")

	cred := mustFor(t, c, custTenant, appID, false)
	_, err := getToken(t, cred, graphScope)
	if status, code := entraCode(t, err); status != http.StatusBadRequest || code != 700016 {
		t.Fatalf("before install: status %d AADSTS%d, want 400 AADSTS700016", status, code)
	}
	spID := si.install(appID)
	again := mustFor(t, c, custTenant, appID, false)
	if again != cred {
		t.Fatal("a failed sign-in replaced the cached credential")
	}
	before := si.counts()
	tok, err := getToken(t, again, graphScope)
	if err != nil {
		t.Fatalf("after install: %v", err)
	}
	if claims, err := si.s.VerifyToken(tok.Token); err != nil || claims.ObjectID != spID {
		t.Errorf("after install: claims %+v, %v; want oid %s", claims, err, spID)
	}
	if got := si.counts().minus(before); got.token != 1 {
		t.Errorf("after install: %d token requests, want 1", got.token)
	}
}

func TestChainEntraFailures(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	installed := si.createApp("")
	si.install(installed)
	mismatch := si.createApp(uuid.NewString())
	si.install(mismatch)

	tests := []struct {
		name         string
		appID        string
		tenantID     string
		status, code int
	}{
		{"unknown tenant", installed, uuid.NewString(), http.StatusBadRequest, 90002},
		{"federated credential for another subject", mismatch, custTenant, http.StatusUnauthorized, 700213},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := getToken(t, mustFor(t, c, tt.tenantID, tt.appID, false), storageScope)
			if status, code := entraCode(t, err); status != tt.status || code != tt.code {
				t.Errorf("status %d AADSTS%d, want %d AADSTS%d", status, code, tt.status, tt.code)
			}
		})
	}
}

// TestChainRetries: a token request is retried once, quickly; a Retry-After beyond the cap
// ends the call at once (the queue polls again later), so no poll is held for long.
func TestChainRetries(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	si.install(appID)

	tests := []struct {
		name       string
		fault      localazure.Fault
		retryAfter string
		wantStatus int // 0: the token comes through
		wantTokens int
		maxTime    time.Duration
	}{
		{"one 503 is retried", localazure.Fault{Operation: localazure.OpToken, Status: 503}, "", 0, 2, 2 * time.Second},
		{"503 twice", localazure.Fault{Operation: localazure.OpToken, Status: 503, Count: 2}, "", 503, 2, 2 * time.Second},
		{"429 with a long Retry-After", localazure.Fault{Operation: localazure.OpToken, Status: 429}, "30", 429, 1, time.Second},
		{"429 with a short Retry-After", localazure.Fault{Operation: localazure.OpToken, Status: 429}, "1", 0, 2, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := mustFor(t, c, custTenant, appID, true)
			si.fault(tt.fault)
			si.setRetryAfter(tt.retryAfter)
			defer si.setRetryAfter("")
			before := si.counts()
			start := time.Now()
			_, err := getToken(t, cred, storageScope)
			elapsed := time.Since(start)
			if tt.wantStatus == 0 && err != nil {
				t.Errorf("GetToken: %v", err)
			}
			if tt.wantStatus != 0 {
				if status, _ := entraCode(t, err); status != tt.wantStatus {
					t.Errorf("status %d, want %d", status, tt.wantStatus)
				}
			}
			if got := si.counts().minus(before).token; got != tt.wantTokens {
				t.Errorf("%d token requests, want %d", got, tt.wantTokens)
			}
			if elapsed > tt.maxTime {
				t.Errorf("took %v, want at most %v", elapsed, tt.maxTime)
			}
			if f := si.s.Faults(); len(f) != 0 {
				t.Errorf("faults left over: %+v", f)
				si.s.ClearFaults()
			}
		})
	}
}

// TestChainAssertionFailure: a refusal of the managed identity endpoint reaches the caller
// as the managed identity credential reported it (azidentity passes an
// AuthenticationFailedError from the assertion callback through), so adapters can classify
// it by status.
func TestChainAssertionFailure(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	si.install(appID)
	si.fault(localazure.Fault{Operation: localazure.OpManagedIdentityToken, Status: 503})
	_, err := getToken(t, mustFor(t, c, custTenant, appID, false), storageScope)
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) || af.RawResponse == nil || af.RawResponse.StatusCode != http.StatusServiceUnavailable ||
		af.RawResponse.Request.URL.Path != "/msi/token" {
		t.Fatalf("err = %v, want the managed identity endpoint's 503", err)
	}
	if si.counts().token != 0 {
		t.Error("a token request was made without an assertion")
	}
	// The next attempt signs in.
	if _, err := getToken(t, mustFor(t, c, custTenant, appID, false), storageScope); err != nil {
		t.Errorf("after the fault: %v", err)
	}
}

func TestChainCacheBound(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(3)
	apps := make([]string, 6)
	for i := range apps {
		apps[i] = uuid.NewString() // For makes no network call: the apps need not exist
	}
	first := map[string]azcore.TokenCredential{}
	for _, a := range apps[:3] {
		first[a] = mustFor(t, c, custTenant, a, false)
	}
	mustFor(t, c, custTenant, apps[0], false) // apps[0] is now the most recently used
	mustFor(t, c, custTenant, apps[3], false) // evicts apps[1], the least recently used
	if n := c.lru.Len(); n != 3 || len(c.entries) != 3 {
		t.Fatalf("cache holds %d (%d indexed), want 3", n, len(c.entries))
	}
	if mustFor(t, c, custTenant, apps[0], false) != first[apps[0]] {
		t.Error("the recently used credential was evicted")
	}
	if mustFor(t, c, custTenant, apps[2], false) != first[apps[2]] {
		t.Error("a credential was evicted before the least recently used one")
	}
	if mustFor(t, c, custTenant, apps[1], false) == first[apps[1]] {
		t.Error("the least recently used credential was not evicted")
	}
	mustFor(t, c, custTenant, apps[1], true) // fresh replaces, never grows the cache
	for _, a := range apps {
		mustFor(t, c, custTenant, a, false)
	}
	if n := c.lru.Len(); n != 3 || len(c.entries) != 3 {
		t.Errorf("cache holds %d (%d indexed), want 3", n, len(c.entries))
	}
}

func TestChainConcurrent(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(2)
	appID := si.createApp("")
	si.install(appID)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				other := fmt.Sprintf("00000000-0000-0000-0000-%012d", (i+j)%4)
				if _, err := c.For(custTenant, other, j%2 == 0); err != nil {
					errs <- err
					return
				}
				cred, err := c.For(custTenant, appID, i%4 == 0 && j == 0)
				if err != nil {
					errs <- err
					return
				}
				if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{storageScope}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.lru.Len(); n > 2 || len(c.entries) != n {
		t.Errorf("cache holds %d (%d indexed), want at most 2", n, len(c.entries))
	}
}

func TestNew(t *testing.T) {
	si := newStandIn(t)
	tests := []struct {
		host      string
		ok        bool
		authority string
		discovery bool
	}{
		{"", true, "https://login.microsoftonline.com/", true},
		{"https://login.microsoftonline.com", true, "https://login.microsoftonline.com/", true},
		{"https://login.microsoftonline.us/", true, "https://login.microsoftonline.us/", true},
		{"https://127.0.0.1:7443", true, "https://127.0.0.1:7443/", false},
		{"https://127.0.0.1:7443/", true, "https://127.0.0.1:7443/", false},
		{"http://127.0.0.1:7443/", false, "", false},
		{"login.microsoftonline.com", false, "", false},
		{"https://login.microsoftonline.com/?x=1", false, "", false},
		{"::", false, "", false},
	}
	for _, tt := range tests {
		c, err := New(si.mi(), Options{AuthorityHost: tt.host})
		if (err == nil) != tt.ok {
			t.Errorf("New(%q): err = %v, want ok %v", tt.host, err, tt.ok)
			continue
		}
		if err == nil && (c.authority != tt.authority || c.discovery != tt.discovery) {
			t.Errorf("New(%q): authority %q discovery %v, want %q %v", tt.host, c.authority, c.discovery, tt.authority, tt.discovery)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New with a nil assertion credential succeeded")
	}
	if _, err := New(si.mi(), Options{MaxCredentials: -1}); err == nil {
		t.Error("New with a negative MaxCredentials succeeded")
	}
	c := si.chain(0)
	if c.max != DefaultMaxCredentials {
		t.Errorf("max = %d, want %d", c.max, DefaultMaxCredentials)
	}
	for _, ids := range [][2]string{{"", "app"}, {custTenant, ""}, {"not a tenant!", uuid.NewString()}} {
		if _, err := c.For(ids[0], ids[1], false); err == nil {
			t.Errorf("For(%q, %q) succeeded", ids[0], ids[1])
		}
	}
	if n := c.lru.Len(); n != 0 {
		t.Errorf("failed For calls left %d cache entries", n)
	}
}

// scopeRecorder is an assertion credential that records the scopes it is asked for and
// gives no token.
type scopeRecorder struct {
	mu     sync.Mutex
	scopes []string
}

func (r *scopeRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scopes = append(r.scopes, o.Scopes...)
	return azcore.AccessToken{}, errors.New("no token here")
}

// TestAssertionAudienceFollowsTheCloud: the managed identity's token that serves as the
// client assertion is asked for the configured cloud's token-exchange audience, the one
// the apps' federated credentials name.
func TestAssertionAudienceFollowsTheCloud(t *testing.T) {
	si := newStandIn(t)
	for _, tc := range []struct{ audience, want string }{
		{"", "api://AzureADTokenExchange/.default"},
		{"api://AzureADTokenExchangeUSGov", "api://AzureADTokenExchangeUSGov/.default"},
		{"api://AzureADTokenExchangeChina", "api://AzureADTokenExchangeChina/.default"},
	} {
		rec := &scopeRecorder{}
		c, err := New(rec, Options{AuthorityHost: si.local.HTTPS.URL, Transport: si.local.HTTPS.Client(), TokenExchangeAudience: tc.audience})
		if err != nil {
			t.Fatal(err)
		}
		cred := mustFor(t, c, custTenant, uuid.NewString(), false)
		if _, err := getToken(t, cred, storageScope); err == nil {
			t.Fatal("a token without an assertion")
		}
		rec.mu.Lock()
		if len(rec.scopes) == 0 || rec.scopes[0] != tc.want {
			t.Errorf("audience %q: assertion scopes %v, want %s", tc.audience, rec.scopes, tc.want)
		}
		rec.mu.Unlock()
	}
}
