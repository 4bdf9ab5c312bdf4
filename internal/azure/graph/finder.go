package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/activeloopai/azcreds/internal/credential"
)

// CredentialSource hands out an app's credential in a customer tenant (the federated token
// chain, identity.Chain in the binary). fresh asks for a new credential instead of the
// cached one, so that no cached token is used.
type CredentialSource interface {
	For(tenantID, appID string, fresh bool) (azcore.TokenCredential, error)
}

// Finder looks for a credential's service principal in the customer's tenant, signed in as
// the app itself, and reports the outcome in the domain's terms (credential.Finder).
type Finder struct {
	client *Client
	creds  CredentialSource
}

var _ credential.Finder = (*Finder)(nil)

// NewFinder returns a Finder that calls Graph through client with the app credentials of
// creds.
func NewFinder(client *Client, creds CredentialSource) *Finder {
	return &Finder{client: client, creds: creds}
}

// FindServicePrincipal returns the object id of appID's service principal in tenantID.
// Failures are *credential.ProviderError carrying Entra's or Graph's code, the status and
// the request id, with Kind:
//
//   - credential.ErrSPNotFound: Graph's 404, or AADSTS700016 at token time (the app cannot
//     sign in to a tenant that has no service principal of it);
//   - credential.ErrTenantNotFound: AADSTS90002;
//   - credential.ErrFederation: Entra refused our federated credential (AADSTS700211,
//     700212, 700213, 70025): the platform's misconfiguration;
//   - credential.ErrUnavailable: worth trying again later (AADSTS70021 while a new federated
//     credential propagates, throttling, server errors, timeouts);
//   - nil: anything else.
//
// A context that ended is reported as such (a passed deadline also matches
// credential.ErrUnavailable), whatever the SDKs made of it.
//
// When Graph itself refuses or misses (401, 403, 404) with a token Entra issued, the cached
// credential is replaced, so the next poll signs in afresh instead of reusing a token that
// predates the customer's change.
func (f *Finder) FindServicePrincipal(ctx context.Context, tenantID, appID string) (string, error) {
	cred, err := f.creds.For(tenantID, appID, false)
	if err != nil {
		return "", fmt.Errorf("find service principal of app %s in tenant %s: %w", appID, tenantID, err)
	}
	id, err := f.client.FindServicePrincipal(ctx, cred, appID)
	if err == nil {
		return id, nil
	}
	// azidentity keeps only the text of an MSAL failure, so the context is asked directly:
	// a deadline is worth another try, a cancellation is the caller's own doing.
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return "", fmt.Errorf("find service principal of app %s in tenant %s: %w: %w: %w", appID, tenantID, credential.ErrUnavailable, ctxErr, err)
	case ctxErr != nil:
		return "", fmt.Errorf("find service principal of app %s in tenant %s: %w: %w", appID, tenantID, ctxErr, err)
	}
	if graphRefused(err) {
		// Only drops the cached credential: the new one signs in on its first use.
		_, _ = f.creds.For(tenantID, appID, true)
	}
	return "", spError(err)
}

// spError translates a failed lookup into the domain's terms.
func spError(err error) error {
	var ge *Error
	if !errors.As(err, &ge) {
		// Not a classified call failure: a cancelled context, or a client that could not
		// be built. Left as it is (credential.ErrUnavailable matches where wrap said so).
		return err
	}
	pe := &credential.ProviderError{Code: ge.Code, Status: ge.StatusCode, RequestID: ge.RequestID, Err: err}
	switch {
	case errors.Is(err, ErrTenantNotFound):
		pe.Kind = credential.ErrTenantNotFound
	case errors.Is(err, ErrFederationMismatch):
		pe.Kind = credential.ErrFederation
	case errors.Is(err, ErrServicePrincipalNotFound):
		pe.Kind = credential.ErrSPNotFound
	case errors.Is(err, credential.ErrUnavailable):
		pe.Kind = credential.ErrUnavailable
	}
	return pe
}

// graphRefused reports whether Graph (not Entra at token time) answered 401, 403 or 404:
// the token was good enough for Entra to issue but may describe a service principal the
// customer has since removed or replaced.
func graphRefused(err error) bool {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		return false
	}
	var ge *Error
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}
