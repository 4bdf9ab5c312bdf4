package credential

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors of the domain. Adapters wrap them with %w; the HTTP adapter maps them
// to status codes with errors.Is, never by message text.
var (
	// ErrNotFound: no such credential in this organization. Another org's credential is
	// reported the same way, so existence never leaks across organizations.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row changed under us (stale ETag) or a uniqueness rule was hit.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: an upstream (Entra ID, Microsoft Graph, Storage) failed in a way
	// that is worth retrying later. Mapped to 503 with Retry-After.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrQuotaExceeded: the organization holds as many credentials or workspaces as it may.
	// It is no conflict: retrying cannot help until something is deleted.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrRateLimited: the organization created credentials faster than allowed.
	ErrRateLimited = errors.New("rate limited")
	// ErrForbidden: the caller may not do this at all, whatever the state (a workload
	// identity registering another). Mapped to 403.
	ErrForbidden = errors.New("forbidden")
)

// ForbiddenError is a request the caller may not make, with a user-facing message; it
// matches ErrForbidden.
type ForbiddenError struct {
	Message string
}

func (e *ForbiddenError) Error() string        { return e.Message }
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// ValidationError is bad input in one field. Message is shown to the user as it is.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// ConflictError is a conflict with a user-facing message; it matches ErrConflict.
type ConflictError struct {
	Message string
}

func (e *ConflictError) Error() string        { return e.Message }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// TransitionError is a request that the credential's current state does not allow.
type TransitionError struct {
	Action  string
	State   State
	Allowed []State
	// Condition, when set, is what the allowed states need besides, e.g. "after the access
	// probe's deadline (...)", and Now what holds instead.
	Condition string
	Now       string
}

func (e *TransitionError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("cannot %s: credential is in state %q", e.Action, e.State)
	}
	names := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		names[i] = string(s)
	}
	msg := fmt.Sprintf("cannot %s: credential is in state %q", e.Action, e.State)
	if e.Now != "" {
		msg += " " + e.Now
	}
	msg += "; allowed only in state " + strings.Join(names, ", ")
	if e.Condition != "" {
		msg += " " + e.Condition
	}
	return msg
}

// Is makes every TransitionError match ErrConflict (HTTP 409).
func (e *TransitionError) Is(target error) bool { return target == ErrConflict }

// NotFoundError names what was not found; it matches ErrNotFound.
type NotFoundError struct {
	What string // "workspace", "credential"
	ID   string
}

func (e *NotFoundError) Error() string        { return fmt.Sprintf("%s %q not found", e.What, e.ID) }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Quota names what an organization's limit counts.
type Quota string

// The per-organization limits.
const (
	QuotaCredentials        Quota = "credentials"
	QuotaWorkspaces         Quota = "workspaces"
	QuotaWorkloadIdentities Quota = "workload identities"
)

// QuotaError is a create refused because the organization already holds Limit of Quota;
// it matches ErrQuotaExceeded. Existing items are never refused.
type QuotaError struct {
	Quota Quota
	Limit int
}

func (e *QuotaError) Error() string {
	switch e.Quota {
	case QuotaWorkloadIdentities:
		return fmt.Sprintf("the organization has reached its limit of %d workload identities; remove one it no longer needs "+
			"before registering another", e.Limit)
	case QuotaWorkspaces:
		return fmt.Sprintf("the organization has reached its limit of %d workspaces; its existing workspaces keep working, "+
			"but no new workspace can be registered", e.Limit)
	}
	return fmt.Sprintf("the organization has reached its limit of %d %s; delete one it no longer needs before creating another", e.Limit, e.Quota)
}

// Is makes a QuotaError match ErrQuotaExceeded.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// RateLimitError is a create refused because the organization used up its rate; it
// matches ErrRateLimited. RetryAfter is when the next one is allowed.
type RateLimitError struct {
	Rate       Rate
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many credentials created in this organization: at most %s; retry in %d s", e.Rate, e.RetrySeconds())
}

// RetrySeconds is RetryAfter in whole seconds, rounded up and at least 1 (HTTP's Retry-After).
func (e *RateLimitError) RetrySeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// Is makes a RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

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

// The services an adapter's failure names (ProviderError.Service, FailedService).
const (
	ServiceStorage = "Azure Storage"
	ServiceGraph   = "Microsoft Graph"
	ServiceEntra   = "Entra ID"
)

// ProviderError carries what Azure or Entra said: the provider's code (AADSTS700016,
// ContainerNotFound, ...), the HTTP status and the request id support needs.
type ProviderError struct {
	Kind      error // a sentinel of this package, or nil
	Service   string
	Code      string
	Status    int
	RequestID string
	Err       error
}

// FailedService names the service that failed and the request id it answered with.
func (e *ProviderError) FailedService() (service, requestID string) { return e.Service, e.RequestID }

// ServiceFailure is an adapter's error that knows which service failed (ServiceStorage,
// ServiceGraph, ServiceEntra) and with which request id, so a job that fails for good can
// say so on its credential (failureProblem).
type ServiceFailure interface {
	error
	FailedService() (service, requestID string)
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

// failureProblem is what a credential shows about a background job that failed on every
// delivery: the service that failed, in the words of the seed's unexpected-error message,
// with the request id to trace it (the service's, else the delivery's own).
func failureProblem(err error, deliveryRequestID string) Problem {
	p := Problem{Code: string(StatusUnexpectedError), RequestID: deliveryRequestID}
	service := ""
	var sf ServiceFailure
	if errors.As(err, &sf) {
		var rid string
		service, rid = sf.FailedService()
		if rid != "" {
			p.RequestID = rid
		}
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		p.ProviderError = pe.Code
	}
	what := "Background work"
	if service != "" {
		what = service + " operation"
	}
	p.Message = what + " failed with an unexpected error"
	if p.RequestID != "" {
		p.Message += " (request id " + p.RequestID + ")"
	}
	return p
}
