// Package graph is the project's one door to Microsoft Graph, and the only package that
// imports msgraph-sdk-go (a large dependency: keeping it here means only this package's
// tests and the main binary pay for compiling it).
//
// Client manages app registrations and their federated identity credentials in the home
// tenant as the backend's managed identity (implementing credential.Directory), and looks
// up an app's service principal in a customer tenant as the app itself. Failures come back
// as *Error, classified by type and code: see errors.go.
package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	msauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/activeloopai/azcreds/internal/credential"
)

// DefaultBaseURL is Microsoft Graph v1.0 in the public cloud.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// DefaultScope is the scope of Graph tokens in the public cloud. Each national cloud's
// Graph has its own (https://graph.microsoft.us/.default, https://microsoftgraph.chinacloudapi.cn/.default);
// the local stand-in issues tokens for the public one, whatever host serves it.
// https://learn.microsoft.com/graph/deployments
const DefaultScope = "https://graph.microsoft.com/.default"

// signInAudience makes the app multi-tenant, so a customer can install its service
// principal in their own tenant.
const signInAudience = "AzureADMultipleOrgs"

// Options configures a Client.
type Options struct {
	// BaseURL is Graph's base URL including the version; DefaultBaseURL when empty. The
	// local stack points it at the stand-in, e.g. https://127.0.0.1:7443/v1.0.
	BaseURL string
	// Scope is the scope of the Graph tokens, the cloud's Graph resource with /.default;
	// DefaultScope when empty.
	Scope string
	// HTTPClient's Transport carries the requests (for example one that trusts the local
	// stand-in's certificate) and its Timeout bounds each one. Graph's middleware (retry of
	// 429/503/504, compression, redirects) runs on top of it. Default: the SDK's client.
	HTTPClient *http.Client
}

// Client is a Graph client for the home tenant.
type Client struct {
	gc   *msgraph.GraphServiceClient
	opts Options
}

var _ credential.Directory = (*Client)(nil)

// New returns a Client that calls Graph with tokens from cred: in Azure, the backend's
// managed identity in the home tenant.
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if opts.Scope == "" {
		opts.Scope = DefaultScope
	}
	gc, err := newServiceClient(cred, opts)
	if err != nil {
		return nil, err
	}
	return &Client{gc: gc, opts: opts}, nil
}

// newServiceClient builds the SDK client for cred. The authentication provider attaches
// tokens only for allowed hosts (and silently sends none elsewhere), so the host of
// BaseURL is the allowed host.
func newServiceClient(cred azcore.TokenCredential, opts Options) (*msgraph.GraphServiceClient, error) {
	if cred == nil {
		return nil, errors.New("new graph client: nil credential")
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("new graph client: base URL %q is not an absolute http(s) URL", opts.BaseURL)
	}
	auth, err := msauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{opts.Scope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("new graph authentication provider: %w", err)
	}
	var hc *http.Client
	if opts.HTTPClient != nil {
		clientOptions := msgraph.GetDefaultClientOptions()
		middleware := msgraphcore.GetDefaultMiddlewaresWithOptions(&clientOptions)
		hc = &http.Client{
			Transport: khttp.NewCustomTransportWithParentTransport(opts.HTTPClient.Transport, middleware...),
			Timeout:   opts.HTTPClient.Timeout,
			// The redirect middleware follows redirects; the client must not do it twice.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	adapter, err := msgraph.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		return nil, fmt.Errorf("new graph request adapter: %w", err)
	}
	adapter.SetBaseUrl(opts.BaseURL)
	return msgraph.NewGraphServiceClient(adapter), nil
}

// CreateApp registers a multi-tenant app named spec.DisplayName whose unique name (Graph's
// alternate key) is spec.UniqueName, with spec's web redirect URIs, through Graph's upsert:
// when an earlier attempt already made it (an answer lost on the way back, a retry), the
// same app comes back and no second one exists.
func (c *Client) CreateApp(ctx context.Context, spec credential.AppSpec) (credential.App, error) {
	displayName, uniqueName := spec.DisplayName, spec.UniqueName
	body := models.NewApplication()
	body.SetDisplayName(&displayName)
	aud := signInAudience
	body.SetSignInAudience(&aud)
	if len(spec.RedirectURIs) > 0 {
		web := models.NewWebApplication()
		web.SetRedirectUris(spec.RedirectURIs)
		body.SetWeb(web)
	}
	headers := abstractions.NewRequestHeaders()
	headers.Add("Prefer", "create-if-missing")
	app, err := c.gc.ApplicationsWithUniqueName(&uniqueName).Patch(ctx, body,
		&applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderPatchRequestConfiguration{Headers: headers})
	if err != nil {
		return credential.App{}, wrap("create application "+uniqueName, err)
	}
	if app == nil {
		// 204: the app existed and was updated in place; read its ids.
		found, ok, err := c.FindApp(ctx, uniqueName)
		if err != nil {
			return credential.App{}, err
		}
		if !ok {
			return credential.App{}, fmt.Errorf("create application %s: graph updated it but cannot find it: %w", uniqueName, credential.ErrUnavailable)
		}
		return found, nil
	}
	return appOf("create application "+uniqueName, app)
}

// FindApp returns the app whose unique name is uniqueName; ok is false when there is none.
func (c *Client) FindApp(ctx context.Context, uniqueName string) (app credential.App, ok bool, err error) {
	a, err := c.gc.ApplicationsWithUniqueName(&uniqueName).Get(ctx, nil)
	if err != nil {
		if isNotFound(err) {
			return credential.App{}, false, nil
		}
		return credential.App{}, false, wrap("find application "+uniqueName, err)
	}
	app, err = appOf("find application "+uniqueName, a)
	return app, err == nil, err
}

func appOf(op string, app models.Applicationable) (credential.App, error) {
	if app == nil {
		return credential.App{}, fmt.Errorf("%s: graph answered without an application", op)
	}
	id, appID := deref(app.GetId()), deref(app.GetAppId())
	if id == "" || appID == "" {
		return credential.App{}, fmt.Errorf("%s: graph answered without id or appId", op)
	}
	return credential.App{ObjectID: id, AppID: appID}, nil
}

// AddFederatedCredential adds fc to the app with object id appObjectID. A 404 matches
// ErrAppNotFound and also credential.ErrUnavailable: right after CreateApp, Graph may not
// yet see the new app on every replica, so trying again later is the right move.
func (c *Client) AddFederatedCredential(ctx context.Context, appObjectID string, fc credential.FederatedCredential) error {
	body := models.NewFederatedIdentityCredential()
	body.SetName(&fc.Name)
	body.SetIssuer(&fc.Issuer)
	body.SetSubject(&fc.Subject)
	body.SetAudiences(fc.Audiences)
	if fc.Description != "" {
		body.SetDescription(&fc.Description)
	}
	_, err := c.gc.Applications().ByApplicationId(appObjectID).FederatedIdentityCredentials().Post(ctx, body, nil)
	return wrap(fmt.Sprintf("add federated credential %q to application %s", fc.Name, appObjectID), err,
		ErrAppNotFound, credential.ErrUnavailable)
}

// DeleteApp deletes the app with object id appObjectID. An app that is already gone counts
// as deleted, so clean-up can run more than once.
func (c *Client) DeleteApp(ctx context.Context, appObjectID string) error {
	err := c.gc.Applications().ByApplicationId(appObjectID).Delete(ctx, nil)
	if err != nil && isNotFound(err) {
		return nil
	}
	return wrap("delete application "+appObjectID, err)
}

// FindServicePrincipal returns the object id of appID's service principal in the tenant
// that cred signs in to: cred is the app's own credential in the customer tenant (the
// federated token chain), and an app may read its own service principal without any Graph
// permission. A missing service principal, reported by Graph (404) or by Entra refusing
// the app a token there (AADSTS700016), matches ErrServicePrincipalNotFound; an unknown
// tenant matches ErrTenantNotFound.
func (c *Client) FindServicePrincipal(ctx context.Context, cred azcore.TokenCredential, appID string) (string, error) {
	gc, err := newServiceClient(cred, c.opts)
	if err != nil {
		return "", err
	}
	op := "find service principal of app " + appID
	sp, err := gc.ServicePrincipalsWithAppId(&appID).Get(ctx, nil)
	if err != nil {
		return "", wrap(op, err, ErrServicePrincipalNotFound)
	}
	id := deref(sp.GetId())
	if id == "" {
		return "", fmt.Errorf("%s: graph answered without id", op)
	}
	return id, nil
}
