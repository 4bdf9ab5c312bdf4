package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/credential"
)

// Sentinel errors of this package. A failed Graph or Entra call comes back as an *Error
// that matches at most one of these, and credential.ErrUnavailable where it says so.
var (
	// ErrServicePrincipalNotFound: the app has no service principal in the tenant (yet).
	// Graph's 404 and Entra's AADSTS700016 at token time both mean this: an app can
	// always read its own service principal once it can sign in to the tenant.
	ErrServicePrincipalNotFound = errors.New("service principal not found")
	// ErrTenantNotFound: Entra does not know the tenant (AADSTS90002).
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrFederationMismatch: Entra found no federated identity credential on the app
	// matching our assertion (AADSTS700211, 700212, 700213, 70025). This is the platform's
	// misconfiguration, never the customer's.
	ErrFederationMismatch = errors.New("no federated identity credential matches the assertion")
	// ErrAppNotFound: the app registration does not exist (Graph 404).
	ErrAppNotFound = errors.New("application not found")
)

// OData error codes of Graph that the predicates read, besides the HTTP status.
const (
	graphCodeResourceNotFound   = "Request_ResourceNotFound"
	graphCodeNotFoundShort      = "ResourceNotFound"
	graphCodeThrottled          = "TooManyRequests"
	graphCodeRequestThrottled   = "Request_ThrottledTemporarily"
	graphCodeServiceUnavailable = "ServiceUnavailable"
)

// Error is a failed Graph or Entra call, classified. Code is the provider's own code
// (an OData code such as "Request_ResourceNotFound", or "AADSTS700016" when Entra refused
// the token), for the credential's last_error_provider_error; RequestID is the request-id
// (Graph) or trace id (Entra) to quote to Microsoft support.
type Error struct {
	Op         string
	StatusCode int
	Code       string
	RequestID  string
	Message    string

	kinds []error // the sentinels it matches
	err   error   // the SDK's error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
		if e.RequestID != "" {
			b.WriteString(" (request " + e.RequestID + ")")
		}
	case e.err != nil:
		b.WriteString(e.err.Error())
	default:
		b.WriteString("failed")
	}
	return b.String()
}

// Unwrap exposes the matched sentinels and the SDK's error to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	return append(append([]error(nil), e.kinds...), e.err)
}

// wrap classifies err from op by type and code, never by message text: a throttling,
// server or network failure matches credential.ErrUnavailable; Entra's AADSTS codes match
// the sentinels above. Callers add what a 404 means for their operation.
func wrap(op string, err error, on404 ...error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &Error{Op: op, err: err}
	switch {
	case asOData(err) != nil:
		o := asOData(err)
		e.StatusCode = o.GetStatusCode()
		if m := o.GetErrorEscaped(); m != nil {
			e.Code = deref(m.GetCode())
			e.Message = deref(m.GetMessage())
			if in := m.GetInnerError(); in != nil {
				e.RequestID = deref(in.GetRequestId())
			}
		}
		if e.RequestID == "" {
			e.RequestID = header(o.GetResponseHeaders(), "request-id")
		}
	case asAPIError(err) != nil:
		a := asAPIError(err)
		e.StatusCode = a.GetStatusCode()
		e.RequestID = header(a.GetResponseHeaders(), "request-id")
	default:
		// Entra refused the token (identity reads its answer).
		if pe, ok := identity.ProviderError(err); ok {
			e.StatusCode, e.Code, e.RequestID = pe.Status, pe.Code, pe.RequestID
			var te *identity.TokenError
			if errors.As(pe, &te) {
				e.Message = te.Description
			}
		}
	}
	e.kinds = kindsOf(err, e.StatusCode)
	if e.StatusCode == http.StatusNotFound || isNotFound(err) {
		e.kinds = append(e.kinds, on404...)
	}
	return e
}

// kindsOf maps a failure to the sentinels it matches: a refused token as
// identity.ProviderError classifies it, anything else by Graph's status and code.
func kindsOf(err error, status int) []error {
	if pe, ok := identity.ProviderError(err); ok {
		switch pe.Kind {
		case credential.ErrSPNotFound:
			return []error{ErrServicePrincipalNotFound}
		case credential.ErrTenantNotFound:
			return []error{ErrTenantNotFound}
		case credential.ErrFederation:
			return []error{ErrFederationMismatch}
		case credential.ErrUnavailable:
			return []error{credential.ErrUnavailable}
		}
		return nil
	}
	if isTransient(err) || status == http.StatusTooManyRequests || status >= 500 {
		return []error{credential.ErrUnavailable}
	}
	return nil
}

// isNotFound reports whether Graph answered 404 or named a missing resource.
func isNotFound(err error) bool {
	if o := asOData(err); o != nil {
		if o.GetStatusCode() == http.StatusNotFound {
			return true
		}
		if m := o.GetErrorEscaped(); m != nil {
			c := deref(m.GetCode())
			return c == graphCodeResourceNotFound || c == graphCodeNotFoundShort
		}
		return false
	}
	if a := asAPIError(err); a != nil {
		return a.GetStatusCode() == http.StatusNotFound
	}
	return false
}

// isTransient reports whether err is worth retrying later: throttling, a server error or
// a timeout or broken connection on the way to Graph or Entra.
func isTransient(err error) bool {
	if o := asOData(err); o != nil {
		if s := o.GetStatusCode(); s == http.StatusTooManyRequests || s >= 500 {
			return true
		}
		if m := o.GetErrorEscaped(); m != nil {
			switch deref(m.GetCode()) {
			case graphCodeThrottled, graphCodeRequestThrottled, graphCodeServiceUnavailable:
				return true
			}
		}
		return false
	}
	if a := asAPIError(err); a != nil {
		s := a.GetStatusCode()
		return s == http.StatusTooManyRequests || s >= 500
	}
	if pe, ok := identity.ProviderError(err); ok {
		return pe.Kind == credential.ErrUnavailable
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

func asOData(err error) *odataerrors.ODataError {
	var o *odataerrors.ODataError
	if errors.As(err, &o) {
		return o
	}
	return nil
}

func asAPIError(err error) abstractions.ApiErrorable {
	var a abstractions.ApiErrorable
	if errors.As(err, &a) {
		return a
	}
	return nil
}

func header(h *abstractions.ResponseHeaders, name string) string {
	if h == nil {
		return ""
	}
	if v := h.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
