// Package identity is the token chain that lets the backend act as a credential's app in
// the customer's tenant without any secret (workload identity federation):
//
//	managed identity token for the cloud's token-exchange audience (api://AzureADTokenExchange)
//	  -> client_assertion of the app's client-credentials grant in the customer tenant
//	  -> token for storage (https://storage.azure.com/.default) or Graph
//
// Chain hands out one azidentity.ClientAssertionCredential per (tenant, app) and keeps it,
// so that its token cache serves every poll of that credential; the cache is bounded (least
// recently used out), since thousands of credentials may be polling at once. See
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation.
//
// ProviderError reads a refused token request (Entra's AADSTS code, status and trace id)
// into the domain's *credential.ProviderError, for every adapter that signs in through the
// chain.
package identity

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// DefaultTokenExchangeAudience is the public cloud's audience of the managed identity
// token that serves as the client assertion: the audience every federated identity
// credential of our apps trusts. The US Government and China clouds have their own
// (api://AzureADTokenExchangeUSGov, api://AzureADTokenExchangeChina).
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity
const DefaultTokenExchangeAudience = "api://AzureADTokenExchange"

// DefaultMaxCredentials bounds the cache when Options.MaxCredentials is zero. One entry is
// one app in one tenant: a few kilobytes (an MSAL client and its tokens).
const DefaultMaxCredentials = 4096

// Retries of a token request inside one call. A poll that fails is tried again by the queue
// a few seconds later, so the credential retries once, quickly, to ride out a blip, and
// gives up on a Retry-After longer than maxRetryDelay rather than hold the poll.
const (
	maxRetries    = 1
	retryDelay    = 250 * time.Millisecond
	maxRetryDelay = 2 * time.Second
	// tryTimeout bounds one request to Entra, so a stalled connection cannot hold a poll
	// whose context has no deadline.
	tryTimeout = 30 * time.Second
)

// Options configures a Chain.
type Options struct {
	// AuthorityHost is Entra's authority host, e.g. https://login.microsoftonline.com/ (the
	// default when empty) or the local stand-in's https://127.0.0.1:7443/. It must be https.
	AuthorityHost string
	// Transport carries the token requests; nil: azcore's default. Tests pass the
	// httptest TLS server's client.
	Transport policy.Transporter
	// MaxCredentials bounds the number of cached credentials; DefaultMaxCredentials when
	// zero.
	MaxCredentials int
	// TokenExchangeAudience is the cloud's audience of the managed identity's assertion,
	// the one the apps' federated identity credentials name; DefaultTokenExchangeAudience
	// when empty.
	TokenExchangeAudience string
}

// Chain issues the credentials of apps in customer tenants, each signing in with the
// backend's managed identity as its client assertion. It is safe for concurrent use.
type Chain struct {
	assertion azcore.TokenCredential
	scope     string // of the assertion: the token-exchange audience with /.default
	authority string
	discovery bool
	transport policy.Transporter
	max       int

	mu      sync.Mutex
	lru     *list.List // of *entry, most recently used first
	entries map[key]*list.Element
}

type key struct{ tenantID, appID string }

type entry struct {
	key  key
	cred azcore.TokenCredential
}

// New returns a Chain whose client assertions are tokens of assertion for the
// token-exchange audience. In Azure, assertion is the backend's ManagedIdentityCredential.
func New(assertion azcore.TokenCredential, opts Options) (*Chain, error) {
	if assertion == nil {
		return nil, errors.New("new identity chain: nil assertion credential")
	}
	authority, err := authorityHost(opts.AuthorityHost)
	if err != nil {
		return nil, fmt.Errorf("new identity chain: %w", err)
	}
	if opts.MaxCredentials < 0 {
		return nil, fmt.Errorf("new identity chain: MaxCredentials %d is negative", opts.MaxCredentials)
	}
	if opts.MaxCredentials == 0 {
		opts.MaxCredentials = DefaultMaxCredentials
	}
	if opts.TokenExchangeAudience == "" {
		opts.TokenExchangeAudience = DefaultTokenExchangeAudience
	}
	return &Chain{
		assertion: assertion,
		scope:     strings.TrimSuffix(opts.TokenExchangeAudience, "/") + "/.default",
		authority: authority,
		discovery: knownCloud(authority),
		transport: opts.Transport,
		max:       opts.MaxCredentials,
		lru:       list.New(),
		entries:   map[key]*list.Element{},
	}, nil
}

// For returns appID's credential in tenantID. The credential is cached, with its tokens,
// for later calls; fresh replaces the cached one with a new credential, so the next token
// comes from Entra and not from the cache (after a 403, a cached token could hide a role
// assignment that has arrived since). No network call happens here: the credential signs
// in on its first GetToken.
func (c *Chain) For(tenantID, appID string, fresh bool) (azcore.TokenCredential, error) {
	if tenantID == "" || appID == "" {
		return nil, fmt.Errorf("credential of app %q in tenant %q: tenant id and app id are required", appID, tenantID)
	}
	k := key{strings.ToLower(tenantID), strings.ToLower(appID)}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if ok && !fresh {
		c.lru.MoveToFront(el)
		return el.Value.(*entry).cred, nil
	}
	cred, err := c.newCredential(k.tenantID, k.appID)
	if err != nil {
		return nil, fmt.Errorf("credential of app %s in tenant %s: %w", appID, tenantID, err)
	}
	if ok {
		el.Value.(*entry).cred = cred
		c.lru.MoveToFront(el)
		return cred, nil
	}
	c.entries[k] = c.lru.PushFront(&entry{key: k, cred: cred})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
	return cred, nil
}

// newCredential builds the app's ClientAssertionCredential in the tenant.
func (c *Chain) newCredential(tenantID, appID string) (azcore.TokenCredential, error) {
	cred, err := azidentity.NewClientAssertionCredential(tenantID, appID, c.clientAssertion, &azidentity.ClientAssertionCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: c.authority},
			Transport: c.transport,
			Retry: policy.RetryOptions{
				MaxRetries:    maxRetries,
				RetryDelay:    retryDelay,
				MaxRetryDelay: maxRetryDelay,
				TryTimeout:    tryTimeout,
			},
		},
		// Instance discovery asks the public cloud's login host about the authority: only
		// Microsoft's own clouds can answer it.
		DisableInstanceDiscovery: !c.discovery,
	})
	if err != nil {
		return nil, err
	}
	return cred, nil
}

// clientAssertion is called by MSAL whenever it needs a new token for the app (its own
// cache answers otherwise). The managed identity credential caches its token too, so this
// is usually no network call. A failure that is an *azidentity.AuthenticationFailedError
// (how ManagedIdentityCredential reports a refusal, with the response) reaches the caller
// of GetToken as it is; azidentity keeps only the text of any other error.
func (c *Chain) clientAssertion(ctx context.Context) (string, error) {
	tok, err := c.assertion.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return "", fmt.Errorf("managed identity token for %s: %w", c.scope, err)
	}
	return tok.Token, nil
}

// authorityHost validates host and returns it with the trailing slash azidentity expects.
func authorityHost(host string) (string, error) {
	if host == "" {
		return cloud.AzurePublic.ActiveDirectoryAuthorityHost, nil
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("authority host %q is not an https URL (azidentity refuses anything else)", host)
	}
	return strings.TrimSuffix(u.String(), "/") + "/", nil
}

// knownCloud reports whether host is the authority host of one of Microsoft's clouds, the
// only authorities instance discovery can vouch for.
func knownCloud(host string) bool {
	for _, cfg := range []cloud.Configuration{cloud.AzurePublic, cloud.AzureGovernment, cloud.AzureChina} {
		if strings.EqualFold(strings.TrimSuffix(host, "/"), strings.TrimSuffix(cfg.ActiveDirectoryAuthorityHost, "/")) {
			return true
		}
	}
	return false
}
