package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
)

// entraCounter counts the token chain's requests to Entra and can add a Retry-After to a
// throttled token response (the stand-in's token faults carry none).
type entraCounter struct {
	next policy.Transporter

	mu         sync.Mutex
	tokens     int
	openID     int
	retryAfter string
}

func (c *entraCounter) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		c.tokens++
		if err == nil && resp.StatusCode == http.StatusTooManyRequests && c.retryAfter != "" {
			resp.Header.Set("Retry-After", c.retryAfter)
		}
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		c.openID++
	}
	return resp, err
}

// requests returns the token and OpenID configuration requests so far.
func (c *entraCounter) requests() (tokens, openID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens, c.openID
}

func (c *entraCounter) setRetryAfter(v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retryAfter = v
}

// finder is a Finder over the real token chain (identity.Chain, azidentity) and the real
// Graph client against the stand-in.
func (si *standIn) finder() (*Finder, *identity.Chain, *entraCounter) {
	si.t.Helper()
	counter := &entraCounter{next: si.srv.Client()}
	chain, err := identity.New(si.mi(), identity.Options{AuthorityHost: si.srv.URL + "/", Transport: counter})
	if err != nil {
		si.t.Fatal(err)
	}
	return NewFinder(si.directory(), chain), chain, counter
}

// checkProviderError asserts err is a *credential.ProviderError of kind (nil: none of the
// domain's sentinels) with code, status and a request id.
func checkProviderError(t *testing.T, err, kind error, code string, status int) {
	t.Helper()
	var pe *credential.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *credential.ProviderError", err)
	}
	if pe.Kind != kind || pe.Code != code || pe.Status != status || pe.RequestID == "" {
		t.Errorf("ProviderError{Kind: %v, Code: %q, Status: %d, RequestID: %q}, want kind %v, code %q, status %d and a request id",
			pe.Kind, pe.Code, pe.Status, pe.RequestID, kind, code, status)
	}
	for _, sentinel := range []error{credential.ErrSPNotFound, credential.ErrTenantNotFound, credential.ErrFederation, credential.ErrUnavailable} {
		if got, want := errors.Is(err, sentinel), sentinel == kind; got != want {
			t.Errorf("errors.Is(err, %v) = %v, want %v; err %v", sentinel, got, want, err)
		}
	}
}

func TestFinder(t *testing.T) {
	si := newStandIn(t)
	dir := si.directory()
	f, chain, counter := si.finder()
	ctx := context.Background()
	newApp := func(fic *credential.FederatedCredential) string {
		t.Helper()
		app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "finder", UniqueName: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
		if fic != nil {
			if err := dir.AddFederatedCredential(ctx, app.ObjectID, *fic); err != nil {
				t.Fatal(err)
			}
		}
		return app.AppID
	}
	backend := backendFIC()
	install := func(appID string) string {
		t.Helper()
		sp, _, err := si.s.InstallServicePrincipal(custTenant, appID)
		if err != nil {
			t.Fatal(err)
		}
		return sp.ID
	}
	cached := func(appID string) any {
		t.Helper()
		cred, err := chain.For(custTenant, appID, false)
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}

	t.Run("found; the next poll uses the cached token; a fresh credential fetches one", func(t *testing.T) {
		appID := newApp(&backend)
		spID := install(appID)
		tokens0, openID0 := counter.requests()
		got, err := f.FindServicePrincipal(ctx, custTenant, appID)
		if err != nil || got != spID {
			t.Fatalf("FindServicePrincipal = %q, %v; want %q", got, err, spID)
		}
		tokens1, openID1 := counter.requests()
		t.Logf("first poll: %d token and %d OpenID configuration requests", tokens1-tokens0, openID1-openID0)
		if tokens1-tokens0 != 1 || openID1-openID0 != 1 {
			t.Errorf("first poll: %d token and %d OpenID requests, want 1 and 1", tokens1-tokens0, openID1-openID0)
		}

		if got, err := f.FindServicePrincipal(ctx, custTenant, appID); err != nil || got != spID {
			t.Fatalf("second poll = %q, %v", got, err)
		}
		tokens2, openID2 := counter.requests()
		t.Logf("cached poll: %d token and %d OpenID configuration requests", tokens2-tokens1, openID2-openID1)
		if tokens2 != tokens1 || openID2 != openID1 {
			t.Errorf("cached poll: %d token and %d OpenID requests, want none", tokens2-tokens1, openID2-openID1)
		}

		old := cached(appID)
		fresh, err := chain.For(custTenant, appID, true)
		if err != nil {
			t.Fatal(err)
		}
		if fresh == old {
			t.Fatal("For(fresh) returned the cached credential")
		}
		if got, err := f.FindServicePrincipal(ctx, custTenant, appID); err != nil || got != spID {
			t.Fatalf("poll after For(fresh) = %q, %v", got, err)
		}
		tokens3, openID3 := counter.requests()
		t.Logf("fresh poll: %d token and %d OpenID configuration requests", tokens3-tokens2, openID3-openID2)
		if tokens3-tokens2 != 1 || openID3-openID2 != 1 {
			t.Errorf("fresh poll: %d token and %d OpenID requests, want 1 and 1", tokens3-tokens2, openID3-openID2)
		}
	})

	t.Run("installed late: AADSTS700016 is not cached", func(t *testing.T) {
		appID := newApp(&backend)
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrSPNotFound, "AADSTS700016", http.StatusBadRequest)
		before := cached(appID)

		spID := install(appID)
		tokens0, _ := counter.requests()
		got, err := f.FindServicePrincipal(ctx, custTenant, appID)
		if err != nil || got != spID {
			t.Fatalf("after install: %q, %v; want %q", got, err, spID)
		}
		if tokens1, _ := counter.requests(); tokens1-tokens0 != 1 {
			t.Errorf("after install: %d token requests, want 1", tokens1-tokens0)
		}
		if cached(appID) != before {
			t.Error("the poll did not use the cached credential (fresh=false)")
		}
	})

	t.Run("removed after sign-in: Graph's 404, and the next poll signs in afresh", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		if _, err := f.FindServicePrincipal(ctx, custTenant, appID); err != nil {
			t.Fatal(err)
		}
		before := cached(appID)
		if err := si.s.RemoveServicePrincipal(custTenant, appID); err != nil {
			t.Fatal(err)
		}
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrSPNotFound, "Request_ResourceNotFound", http.StatusNotFound)
		if cached(appID) == before {
			t.Error("the credential whose token Graph refused is still cached")
		}
		spID := install(appID)
		tokens0, _ := counter.requests()
		if got, err := f.FindServicePrincipal(ctx, custTenant, appID); err != nil || got != spID {
			t.Fatalf("after reinstall: %q, %v; want %q", got, err, spID)
		}
		if tokens1, _ := counter.requests(); tokens1-tokens0 != 1 {
			t.Errorf("after reinstall: %d token requests, want 1", tokens1-tokens0)
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		appID := newApp(&backend)
		_, err := f.FindServicePrincipal(ctx, uuid.NewString(), appID)
		checkProviderError(t, err, credential.ErrTenantNotFound, "AADSTS90002", http.StatusBadRequest)
	})

	t.Run("federated credential for another subject", func(t *testing.T) {
		fic := backendFIC()
		fic.Subject = uuid.NewString()
		appID := newApp(&fic)
		install(appID)
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrFederation, "AADSTS700213", http.StatusUnauthorized)
	})

	t.Run("no federated credential at all", func(t *testing.T) {
		appID := newApp(nil)
		install(appID)
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrFederation, "AADSTS70025", http.StatusUnauthorized)
	})

	t.Run("new federated credential propagating", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		si.fault(localazure.Fault{Operation: localazure.OpToken, Status: 400, Code: "AADSTS70021"})
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrUnavailable, "AADSTS70021", http.StatusBadRequest)
	})

	t.Run("Entra unavailable: retried once, then left to the next poll", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		si.fault(localazure.Fault{Operation: localazure.OpToken, Status: 503, Count: 2})
		tokens0, _ := counter.requests()
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrUnavailable, "AADSTS90033", http.StatusServiceUnavailable)
		if tokens1, _ := counter.requests(); tokens1-tokens0 != 2 {
			t.Errorf("%d token requests, want 2 (one retry)", tokens1-tokens0)
		}
	})

	t.Run("Entra throttling with a long Retry-After is not waited for", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		counter.setRetryAfter("30")
		defer counter.setRetryAfter("")
		si.fault(localazure.Fault{Operation: localazure.OpToken, Status: 429})
		tokens0, _ := counter.requests()
		start := time.Now()
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v: the Retry-After was waited for", d)
		}
		checkProviderError(t, err, credential.ErrUnavailable, "AADSTS90055", http.StatusTooManyRequests)
		if tokens1, _ := counter.requests(); tokens1-tokens0 != 1 {
			t.Errorf("%d token requests, want 1", tokens1-tokens0)
		}
		// The next poll gets through.
		if _, err := f.FindServicePrincipal(ctx, custTenant, appID); err != nil {
			t.Errorf("next poll: %v", err)
		}
	})

	t.Run("Graph throttling", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		si.fault(localazure.Fault{Operation: localazure.OpGetServicePrincipal, Status: 429, Count: 4, RetryAfter: ptr(0)})
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, credential.ErrUnavailable, "TooManyRequests", http.StatusTooManyRequests)
	})

	t.Run("anything else keeps its code and no kind", func(t *testing.T) {
		appID := newApp(&backend)
		install(appID)
		si.fault(localazure.Fault{Operation: localazure.OpGetServicePrincipal, Status: 403})
		_, err := f.FindServicePrincipal(ctx, custTenant, appID)
		checkProviderError(t, err, nil, "Authorization_RequestDenied", http.StatusForbidden)
	})

	t.Run("no credential for bad ids", func(t *testing.T) {
		_, err := f.FindServicePrincipal(ctx, "not a tenant!", uuid.NewString())
		if err == nil {
			t.Fatal("FindServicePrincipal with a malformed tenant id succeeded")
		}
		for _, sentinel := range []error{credential.ErrSPNotFound, credential.ErrTenantNotFound, credential.ErrFederation, credential.ErrUnavailable} {
			if errors.Is(err, sentinel) {
				t.Errorf("err %v matches %v", err, sentinel)
			}
		}
	})

	if faults := si.s.Faults(); len(faults) != 0 {
		t.Errorf("faults left over: %+v", faults)
	}
}

func TestFinderCancelled(t *testing.T) {
	si := newStandIn(t)
	f, _, _ := si.finder()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.FindServicePrincipal(ctx, custTenant, uuid.NewString())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestFinderWithManagedIdentityCredential runs the whole chain with azidentity's own
// ManagedIdentityCredential (App Service source, as in Functions) as the assertion, and
// checks that an outage of the managed identity endpoint is reported as worth retrying.
func TestFinderWithManagedIdentityCredential(t *testing.T) {
	si := newStandIn(t)
	t.Setenv("IDENTITY_ENDPOINT", si.srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", localazure.DefaultIdentityHeader)
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(si.miClientID),
		ClientOptions: azcore.ClientOptions{Transport: si.srv.Client(),
			Retry: policy.RetryOptions{MaxRetries: -1}}, // the injected 503 surfaces at once
	})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := identity.New(mi, identity.Options{AuthorityHost: si.srv.URL + "/", Transport: si.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	dir := si.directory()
	f := NewFinder(dir, chain)
	ctx := context.Background()
	app, err := dir.CreateApp(ctx, credential.AppSpec{DisplayName: "via-msi", UniqueName: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.AddFederatedCredential(ctx, app.ObjectID, backendFIC()); err != nil {
		t.Fatal(err)
	}
	sp, _, err := si.s.InstallServicePrincipal(custTenant, app.AppID)
	if err != nil {
		t.Fatal(err)
	}

	// MSAL caches managed identity tokens per process: the fault must come before the
	// identity's first token of this test (its client id is new for every test).
	si.fault(localazure.Fault{Operation: localazure.OpManagedIdentityToken, Status: 503})
	_, err = f.FindServicePrincipal(ctx, custTenant, app.AppID)
	var pe *credential.ProviderError
	if !errors.As(err, &pe) || pe.Kind != credential.ErrUnavailable || pe.Status != http.StatusServiceUnavailable {
		t.Fatalf("managed identity down: err = %v, want a ProviderError of ErrUnavailable with status 503", err)
	}

	if got, err := f.FindServicePrincipal(ctx, custTenant, app.AppID); err != nil || got != sp.ID {
		t.Fatalf("FindServicePrincipal = %q, %v; want %q", got, err, sp.ID)
	}
}
