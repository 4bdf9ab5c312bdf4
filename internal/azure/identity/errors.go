package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/activeloopai/azcreds/internal/credential"
)

// AADSTS codes that change what the caller does. See
// https://learn.microsoft.com/entra/identity-platform/reference-error-codes.
const (
	aadstsTenantNotFound      = 90002  // the tenant does not exist
	aadstsAppNotFound         = 700016 // no such app, or its service principal is not in the tenant
	aadstsFICNotFound         = 70021  // no matching federated credential yet: a new one propagating
	aadstsNoFICs              = 70025  // the app has no federated credentials
	aadstsFICIssuerMismatch   = 700211 // no federated credential with the assertion's issuer
	aadstsFICAudienceMismatch = 700212 // ... with its audience
	aadstsFICSubjectMismatch  = 700213 // ... with its subject
	aadstsTransient           = 90033  // "a transient error has occurred"
)

// ProviderError classifies a failed token request of the chain (Entra refusing the app's
// token, or the managed identity endpoint refusing the assertion): err holds an
// *azidentity.AuthenticationFailedError, possibly wrapped (by azcore's bearer token policy,
// say). It reports false for any other error.
//
// The result carries Entra's code ("AADSTS700016", from error_codes of the response body),
// the HTTP status and Entra's trace id as RequestID (the x-ms-request-id header, then the
// correlation id, when the body has none). Err is a *TokenError over err with the rest of
// Entra's answer. Kind is
//
//   - credential.ErrSPNotFound: AADSTS700016, the app has no service principal in the
//     tenant (never installed, or removed since);
//   - credential.ErrTenantNotFound: AADSTS90002;
//   - credential.ErrFederation: Entra refused our federated credential (AADSTS700211,
//     700212, 700213, 70025), the platform's misconfiguration;
//   - credential.ErrUnavailable: worth trying again later (AADSTS70021 while a new federated
//     credential propagates, AADSTS90033, throttling, server errors, timeouts);
//   - nil: anything else, and a cancelled context.
//
// It reads types, the status and the code only, never the message text. azidentity keeps
// only the text of a failure that has no response (a broken connection, a timeout), so a
// timeout is recognised when the caller's err also holds it (the context's error, say).
func ProviderError(err error) (*credential.ProviderError, bool) {
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) {
		return nil, false
	}
	te := &TokenError{Err: err}
	pe := &credential.ProviderError{Err: te}
	var entraCode int
	if resp := af.RawResponse; resp != nil {
		pe.Status = resp.StatusCode
		if body, ok := entraBody(resp); ok {
			if len(body.ErrorCodes) > 0 {
				entraCode = body.ErrorCodes[0]
				pe.Code = fmt.Sprintf("AADSTS%d", entraCode)
			}
			// The description without the code it repeats and the trace trailer (the ids
			// are kept apart).
			desc, _, _ := strings.Cut(body.Description, " Trace ID:")
			te.Description = strings.TrimPrefix(desc, pe.Code+": ")
			te.TraceID, te.CorrelationID = body.TraceID, body.CorrelationID
		}
		pe.RequestID = firstNonEmpty(te.TraceID, resp.Header.Get("x-ms-request-id"), te.CorrelationID)
	}
	pe.Kind = kindOf(err, entraCode, pe.Status)
	return pe, true
}

// kindOf maps a token failure to the domain's sentinel, by its AADSTS code first (Entra
// answers 400 and 401 for most of them), then by its status and error types.
func kindOf(err error, code, status int) error {
	switch code {
	case aadstsAppNotFound:
		return credential.ErrSPNotFound
	case aadstsTenantNotFound:
		return credential.ErrTenantNotFound
	case aadstsNoFICs, aadstsFICIssuerMismatch, aadstsFICAudienceMismatch, aadstsFICSubjectMismatch:
		return credential.ErrFederation
	case aadstsFICNotFound, aadstsTransient:
		return credential.ErrUnavailable
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return credential.ErrUnavailable
	}
	if status == 0 && !errors.Is(err, context.Canceled) && unreachable(err) {
		return credential.ErrUnavailable
	}
	return nil
}

// unreachable reports whether err holds a passed deadline, a network timeout or a failed
// connection.
func unreachable(err error) bool {
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

// TokenError is the rest of Entra's answer to a refused token request, besides what
// credential.ProviderError holds: the description for people, and both ids Microsoft
// support asks for. Its Error is that of Err, the error ProviderError was given.
type TokenError struct {
	// Description is error_description without the leading code and the trailing trace
	// and correlation ids; for display only, never to decide on.
	Description   string
	TraceID       string
	CorrelationID string
	Err           error
}

func (e *TokenError) Error() string { return e.Err.Error() }

// Unwrap exposes the azidentity error and whatever the caller wrapped around it.
func (e *TokenError) Unwrap() error { return e.Err }

// entraErrorBody is the error answer of Entra's token endpoint.
type entraErrorBody struct {
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// entraBody decodes resp's body, which stays readable for others.
func entraBody(resp *http.Response) (entraErrorBody, bool) {
	var body entraErrorBody
	raw, err := runtime.Payload(resp) // buffered: readable again by the caller
	if err != nil || json.Unmarshal(raw, &body) != nil {
		return entraErrorBody{}, false
	}
	return body, true
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
