package localazure

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is a refused control operation: the HTTP status and ARM-style code its control
// endpoint answers with. The Go methods behind the control endpoints return it too.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: code, Message: fmt.Sprintf(format, args...)}
}

func conflict(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// writeControlError answers a control request with {"error":{"code","message"}}, the shape
// ARM and az use.
func writeControlError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

const maxControlBody = 64 << 10

// decodeControl reads a control request's JSON body strictly: unknown fields are a typo in
// a script, better refused than ignored.
func decodeControl(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("InvalidRequestContent", "invalid JSON body: %v", err)
	}
	return nil
}

// entraError is an error of the Entra token endpoint: the OAuth error class, the AADSTS
// number and the description that follows "AADSTS<n>: ". The codes and wording follow
// https://learn.microsoft.com/entra/identity-platform/reference-error-codes; invalid_client
// answers 401 and everything else 400, as Entra does.
type entraError struct {
	status      int
	oauth       string
	code        int
	description string
}

func (e entraError) String() string { return fmt.Sprintf("AADSTS%d", e.code) }

// writeEntraError answers in Entra's shape: error, error_description starting with the
// AADSTS code and ending with the trace and correlation ids, error_codes, timestamp,
// trace_id, correlation_id and error_uri.
func (s *Server) writeEntraError(w http.ResponseWriter, r *http.Request, e entraError) {
	traceID := requestID(r)
	correlationID := r.Header.Get("client-request-id")
	if correlationID == "" {
		correlationID = traceID
	}
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	s.log.Info("token refused", "request_id", traceID, "path", r.URL.Path, "code", e.String(), "status", e.status)
	writeJSON(w, e.status, map[string]any{
		"error": e.oauth,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			e.code, e.description, traceID, correlationID, ts),
		"error_codes":    []int{e.code},
		"timestamp":      ts,
		"trace_id":       traceID,
		"correlation_id": correlationID,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", e.code),
	})
}

// writeGraphError answers in Microsoft Graph's shape:
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
func (s *Server) writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	id := requestID(r)
	clientID := r.Header.Get("client-request-id")
	if clientID == "" {
		clientID = id
	}
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": message,
			"innerError": map[string]string{
				"date":              s.now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        id,
				"client-request-id": clientID,
			},
		},
	})
}

const maxGraphBody = 1 << 20

// decodeGraph reads a Graph request body, gzip-compressed or not: msgraph-sdk-go compresses
// request bodies. Unknown fields are ignored, as Graph ignores what it does not know.
func decodeGraph(r *http.Request, v any) error {
	var body io.Reader = io.LimitReader(r.Body, maxGraphBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("read gzip body: %w", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxGraphBody)
	default:
		return fmt.Errorf("unsupported content encoding %q", enc)
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
