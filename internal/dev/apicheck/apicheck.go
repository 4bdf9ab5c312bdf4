// Package apicheck holds the credential API's answers to its OpenAPI description
// (handlers/openapi.json) with a real OpenAPI validator (kin-openapi): the handler tests'
// HTTP client and the end-to-end tests' API client send every request through a
// Validator's transport, which checks each answer (status, described headers, body
// against its schema, no field the schema leaves out) and, for an answer the API accepted
// (2xx), the request too. An answer that fails fails the call and is recorded, so the
// test package fails even when a caller tolerates errors. Paths outside the API (the
// Functions host's invocations, the static wizard page under /wizard/) are not checked.
//
// It is a test and development tool, never linked into the handler binary (a test holds
// that line).
package apicheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TallyDirEnv names a directory where Report leaves each test package's count of
// validated answers, so that `make test` can print the total.
const TallyDirEnv = "AZCREDS_APICHECK_TALLY"

// guid is the "uuid" format as the API uses it: the 8-4-4-4-12 hexadecimal shape of the
// GUIDs Azure and the API hand out, without RFC 4122's version and variant rules (Azure's
// tenant and subscription ids need not follow them).
var guid = openapi3.NewRegexpFormatValidator(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validator checks API answers against one OpenAPI document. It is safe for concurrent
// use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	ignore func(*http.Request) bool

	checked atomic.Int64
	mu      sync.Mutex
	failed  []string
}

// New loads and validates document (OpenAPI 3.0 JSON). ignore, when not nil, names more
// requests that are not API calls (the static wizard page is never one).
func New(document []byte, ignore func(*http.Request) bool) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	if len(doc.Servers) == 0 {
		return nil, errors.New("the OpenAPI document names no server; the router matches none")
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // an undescribed status fails
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc, // the API checks tokens; the shape is checked here
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid", guid),
		},
	}
	return &Validator{doc: doc, router: router, opts: opts, ignore: ignore}, nil
}

// Load is New with the document at path.
func Load(path string, ignore func(*http.Request) bool) (*Validator, error) {
	document, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return New(document, ignore)
}

// Static reports whether r asks for a page served beside the API (the wizard), which the
// API's description leaves out.
func Static(r *http.Request) bool {
	return r.URL.Path == "/wizard" || strings.HasPrefix(r.URL.Path, "/wizard/")
}

// Client returns a copy of c (http.DefaultClient's settings when nil) whose requests go
// through the Validator.
func (v *Validator) Client(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.Transport = v.Transport(out.Transport)
	return &out
}

// Transport wraps next (http.DefaultTransport when nil): every answer it carries is
// checked, and one that does not match the description becomes the call's error.
func (v *Validator) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{v: v, next: next}
}

type roundTripper struct {
	v    *Validator
	next http.RoundTripper
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		data, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = data
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := t.v.Check(req, reqBody, resp.StatusCode, resp.Header, respBody); err != nil {
		return nil, err
	}
	return resp, nil
}

// Check checks one exchange: the answer (status, header, body) to req, whose body was
// reqBody. A request that is not an API call is not checked. A failure is recorded as
// well as returned.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	if Static(req) || v.ignore != nil && v.ignore(req) {
		return nil
	}
	v.checked.Add(1)
	err := v.check(req, reqBody, status, header, body)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("apicheck: %s %s answered %d, which handlers/openapi.json does not describe: %w\nbody: %.600s",
		req.Method, req.URL.Path, status, err, body)
	v.mu.Lock()
	v.failed = append(v.failed, err.Error())
	v.mu.Unlock()
	return err
}

func (v *Validator) check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	ctx := context.Background()
	probe := req.Clone(ctx)
	probe.Body, probe.GetBody = http.NoBody, nil
	if len(reqBody) > 0 {
		probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	route, params, err := v.router.FindRoute(probe)
	if err != nil {
		return v.checkUnrouted(status, header, body, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: v.opts}
	if status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the API accepted a request the description refuses: %w", err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: v.opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	// kin-openapi checks a body only where the description has content; an answer with a
	// body where it has none (a 204 with a body, say) is undescribed too.
	if r := route.Operation.Responses.Status(status); r != nil && r.Value != nil && len(r.Value.Content) == 0 && len(bytes.TrimSpace(body)) > 0 {
		return fmt.Errorf("the description has no body for status %d, the answer has %d bytes", status, len(body))
	}
	return nil
}

// checkUnrouted holds an answer to a path or method the description does not have: the
// API's own 4xx, as the error shape every route answers with (components.schemas.Error),
// with X-Request-Id.
func (v *Validator) checkUnrouted(status int, header http.Header, body []byte, routeErr error) error {
	if status < 400 || status > 499 {
		return fmt.Errorf("no operation in the description (%v), and the answer is no 4xx", routeErr)
	}
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed && header.Get("Allow") == "" {
		return errors.New("a 405 without an Allow header")
	}
	if header.Get("X-Request-Id") == "" {
		return errors.New("no X-Request-Id header")
	}
	schema := v.doc.Components.Schemas["Error"]
	if schema == nil || schema.Value == nil {
		return errors.New("the description has no components.schemas.Error")
	}
	value, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(body), header, schema, nil)
	if err != nil {
		return fmt.Errorf("the error body is not JSON: %w", err)
	}
	if err := schema.Value.VisitJSON(value, append(slices.Clone(v.opts.SchemaValidationOptions), openapi3.VisitAsResponse(), openapi3.MultiErrors())...); err != nil {
		return fmt.Errorf("the error body does not match components.schemas.Error: %w", err)
	}
	return nil
}

// Checked is how many answers the Validator has checked.
func (v *Validator) Checked() int64 { return v.checked.Load() }

// Failures lists the answers that did not match, in the order they came.
func (v *Validator) Failures() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.failed)
}

// Report is for a test package's TestMain, after its tests ran: it prints how many answers
// were checked, leaves the count in the directory TallyDirEnv names (when set), and
// returns an error listing every answer that did not match.
func (v *Validator) Report(pkg string) error {
	n := v.Checked()
	fmt.Printf("apicheck: %d API answers of %s checked against handlers/openapi.json\n", n, pkg)
	if dir := os.Getenv(TallyDirEnv); dir != "" {
		name := strings.NewReplacer("/", "_", ".", "_").Replace(pkg) + fmt.Sprintf(".%d", os.Getpid())
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("%s %d\n", pkg, n)), 0o644); err != nil {
			return fmt.Errorf("apicheck: leave the tally: %w", err)
		}
	}
	if f := v.Failures(); len(f) > 0 {
		return fmt.Errorf("apicheck: %d answers do not match handlers/openapi.json:\n%s", len(f), strings.Join(f, "\n"))
	}
	return nil
}
