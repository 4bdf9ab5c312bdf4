package localazure

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Operation names a call that a fault can be injected into.
type Operation string

// Operations that accept faults.
const (
	OpCreateApplication         Operation = "create_application"          // POST /v1.0/applications
	OpDeleteApplication         Operation = "delete_application"          // DELETE /v1.0/applications/{id}
	OpCreateFederatedCredential Operation = "create_federated_credential" // POST .../federatedIdentityCredentials
	OpGetServicePrincipal       Operation = "get_service_principal"       // GET /v1.0/servicePrincipals(appId='...')
	OpToken                     Operation = "token"                       // POST /{tenant}/oauth2/v2.0/token
	OpManagedIdentityToken      Operation = "managed_identity_token"      // GET /msi/token
)

var operations = []Operation{OpCreateApplication, OpDeleteApplication, OpCreateFederatedCredential,
	OpGetServicePrincipal, OpToken, OpManagedIdentityToken}

// Fault makes the next Count calls of Operation fail with Status. Graph operations answer
// Graph's error JSON with Code (a default per status when empty) and, when RetryAfter is
// set, a Retry-After header in seconds (msgraph-sdk-go retries 429, 503 and 504 itself,
// honouring it). The token operation answers Entra's error JSON; Code may name an AADSTS
// code ("AADSTS70021") to replay a specific Entra failure.
type Fault struct {
	Operation  Operation `json:"operation"`
	Status     int       `json:"status"`
	Count      int       `json:"count"`
	Code       string    `json:"code,omitempty"`
	RetryAfter *int      `json:"retry_after,omitempty"`
}

// InjectFault queues f. Faults for one operation fire in the order they were injected.
func (s *Server) InjectFault(f Fault) error {
	if !slices.Contains(operations, f.Operation) {
		return badRequest("InvalidOperation", "unknown operation %q; one of %v", f.Operation, operations)
	}
	if f.Status < 400 || f.Status > 599 {
		return badRequest("InvalidStatus", "status %d is not an HTTP error status (400-599)", f.Status)
	}
	if f.Count == 0 {
		f.Count = 1
	}
	if f.Count < 0 {
		return badRequest("InvalidCount", "count must be positive")
	}
	if f.RetryAfter != nil && *f.RetryAfter < 0 {
		return badRequest("InvalidRetryAfter", "retry_after must not be negative")
	}
	if f.Operation == OpToken && f.Code != "" {
		if _, ok := aadstsNumber(f.Code); !ok {
			return badRequest("InvalidCode", "code %q for the token operation must be an AADSTS code such as AADSTS70021", f.Code)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[f.Operation] = append(s.faults[f.Operation], &f)
	return nil
}

// Faults lists the faults still pending, with their remaining counts.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Fault
	for _, op := range operations {
		for _, f := range s.faults[op] {
			out = append(out, *f)
		}
	}
	return out
}

// ClearFaults drops every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault consumes one firing of the first pending fault for op, if any; without one,
// random faults (SetChaos) may fail the call.
func (s *Server) takeFault(op Operation) *Fault {
	if f := s.takeCountedFault(op); f != nil {
		return f
	}
	return s.chaos.roll(op)
}

// takeCountedFault consumes one firing of the first pending fault for op, if any.
func (s *Server) takeCountedFault(op Operation) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[op]
	if len(q) == 0 {
		return nil
	}
	f := *q[0]
	q[0].Count--
	if q[0].Count == 0 {
		s.faults[op] = q[1:]
	}
	return &f
}

// graphCode is the OData error code of a Graph fault.
func (f *Fault) graphCode() string {
	if f.Code != "" {
		return f.Code
	}
	switch f.Status {
	case http.StatusBadRequest:
		return "Request_BadRequest"
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken"
	case http.StatusForbidden:
		return "Authorization_RequestDenied"
	case http.StatusNotFound:
		return "Request_ResourceNotFound"
	case http.StatusConflict:
		return "Request_MultipleObjectsWithSameKeyValue"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "GatewayTimeout"
	default:
		return "Service_InternalServerError"
	}
}

// knownEntraErrors replays the Entra failures the backend distinguishes.
var knownEntraErrors = map[int]entraError{
	90002:  errTenantNotFound("<injected>"),
	700016: errAppNotFound("<injected>", "<injected>"),
	700213: errNoMatchingFIC("<injected>"),
	70021: {http.StatusBadRequest, "invalid_request", 70021,
		"No matching federated identity record found for presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"},
	70025: {http.StatusUnauthorized, "invalid_client", 70025, "Client application has no configured federated identity credentials."},
	90033: errTransient(),
}

// entraError is the Entra answer of a token fault: the named AADSTS code if any, else a
// transient (AADSTS90033) or throttling (AADSTS90055) error; the fault's status wins.
func (f *Fault) entraError() entraError {
	var e entraError
	if n, ok := aadstsNumber(f.Code); ok {
		known, ok := knownEntraErrors[n]
		if !ok {
			known = entraError{oauth: "invalid_request", code: n, description: "Injected fault."}
		}
		e = known
	} else if f.Status == http.StatusTooManyRequests {
		e = entraError{oauth: "temporarily_unavailable", code: 90055,
			description: "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants."}
	} else {
		e = errTransient()
	}
	e.status = f.Status
	return e
}

func aadstsNumber(code string) (int, bool) {
	digits, ok := strings.CutPrefix(strings.ToUpper(code), "AADSTS")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n > 0
}

func (s *Server) handleInjectFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeControl(r, &f); err != nil {
		writeControlError(w, err)
		return
	}
	if err := s.InjectFault(f); err != nil {
		writeControlError(w, err)
		return
	}
	if f.Count == 0 {
		f.Count = 1
	}
	writeJSON(w, http.StatusCreated, f)
}

func (s *Server) handleListFaults(w http.ResponseWriter, r *http.Request) {
	faults := s.Faults()
	if faults == nil {
		faults = []Fault{}
	}
	writeJSON(w, http.StatusOK, faults)
}

func (s *Server) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// setRetryAfter sends a fault's Retry-After header, if it has one.
func setRetryAfter(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != nil {
		w.Header().Set("Retry-After", strconv.Itoa(*f.RetryAfter))
	}
}
