package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
)

// entraIDs are the trace and correlation ids in a token failure's body, as Entra sent them.
func entraIDs(t *testing.T, err error) (traceID, correlationID string) {
	t.Helper()
	_, raw := entraResponse(t, err)
	var body struct {
		TraceID       string `json:"trace_id"`
		CorrelationID string `json:"correlation_id"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	return body.TraceID, body.CorrelationID
}

var kinds = []error{credential.ErrSPNotFound, credential.ErrTenantNotFound, credential.ErrFederation, credential.ErrUnavailable}

// checkKind asserts that err matches kind (nil: none of the domain's sentinels) and no
// other sentinel.
func checkKind(t *testing.T, err, kind error) {
	t.Helper()
	for _, k := range kinds {
		if got, want := errors.Is(err, k), k == kind; got != want {
			t.Errorf("errors.Is(err, %v) = %v, want %v", k, got, want)
		}
	}
}

// TestProviderError classifies real token failures of the chain against the stand-in.
func TestProviderError(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	installed := si.createApp("")
	si.install(installed)
	notInstalled := si.createApp("")
	removed := si.createApp("")
	si.install(removed)
	mismatch := si.createApp(uuid.NewString())
	si.install(mismatch)
	noFICs := si.createApp("-")
	si.install(noFICs)

	// removed signs in once, then the customer deletes its service principal.
	if _, err := getToken(t, mustFor(t, c, custTenant, removed, false), storageScope); err != nil {
		t.Fatal(err)
	}
	if err := si.s.RemoveServicePrincipal(custTenant, removed); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		tenantID string
		appID    string
		faults   []localazure.Fault
		kind     error
		code     string
		status   int
	}{
		{name: "unknown tenant", tenantID: uuid.NewString(), appID: installed,
			kind: credential.ErrTenantNotFound, code: "AADSTS90002", status: http.StatusBadRequest},
		{name: "service principal never installed", tenantID: custTenant, appID: notInstalled,
			kind: credential.ErrSPNotFound, code: "AADSTS700016", status: http.StatusBadRequest},
		{name: "service principal removed after sign-in", tenantID: custTenant, appID: removed,
			kind: credential.ErrSPNotFound, code: "AADSTS700016", status: http.StatusBadRequest},
		{name: "federated credential for another subject", tenantID: custTenant, appID: mismatch,
			kind: credential.ErrFederation, code: "AADSTS700213", status: http.StatusUnauthorized},
		{name: "no federated credential", tenantID: custTenant, appID: noFICs,
			kind: credential.ErrFederation, code: "AADSTS70025", status: http.StatusUnauthorized},
		{name: "federated credential propagating", tenantID: custTenant, appID: installed,
			faults: []localazure.Fault{{Operation: localazure.OpToken, Status: 400, Code: "AADSTS70021"}},
			kind:   credential.ErrUnavailable, code: "AADSTS70021", status: http.StatusBadRequest},
		{name: "Entra 503", tenantID: custTenant, appID: installed,
			faults: []localazure.Fault{{Operation: localazure.OpToken, Status: 503, Count: 2}},
			kind:   credential.ErrUnavailable, code: "AADSTS90033", status: http.StatusServiceUnavailable},
		{name: "Entra throttling", tenantID: custTenant, appID: installed,
			faults: []localazure.Fault{{Operation: localazure.OpToken, Status: 429, Count: 2}},
			kind:   credential.ErrUnavailable, code: "AADSTS90055", status: http.StatusTooManyRequests},
		{name: "a code that changes nothing", tenantID: custTenant, appID: installed,
			faults: []localazure.Fault{{Operation: localazure.OpToken, Status: 401, Code: "AADSTS700024"}},
			kind:   nil, code: "AADSTS700024", status: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.faults {
				si.fault(f)
			}
			_, tokenErr := getToken(t, mustFor(t, c, tt.tenantID, tt.appID, true), storageScope)
			if f := si.s.Faults(); len(f) != 0 {
				t.Errorf("faults left over: %+v", f)
				si.s.ClearFaults()
			}
			if tokenErr == nil {
				t.Fatal("GetToken succeeded")
			}
			traceID, correlationID := entraIDs(t, tokenErr)
			if traceID == "" || correlationID == "" {
				t.Fatalf("the stand-in sent trace id %q and correlation id %q", traceID, correlationID)
			}
			// As azcore's bearer token policy and callers hand it on.
			for _, err := range []error{tokenErr, fmt.Errorf("get user delegation key: %w", tokenErr)} {
				pe, ok := ProviderError(err)
				if !ok {
					t.Fatalf("ProviderError(%v) = false", err)
				}
				if pe.Kind != tt.kind || pe.Code != tt.code || pe.Status != tt.status || pe.RequestID != traceID {
					t.Errorf("ProviderError = {Kind: %v, Code: %q, Status: %d, RequestID: %q}, want {%v %q %d %q}",
						pe.Kind, pe.Code, pe.Status, pe.RequestID, tt.kind, tt.code, tt.status, traceID)
				}
				checkKind(t, pe, tt.kind)
				if !errors.Is(pe, err) {
					t.Error("the error given is not reachable through errors.Is")
				}
				var te *TokenError
				if !errors.As(pe, &te) {
					t.Fatal("no *TokenError behind the ProviderError")
				}
				if te.TraceID != traceID || te.CorrelationID != correlationID {
					t.Errorf("TokenError ids %q, %q; want %q, %q", te.TraceID, te.CorrelationID, traceID, correlationID)
				}
				if te.Description == "" || strings.Contains(te.Description, "AADSTS") || strings.Contains(te.Description, traceID) {
					t.Errorf("Description %q, want the text without the code and the ids", te.Description)
				}
				if !strings.HasPrefix(pe.Error(), tt.code+": ") {
					t.Errorf("Error() = %q, want the code first", pe.Error())
				}
			}
		})
	}
}

// TestProviderErrorManagedIdentity: the managed identity endpoint refusing the assertion is
// a token failure too, classified by its status; its request id is the response's.
func TestProviderErrorManagedIdentity(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	si.install(appID)
	si.fault(localazure.Fault{Operation: localazure.OpManagedIdentityToken, Status: 503})
	_, err := getToken(t, mustFor(t, c, custTenant, appID, false), storageScope)
	pe, ok := ProviderError(err)
	if !ok {
		t.Fatalf("ProviderError(%v) = false", err)
	}
	var af *azidentity.AuthenticationFailedError
	errors.As(err, &af)
	if pe.Kind != credential.ErrUnavailable || pe.Code != "" || pe.Status != http.StatusServiceUnavailable ||
		pe.RequestID == "" || pe.RequestID != af.RawResponse.Header.Get("x-ms-request-id") {
		t.Errorf("ProviderError = {Kind: %v, Code: %q, Status: %d, RequestID: %q}, want ErrUnavailable, no code, 503 and the x-ms-request-id",
			pe.Kind, pe.Code, pe.Status, pe.RequestID)
	}
}

// TestProviderErrorNoResponse: a token request that got no answer keeps only the text of
// its cause in azidentity; the caller's own error (the context's, say) decides.
func TestProviderErrorNoResponse(t *testing.T) {
	si := newStandIn(t)
	c := si.chain(0)
	appID := si.createApp("")
	si.install(appID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cred := mustFor(t, c, custTenant, appID, false)
	_, noAnswer := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{storageScope}})
	var af *azidentity.AuthenticationFailedError
	if !errors.As(noAnswer, &af) || af.RawResponse != nil {
		t.Fatalf("cancelled GetToken: %v, want an AuthenticationFailedError without a response", noAnswer)
	}

	tests := []struct {
		name string
		err  error
		kind error
	}{
		{"alone", noAnswer, nil},
		{"with a passed deadline", fmt.Errorf("%w: %w", context.DeadlineExceeded, noAnswer), credential.ErrUnavailable},
		{"with a network timeout", errors.Join(&net.DNSError{Err: "timeout", IsTimeout: true}, noAnswer), credential.ErrUnavailable},
		{"with a refused connection", errors.Join(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, noAnswer), credential.ErrUnavailable},
		{"with a cancelled context", fmt.Errorf("%w: %w", context.Canceled, noAnswer), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe, ok := ProviderError(tt.err)
			if !ok {
				t.Fatal("ProviderError = false")
			}
			if pe.Kind != tt.kind || pe.Code != "" || pe.Status != 0 || pe.RequestID != "" {
				t.Errorf("ProviderError = {Kind: %v, Code: %q, Status: %d, RequestID: %q}, want kind %v and nothing else",
					pe.Kind, pe.Code, pe.Status, pe.RequestID, tt.kind)
			}
			checkKind(t, pe, tt.kind)
		})
	}
}

// TestProviderErrorOthers: only token failures are classified; a body that is not Entra's
// leaves the status alone to decide.
func TestProviderErrorOthers(t *testing.T) {
	for _, err := range []error{nil, errors.New("boom"), context.DeadlineExceeded, &credential.ProviderError{Code: "X"}} {
		if pe, ok := ProviderError(err); ok || pe != nil {
			t.Errorf("ProviderError(%v) = %v, %v; want nil, false", err, pe, ok)
		}
	}
	for status, kind := range map[int]error{500: credential.ErrUnavailable, 502: credential.ErrUnavailable, 400: nil, 403: nil} {
		err := &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
			StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("<html>not json</html>")),
		}}
		pe, ok := ProviderError(err)
		if !ok || pe.Kind != kind || pe.Code != "" || pe.Status != status {
			t.Errorf("status %d with an HTML body: %+v, %v; want kind %v", status, pe, ok, kind)
		}
	}
}
