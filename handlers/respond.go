package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/credential"
)

// MaxBodyBytes bounds request bodies (the contract: 64 KiB, else 413).
const MaxBodyBytes = 64 << 10

// Error codes of the JSON error body.
const (
	codeInvalidRequest  = "invalid_request"
	codeValidation      = "validation_failed"
	codeUnauthenticated = "unauthenticated"
	codeForbidden       = "forbidden"
	codeNotFound        = "not_found"
	codeMethod          = "method_not_allowed"
	codeConflict        = "conflict"
	codeInvalidState    = "invalid_state"
	codeTooLarge        = "body_too_large"
	codeMediaType       = "unsupported_media_type"
	codeUnavailable     = "upstream_unavailable"
	codeLocked          = "workspace_locked"
	codeDeleted         = "credential_deleted"
	codeSASFailed       = "sas_issuance_failed"
	codeQuota           = "quota_exceeded"
	codeRateLimited     = "rate_limited"
	codeInternal        = "internal_error"
	codeWorkloadsOff    = "workload_identities_disabled"
)

// publicError is an error whose message is safe and meant for the caller.
type publicError struct {
	status     int
	code       string
	msg        string
	field      string
	candidates []candidateView
	header     http.Header
}

func (e *publicError) Error() string { return e.msg }

func fail(status int, code, format string, args ...any) *publicError {
	return &publicError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
	// Candidates are the credentials a workspace registration may name, when it must name
	// one (the wizard's picker).
	Candidates []candidateView `json:"candidates,omitempty"`
}

// candidateView is a credential the caller may choose.
type candidateView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// retryAfterSeconds is the advice given with 503 answers.
const retryAfterSeconds = "5"

// toPublic maps an error to what the caller sees. Only domain errors carry their message
// out; anything else becomes a generic message with the request id.
func toPublic(err error) *publicError {
	var pe *publicError
	if errors.As(err, &pe) {
		return pe
	}
	var ve *credential.ValidationError
	if errors.As(err, &ve) {
		return &publicError{status: http.StatusBadRequest, code: codeValidation, msg: ve.Message, field: ve.Field}
	}
	var te *credential.TransitionError
	if errors.As(err, &te) {
		return &publicError{status: http.StatusConflict, code: codeInvalidState, msg: te.Error()}
	}
	var nf *credential.NotFoundError
	if errors.As(err, &nf) {
		return &publicError{status: http.StatusNotFound, code: codeNotFound, msg: nf.Error()}
	}
	var le *credential.LockedError
	if errors.As(err, &le) {
		return &publicError{status: http.StatusBadRequest, code: codeLocked, msg: le.Error()}
	}
	var de *credential.CredentialDeletedError
	if errors.As(err, &de) {
		return &publicError{status: http.StatusConflict, code: codeDeleted, msg: de.Error()}
	}
	var se *credential.SASError
	if errors.As(err, &se) {
		pe := &publicError{status: http.StatusBadGateway, code: codeSASFailed, msg: se.Error()}
		if errors.Is(err, credential.ErrUnavailable) {
			pe.status, pe.header = http.StatusServiceUnavailable, http.Header{"Retry-After": {retryAfterSeconds}}
		}
		return pe
	}
	var fe *credential.ForbiddenError
	if errors.As(err, &fe) {
		return &publicError{status: http.StatusForbidden, code: codeForbidden, msg: fe.Message}
	}
	var qe *credential.QuotaError
	if errors.As(err, &qe) {
		return &publicError{status: http.StatusConflict, code: codeQuota, msg: qe.Error()}
	}
	var rl *credential.RateLimitError
	if errors.As(err, &rl) {
		return &publicError{status: http.StatusTooManyRequests, code: codeRateLimited, msg: rl.Error(),
			header: http.Header{"Retry-After": {strconv.Itoa(rl.RetrySeconds())}}}
	}
	var cand *credential.CandidatesError
	if errors.As(err, &cand) {
		pe := &publicError{status: http.StatusConflict, code: codeConflict, msg: cand.Error(), field: "credential_id",
			candidates: make([]candidateView, 0, len(cand.Candidates))}
		for _, c := range cand.Candidates {
			pe.candidates = append(pe.candidates, candidateView{ID: c.ID, Name: c.Name})
		}
		return pe
	}
	var ce *credential.ConflictError
	if errors.As(err, &ce) {
		return &publicError{status: http.StatusConflict, code: codeConflict, msg: ce.Message}
	}
	switch {
	case errors.Is(err, credential.ErrNotFound):
		return &publicError{status: http.StatusNotFound, code: codeNotFound, msg: "credential not found"}
	case errors.Is(err, credential.ErrConflict):
		return &publicError{status: http.StatusConflict, code: codeConflict, msg: "the request conflicts with the credential's current state; read it again and retry"}
	case errors.Is(err, credential.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &publicError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			msg:    "an Azure service did not answer in time; retry shortly",
			header: http.Header{"Retry-After": {retryAfterSeconds}}}
	}
	return &publicError{status: http.StatusInternalServerError, code: codeInternal,
		msg: "internal error; contact support with the request id"}
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestInfoKey
)

// requestInfo is what the layers under serve learn about a request that its log line
// needs: who the caller was, once authorized.
type requestInfo struct {
	actor  credential.Actor
	caller auth.Caller
}

// noteCaller records who a verified token speaks for, for the request's log line, before
// it is known whether the caller may act: a refusal names it too.
func noteCaller(ctx context.Context, caller auth.Caller) {
	if ri, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		ri.caller = caller
	}
}

// noteActor records the actor of an authorized request for its log line.
func noteActor(ctx context.Context, actor credential.Actor) {
	if ri, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		ri.actor = actor
	}
}

// attrs are the log attributes that name the caller: the actor once authorized, and a
// workload identity's tenant, client and object id (the object id is in no registration)
// whether or not it was admitted.
func (ri *requestInfo) attrs() []any {
	var out []any
	if !ri.actor.IsZero() {
		out = append(out, "actor", ri.actor)
	}
	if ri.caller.Kind == auth.CallerWorkload {
		out = append(out, "workload", ri.caller.Workload)
	}
	return out
}

// RequestID returns the id of the request being served ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// handlerFunc is an HTTP handler that returns its failure instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve adapts h: request id, panic recovery, error mapping and one access-log line, which
// names the caller once it is known. A workload identity's every answer is logged at info
// level, so that each is attributable (a platform user's successful ones at debug).
func serve(log *slog.Logger, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := uuid.NewString()
		rw.Header().Set("X-Request-Id", id)
		info := &requestInfo{}
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey, id), requestInfoKey, info)
		r = r.WithContext(ctx)
		w := &statusWriter{ResponseWriter: rw}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return h(w, r)
		}()
		if err != nil {
			pe := toPublic(err)
			level := slog.LevelInfo
			if pe.status >= 500 {
				level = slog.LevelError
			}
			log.Log(ctx, level, "request failed", append([]any{"request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", pe.status, "code", pe.code, "err", err}, info.attrs()...)...)
			if w.status == 0 {
				writeError(w, id, pe)
			}
		}
		level := slog.LevelDebug
		if info.caller.Kind == auth.CallerWorkload {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "request", append([]any{"request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", w.status, "duration_ms", time.Since(start).Milliseconds()}, info.attrs()...)...)
	})
}

func writeError(w http.ResponseWriter, requestID string, pe *publicError) {
	for k, vs := range pe.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, pe.status, errorBody{Error: errorDetail{Code: pe.code, Message: pe.msg, Field: pe.field, RequestID: requestID,
		Candidates: pe.candidates}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads a JSON object body into v: at most MaxBodyBytes, unknown fields refused,
// nothing after the object, and none of what checkStrict refuses. An empty body decodes
// as {} when allowEmpty is set, whatever its Content-Type says (many HTTP clients send a
// form or text type with an empty POST); a body that is there must be JSON.
func decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	notJSON := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		notJSON = err != nil || mt != "application/json"
	}
	errMediaType := fail(http.StatusUnsupportedMediaType, codeMediaType, "request bodies must be JSON (Content-Type: application/json)")
	if notJSON && !allowEmpty {
		return errMediaType
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, codeTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		}
		return fail(http.StatusBadRequest, codeInvalidRequest, "could not read the request body")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if allowEmpty {
			return nil
		}
		return fail(http.StatusBadRequest, codeInvalidRequest, "request body is empty; a JSON object is required")
	}
	if notJSON {
		return errMediaType
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: %s", describeJSONError(err))
	}
	// Only white space may follow. (dec.More is no test for that: it is false before a
	// stray '}' or ']', so {}} would pass.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: unexpected data after the JSON object")
	}
	return checkStrict(data, v)
}

// describeJSONError turns a decoding error into a message that names the field and never
// echoes the body.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be a %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends early"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "the body is not a valid JSON object"
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "struct", "map":
		return "JSON object"
	case "slice", "array":
		return "JSON array"
	case "bool":
		return "boolean"
	}
	return "number"
}
