package graph

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/activeloopai/azcreds/internal/credential"
)

func odataError(status int, code string) error {
	e := odataerrors.NewODataError()
	e.SetStatusCode(status)
	m := odataerrors.NewMainError()
	m.SetCode(&code)
	msg := "message for " + code
	m.SetMessage(&msg)
	in := odataerrors.NewInnerError()
	id := "req-" + code
	in.SetRequestId(&id)
	m.SetInnerError(in)
	e.SetErrorEscaped(m)
	return e
}

func entraFailure(status int, body string) error {
	return &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
	}}
}

func entraBodyFor(code string) string {
	return `{"error":"invalid_request","error_description":"` + code + `: Something. Trace ID: t-1 Correlation ID: c-1 Timestamp: 2025-03-01 12:00:00Z","error_codes":[` +
		strings.TrimPrefix(code, "AADSTS") + `],"trace_id":"t-1","correlation_id":"c-1"}`
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestWrap(t *testing.T) {
	sentinels := []error{credential.ErrUnavailable, ErrServicePrincipalNotFound, ErrTenantNotFound, ErrFederationMismatch, ErrAppNotFound}
	tests := []struct {
		name      string
		err       error
		on404     []error
		want      []error // the sentinels it must match; it must match no other
		status    int
		code      string
		requestID string
	}{
		{"graph 404", odataError(404, "Request_ResourceNotFound"), []error{ErrAppNotFound}, []error{ErrAppNotFound}, 404, "Request_ResourceNotFound", "req-Request_ResourceNotFound"},
		{"graph 404 without a meaning", odataError(404, "Request_ResourceNotFound"), nil, nil, 404, "Request_ResourceNotFound", "req-Request_ResourceNotFound"},
		{"graph 429", odataError(429, "TooManyRequests"), nil, []error{credential.ErrUnavailable}, 429, "TooManyRequests", "req-TooManyRequests"},
		{"graph 500", odataError(500, "Service_InternalServerError"), nil, []error{credential.ErrUnavailable}, 500, "Service_InternalServerError", "req-Service_InternalServerError"},
		{"graph 503", odataError(503, "ServiceUnavailable"), nil, []error{credential.ErrUnavailable}, 503, "ServiceUnavailable", "req-ServiceUnavailable"},
		{"graph 400", odataError(400, "Request_BadRequest"), []error{ErrAppNotFound}, nil, 400, "Request_BadRequest", "req-Request_BadRequest"},
		{"graph 403", odataError(403, "Authorization_RequestDenied"), nil, nil, 403, "Authorization_RequestDenied", "req-Authorization_RequestDenied"},
		{"bodiless 502", &abstractions.ApiError{ResponseStatusCode: 502}, nil, []error{credential.ErrUnavailable}, 502, "", ""},
		{"bodiless 404", &abstractions.ApiError{ResponseStatusCode: 404}, []error{ErrServicePrincipalNotFound}, []error{ErrServicePrincipalNotFound}, 404, "", ""},
		{"AADSTS700016", entraFailure(400, entraBodyFor("AADSTS700016")), nil, []error{ErrServicePrincipalNotFound}, 400, "AADSTS700016", "t-1"},
		{"AADSTS90002", entraFailure(400, entraBodyFor("AADSTS90002")), nil, []error{ErrTenantNotFound}, 400, "AADSTS90002", "t-1"},
		{"AADSTS70021", entraFailure(400, entraBodyFor("AADSTS70021")), nil, []error{credential.ErrUnavailable}, 400, "AADSTS70021", "t-1"},
		{"AADSTS700213", entraFailure(401, entraBodyFor("AADSTS700213")), nil, []error{ErrFederationMismatch}, 401, "AADSTS700213", "t-1"},
		{"AADSTS700211", entraFailure(401, entraBodyFor("AADSTS700211")), nil, []error{ErrFederationMismatch}, 401, "AADSTS700211", "t-1"},
		{"AADSTS70025", entraFailure(401, entraBodyFor("AADSTS70025")), nil, []error{ErrFederationMismatch}, 401, "AADSTS70025", "t-1"},
		{"AADSTS700024", entraFailure(401, entraBodyFor("AADSTS700024")), nil, nil, 401, "AADSTS700024", "t-1"},
		{"Entra 503 without body", entraFailure(503, ""), nil, []error{credential.ErrUnavailable}, 503, "", ""},
		{"Entra 429", entraFailure(429, entraBodyFor("AADSTS90055")), nil, []error{credential.ErrUnavailable}, 429, "AADSTS90055", "t-1"},
		{"deadline", context.DeadlineExceeded, nil, []error{credential.ErrUnavailable}, 0, "", ""},
		{"network timeout", &net.DNSError{Err: "timeout", IsTimeout: true}, nil, []error{credential.ErrUnavailable}, 0, "", ""},
		{"wrapped timeout", errors.Join(errors.New("get"), timeoutError{}), nil, []error{credential.ErrUnavailable}, 0, "", ""},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, nil, []error{credential.ErrUnavailable}, 0, "", ""},
		{"something else", errors.New("boom"), []error{ErrAppNotFound}, nil, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wrap("do it", tt.err, tt.on404...)
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("wrap = %v, want *Error", err)
			}
			if ge.Op != "do it" || ge.StatusCode != tt.status || ge.Code != tt.code || ge.RequestID != tt.requestID {
				t.Errorf("Error = {Op %q Status %d Code %q RequestID %q}, want {%d %q %q}", ge.Op, ge.StatusCode, ge.Code, ge.RequestID, tt.status, tt.code, tt.requestID)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the SDK error is not reachable through errors.Is")
			}
			for _, s := range sentinels {
				want := false
				for _, w := range tt.want {
					want = want || w == s
				}
				if got := errors.Is(err, s); got != want {
					t.Errorf("errors.Is(err, %q) = %v, want %v", s, got, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "do it: ") {
				t.Errorf("Error() = %q, want the op first", err.Error())
			}
		})
	}

	if wrap("op", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
	canceled := wrap("op", context.Canceled)
	if !errors.Is(canceled, context.Canceled) || errors.Is(canceled, credential.ErrUnavailable) {
		t.Errorf("canceled: %v", canceled)
	}
}

func TestErrorMessage(t *testing.T) {
	err := wrap("find service principal of app a1", entraFailure(400, entraBodyFor("AADSTS700016")), ErrServicePrincipalNotFound)
	want := "find service principal of app a1: HTTP 400 AADSTS700016: Something. (request t-1)"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	err = wrap("delete application x", odataError(503, "ServiceUnavailable"))
	want = "delete application x: HTTP 503 ServiceUnavailable: message for ServiceUnavailable (request req-ServiceUnavailable)"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestPredicates(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		notFound  bool
		transient bool
	}{
		{"odata 404", odataError(404, "Request_ResourceNotFound"), true, false},
		{"odata code without status", odataError(0, "Request_ResourceNotFound"), true, false},
		{"odata ResourceNotFound", odataError(0, "ResourceNotFound"), true, false},
		{"odata throttled code", odataError(0, "Request_ThrottledTemporarily"), false, true},
		{"odata 504", odataError(504, "GatewayTimeout"), false, true},
		{"odata 409", odataError(409, "Request_MultipleObjectsWithSameKeyValue"), false, false},
		{"api 404", &abstractions.ApiError{ResponseStatusCode: 404}, true, false},
		{"api 503", &abstractions.ApiError{ResponseStatusCode: 503}, false, true},
		{"entra 70021", entraFailure(400, entraBodyFor("AADSTS70021")), false, true},
		{"entra 700016", entraFailure(400, entraBodyFor("AADSTS700016")), false, false},
		{"entra 500", entraFailure(500, "not json"), false, true},
		{"plain", errors.New("x"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isNotFound(tt.err); got != tt.notFound {
				t.Errorf("isNotFound = %v, want %v", got, tt.notFound)
			}
			if got := isTransient(tt.err); got != tt.transient {
				t.Errorf("isTransient = %v, want %v", got, tt.transient)
			}
		})
	}
}
