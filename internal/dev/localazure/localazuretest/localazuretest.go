// Package localazuretest serves the local Entra ID and Graph stand-in (package localazure)
// to tests, and builds the credentials the product uses against it: the backend's managed
// identity and an app's client assertion credential in a customer tenant. It is for tests
// only; no product code imports it.
//
// Graph calls made here are plain HTTP, not msgraph-sdk-go: only internal/azure/graph and
// the handler binary may link that SDK (internal/credential's TestOnlyGraphLinksMSGraph).
package localazuretest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/dev/localazure"
)

// StandIn is a localazure.Server served over TLS by an httptest server for one test.
type StandIn struct {
	Server *localazure.Server
	// HTTPS serves Server's handler; HTTPS.Client() trusts its certificate.
	HTTPS *httptest.Server
	// Config is the configuration Server was built from, with the managed identity's client
	// id filled in.
	Config localazure.Config
}

// Start serves a stand-in built from cfg over TLS until the test ends. wrap, when not nil,
// wraps the stand-in's handler (to count or record requests).
//
// An empty cfg.ManagedIdentity.ClientID gets a fresh one: MSAL keeps one managed identity
// token cache per process, and a token cached for another test's server would not verify
// here.
func Start(tb testing.TB, cfg localazure.Config, wrap func(http.Handler) http.Handler) *StandIn {
	tb.Helper()
	if cfg.ManagedIdentity.ClientID == "" {
		cfg.ManagedIdentity.ClientID = uuid.NewString()
	}
	s, err := localazure.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewTLSServer(h)
	tb.Cleanup(srv.Close)
	return &StandIn{Server: s, HTTPS: srv, Config: cfg}
}

// ManagedIdentity is the backend's managed identity as a TokenCredential that calls the
// stand-in's App Service endpoint (/msi/token) on every GetToken, the way
// ManagedIdentityCredential does in Functions but without MSAL's process-wide cache, so
// that tests neither share tokens nor miss requests they count.
func (si *StandIn) ManagedIdentity() *ManagedIdentityCredential {
	header := si.Config.IdentityHeader
	if header == "" {
		header = localazure.DefaultIdentityHeader
	}
	return &ManagedIdentityCredential{endpoint: si.HTTPS.URL + "/msi/token", clientID: si.Config.ManagedIdentity.ClientID,
		header: header, client: si.HTTPS.Client()}
}

// ManagedIdentityCredential is the credential StandIn.ManagedIdentity returns.
type ManagedIdentityCredential struct {
	endpoint, clientID, header string
	client                     *http.Client
}

// GetToken asks the managed identity endpoint for a token for the one scope in opts. A
// refusal is reported as ManagedIdentityCredential reports it: the response in an
// *azidentity.AuthenticationFailedError.
func (c *ManagedIdentityCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("want one scope, got %v", opts.Scopes)
	}
	q := url.Values{"api-version": {"2019-08-01"}, "client_id": {c.clientID},
		"resource": {strings.TrimSuffix(opts.Scopes[0], "/.default")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("X-IDENTITY-HEADER", c.header)
	resp, err := c.client.Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return azcore.AccessToken{}, &azidentity.AuthenticationFailedError{RawResponse: resp}
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return azcore.AccessToken{}, err
	}
	exp, err := strconv.ParseInt(body.ExpiresOn, 10, 64)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: time.Unix(exp, 0)}, nil
}

// AppCredential is app appID's credential in tenantID: the managed identity's token for the
// token exchange audience as the client assertion, as the identity chain does it. azcore's
// retries are off so that injected failures surface at once.
func (si *StandIn) AppCredential(tb testing.TB, tenantID, appID string) azcore.TokenCredential {
	tb.Helper()
	mi := si.ManagedIdentity()
	assertion := func(ctx context.Context) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{localazure.TokenExchangeAudience + "/.default"}})
		return tok.Token, err
	}
	cred, err := azidentity.NewClientAssertionCredential(tenantID, appID, assertion, &azidentity.ClientAssertionCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: si.HTTPS.URL + "/"},
			Transport: si.HTTPS.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return cred
}

// App is an app registration in the home tenant.
type App struct {
	ObjectID, AppID string
}

// RegisterApp registers a multi-tenant app named displayName through the stand-in's Graph
// endpoints, as the managed identity. With subject not empty it adds one federated identity
// credential, "backend", that trusts subject as the home tenant issues it for the token
// exchange audience (the managed identity's object id is the backend's own subject).
func (si *StandIn) RegisterApp(tb testing.TB, displayName, subject string) App {
	tb.Helper()
	ctx := context.Background()
	tok, err := si.ManagedIdentity().GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{localazure.GraphAudience + "/.default"}})
	if err != nil {
		tb.Fatal(err)
	}
	post := func(path string, body, out any) {
		tb.Helper()
		raw, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, si.HTTPS.URL+path, bytes.NewReader(raw))
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := si.HTTPS.Client().Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			msg, _ := io.ReadAll(resp.Body)
			tb.Fatalf("POST %s: %s %s", path, resp.Status, msg)
		}
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				tb.Fatal(err)
			}
		}
	}
	var app struct {
		ID    string `json:"id"`
		AppID string `json:"appId"`
	}
	post("/v1.0/applications", map[string]any{"displayName": displayName, "signInAudience": "AzureADMultipleOrgs"}, &app)
	if app.ID == "" || app.AppID == "" {
		tb.Fatalf("POST /v1.0/applications: no id or appId in %+v", app)
	}
	if subject != "" {
		post("/v1.0/applications/"+app.ID+"/federatedIdentityCredentials", map[string]any{
			"name": "backend", "issuer": localazure.V2Issuer(si.Config.HomeTenantID), "subject": subject,
			"audiences": []string{localazure.TokenExchangeAudience},
		}, nil)
	}
	return App{ObjectID: app.ID, AppID: app.AppID}
}
