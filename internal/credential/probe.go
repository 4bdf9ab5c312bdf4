package credential

import (
	"context"
	"errors"
	"fmt"
)

// Errors of the service principal lookup. Adapters wrap them (with a *ProviderError that
// carries Entra's code) so the poll can tell "not yet" from "never".
var (
	// ErrSPNotFound: the app's service principal is not (yet) in the tenant. Entra's
	// AADSTS700016 at token time means the same thing: an app can always read its own
	// service principal once it can sign in to the tenant.
	ErrSPNotFound = errors.New("service principal not found")
	// ErrTenantNotFound: the tenant does not exist (AADSTS90002).
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrFederation: Entra refused our own federated credential (AADSTS700213,
	// AADSTS70025). That is the platform's fault, not the customer's.
	ErrFederation = errors.New("federated credential refused")
)

// ProviderError carries what Azure or Entra said: the provider's code (AADSTS700016,
// ContainerNotFound, ...), the HTTP status and the request id support needs.
type ProviderError struct {
	Kind      error // a sentinel of this package, or nil
	Code      string
	Status    int
	RequestID string
	Err       error
}

func (e *ProviderError) Error() string {
	msg := e.Code
	if msg == "" {
		msg = fmt.Sprintf("status %d", e.Status)
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the sentinel and the cause to errors.Is and errors.As.
func (e *ProviderError) Unwrap() []error { return []error{e.Kind, e.Err} }

// providerDetails digs the code and request id out of an error chain.
func providerDetails(err error) (code, requestID string) {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Code, pe.RequestID
	}
	return "", ""
}

// Finder looks for a credential's service principal in the customer's tenant, signed in
// as the app itself (managed identity -> federated assertion -> customer tenant).
type Finder interface {
	FindServicePrincipal(ctx context.Context, tenantID, appID string) (objectID string, err error)
}

// ProbeTarget is what the access probe checks, as the credential's service principal.
type ProbeTarget struct {
	TenantID  string
	AppID     string
	Account   string
	Container string
	Prefix    string
	// FreshToken asks for a new storage token instead of a cached one: after a 403 a
	// cached token could hide a role that has arrived since.
	FreshToken bool
}

// The checks of the access probe, in the order they run.
const (
	CheckUserDelegationKey = "user_delegation_key"
	CheckWrite             = "write"
	CheckListRead          = "list_read"
	CheckDelete            = "delete"
)

// Results of one check.
const (
	ResultPass = "pass"
	ResultFail = "fail"
	ResultSkip = "skip"
)

// CheckResult is one check as the prober saw it.
type CheckResult struct {
	Name      string
	Result    string
	Status    int    // HTTP status of the failure
	Code      string // the storage error code, e.g. AuthorizationPermissionMismatch
	RequestID string
}

// ProbeReport is everything one probe attempt found.
type ProbeReport struct {
	Checks []CheckResult
	// AccountNotFound: the account's blob endpoint did not resolve.
	AccountNotFound bool
}

// Prober runs the access probe: user delegation key, write a probe blob under the prefix,
// list and read it back, delete it.
type Prober interface {
	Probe(ctx context.Context, t ProbeTarget) ProbeReport
}
