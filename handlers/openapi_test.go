package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// openAPIFile is the document as it sits in the repository; openapi.go embeds it.
const openAPIFile = "openapi.json"

// openAPIMethods are the operation keys of an OpenAPI 3.0 path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDoc is the part of the document the tests check.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type         string `json:"type"`
			Scheme       string `json:"scheme"`
			BearerFormat string `json:"bearerFormat"`
		} `json:"securitySchemes"`
		Parameters map[string]openAPIParameter `json:"parameters"`
		Responses  map[string]openAPIResponse  `json:"responses"`
		Schemas    map[string]struct {
			Enum       []string                   `json:"enum"`
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type openAPIParameter struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type openAPIResponse struct {
	Ref     string                     `json:"$ref"`
	Headers map[string]json.RawMessage `json:"headers"`
}

type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []openAPIParameter         `json:"parameters"`
	Security    *[]map[string][]string     `json:"security"` // nil: inherits the document's
	Responses   map[string]openAPIResponse `json:"responses"`
}

// openAPIOp is one operation with the parameters of its path item merged in.
type openAPIOp struct {
	openAPIOperation
	pathParams []openAPIParameter
}

func loadOpenAPI(t *testing.T) (*openAPIDoc, map[string]openAPIOp) {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("read %s: %v", openAPIFile, err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	ops := map[string]openAPIOp{}
	for path, item := range doc.Paths {
		var shared []openAPIParameter
		if p, ok := item["parameters"]; ok {
			if err := json.Unmarshal(p, &shared); err != nil {
				t.Fatalf("%s: parameters: %v", path, err)
			}
		}
		for key, v := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(v, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			ops[opKey(key, path)] = openAPIOp{openAPIOperation: op, pathParams: shared}
		}
	}
	return &doc, ops
}

func opKey(method, path string) string { return strings.ToUpper(method) + " " + path }

// openAPIPath turns a net/http pattern path into an OpenAPI path: "{name...}" is "{name}"
// and the end anchor "{$}" disappears.
func openAPIPath(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	return strings.ReplaceAll(p, "...}", "}")
}

func apiRoutes() []Route {
	return New(nil, nil, nil, nil, slog.New(slog.DiscardHandler)).Routes()
}

// resolveParameter follows a "#/components/parameters/<name>" reference.
func (d *openAPIDoc) resolveParameter(t *testing.T, p openAPIParameter) openAPIParameter {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	target, found := d.Components.Parameters[name]
	if !ok || !found {
		t.Errorf("parameter reference %q does not resolve", p.Ref)
	}
	return target
}

// parameters lists an operation's parameters, the path item's first, references resolved.
// An operation's parameter replaces a path item's one with the same name and location.
func (d *openAPIDoc) parameters(t *testing.T, op openAPIOp) []openAPIParameter {
	t.Helper()
	var out []openAPIParameter
	for _, p := range op.pathParams {
		out = append(out, d.resolveParameter(t, p))
	}
	for _, p := range op.Parameters {
		p = d.resolveParameter(t, p)
		out = slices.DeleteFunc(out, func(q openAPIParameter) bool { return q.Name == p.Name && q.In == p.In })
		out = append(out, p)
	}
	return out
}

func (d *openAPIDoc) resolveResponse(t *testing.T, r openAPIResponse) openAPIResponse {
	t.Helper()
	if r.Ref == "" {
		return r
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
	target, found := d.Components.Responses[name]
	if !ok || !found {
		t.Errorf("response reference %q does not resolve", r.Ref)
	}
	return target
}

func TestOpenAPIVersion(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	s, ok := doc.Components.SecuritySchemes["bearerAuth"]
	if !ok || s.Type != "http" || s.Scheme != "bearer" || s.BearerFormat != "JWT" {
		t.Errorf("components.securitySchemes.bearerAuth = %+v (present %v), want http bearer JWT", s, ok)
	}
	if !slices.ContainsFunc(doc.Security, func(req map[string][]string) bool { _, ok := req["bearerAuth"]; return ok }) {
		t.Errorf("document security %v does not require bearerAuth", doc.Security)
	}
}

// TestOpenAPIMatchesRoutes fails for a registered route without documentation and for a
// documented operation that no route serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	_, ops := loadOpenAPI(t)
	registered := map[string]bool{}
	for _, rt := range apiRoutes() {
		if rt.Method == "" {
			t.Errorf("route %q has no method; the document needs one per operation", rt.Pattern)
			continue
		}
		key := opKey(rt.Method, openAPIPath(rt.Pattern))
		registered[key] = true
		if _, ok := ops[key]; !ok {
			t.Errorf("route %s %s is not in %s (want operation %q)", rt.Method, rt.Pattern, openAPIFile, key)
		}
	}
	for key := range ops {
		if !registered[key] {
			t.Errorf("%s documents %q, which no route of Routes() serves", openAPIFile, key)
		}
	}
}

var pathParamPattern = regexp.MustCompile(`\{([^}]+)\}`)

func TestOpenAPIOperations(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	operationIDs := map[string]string{}
	for _, rt := range apiRoutes() {
		key := opKey(rt.Method, openAPIPath(rt.Pattern))
		op, ok := ops[key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRoutes
		}
		t.Run(key, func(t *testing.T) {
			if op.OperationID == "" {
				t.Error("no operationId")
			} else if other, dup := operationIDs[op.OperationID]; dup {
				t.Errorf("operationId %q is also used by %s", op.OperationID, other)
			}
			operationIDs[op.OperationID] = key

			params := doc.parameters(t, op)
			var want, got []string
			for _, m := range pathParamPattern.FindAllStringSubmatch(openAPIPath(rt.Pattern), -1) {
				want = append(want, m[1])
			}
			for _, p := range params {
				if p.In != "path" {
					continue
				}
				got = append(got, p.Name)
				if !p.Required {
					t.Errorf("path parameter %q is not required", p.Name)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				t.Errorf("path parameters %v, want %v", got, want)
			}

			for code, r := range op.Responses {
				r = doc.resolveResponse(t, r)
				if _, ok := r.Headers["X-Request-Id"]; !ok {
					t.Errorf("response %s does not declare the X-Request-Id header", code)
				}
				if _, ok := r.Headers["Retry-After"]; (code == "503" || code == "429") && !ok {
					t.Errorf("response %s does not declare the Retry-After header", code)
				}
			}

			if rt.Public {
				if op.Security == nil || len(*op.Security) != 0 {
					t.Error("public route: want security: [] on the operation")
				}
				return
			}
			if op.Security != nil && !slices.ContainsFunc(*op.Security, func(req map[string][]string) bool { _, ok := req["bearerAuth"]; return ok }) {
				t.Errorf("security %v does not require bearerAuth", *op.Security)
			}
			if !slices.ContainsFunc(params, func(p openAPIParameter) bool {
				return p.In == "header" && http.CanonicalHeaderKey(p.Name) == http.CanonicalHeaderKey(OrgHeader) && p.Required
			}) {
				t.Errorf("no required %s header parameter", OrgHeader)
			}
			for _, code := range []string{"401", "403"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("no %s response", code)
				}
			}
		})
	}
}

// TestOpenAPIReferences resolves every local $ref of the document.
func TestOpenAPIReferences(t *testing.T) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := jsonPointer(root, ref); err != nil {
					t.Errorf("$ref %q: %v", ref, err)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(root)
}

// jsonPointer looks up a local reference ("#/a/b") in a decoded JSON document.
func jsonPointer(root any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, errors.New("not a local reference")
	}
	cur := root
	for _, tok := range strings.Split(p, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is not inside an object", tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("no member %q", tok)
		}
	}
	return cur, nil
}

// TestOpenAPIEnums keeps the documented enums equal to the constants of the code: the error
// codes of this package and the states of internal/credential.
func TestOpenAPIEnums(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	tests := []struct {
		schema string
		dir    string
		match  func(name string, typ ast.Expr) bool
	}{
		{"ErrorCode", ".", func(name string, _ ast.Expr) bool {
			return len(name) > 4 && strings.HasPrefix(name, "code") && name[4] >= 'A' && name[4] <= 'Z'
		}},
		{"State", filepath.Join("..", "internal", "credential"), func(_ string, typ ast.Expr) bool {
			id, ok := typ.(*ast.Ident)
			return ok && id.Name == "State"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			want := stringConstants(t, tt.dir, tt.match)
			got := slices.Clone(doc.Components.Schemas[tt.schema].Enum)
			slices.Sort(got)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("components.schemas.%s.enum = %v, want the constants %v", tt.schema, got, want)
			}
		})
	}
}

// stringConstants returns, sorted, the values of the string constants declared in the
// non-test Go files of dir whose name and declared type satisfy match.
func stringConstants(t *testing.T, dir string, match func(name string, typ ast.Expr) bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !match(name.Name, vs.Type) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, v)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed checks that the API serves the document byte for byte.
func TestOpenAPIServed(t *testing.T) {
	want, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	api := New(nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if mt, _, err := mime.ParseMediaType(rec.Header().Get("Content-Type")); err != nil || mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", rec.Header().Get("Content-Type"))
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id header")
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Error("served document is not valid JSON")
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("served document (%d bytes) differs from %s (%d bytes)", rec.Body.Len(), openAPIFile, len(want))
	}
}

// TestOpenAPISchemasMatchViews: the documented schemas of the answers and bodies list
// exactly the JSON fields the code writes and reads, and require every field the code
// always writes (a field tagged omitempty may be absent).
func TestOpenAPISchemasMatchViews(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	for schema, v := range map[string]any{
		"Event":                           eventView{},
		"EventList":                       eventsView{},
		"Actor":                           actorView{},
		"RegisterWorkloadIdentityRequest": registerWorkloadRequest{},
		"WorkloadIdentity":                workloadIdentityView{},
		"WorkloadIdentityList":            workloadIdentitiesView{},
		"WorkloadIdentityEvent":           workloadIdentityEventView{},
		"WorkloadIdentityEventList":       workloadIdentityEventsView{},
	} {
		t.Run(schema, func(t *testing.T) {
			s, ok := doc.Components.Schemas[schema]
			if !ok {
				t.Fatalf("components.schemas.%s is missing", schema)
			}
			var fields, always, documented []string
			typ := reflect.TypeOf(v)
			for i := range typ.NumField() {
				name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				fields = append(fields, name)
				if opts != "omitempty" {
					always = append(always, name)
				}
			}
			for name := range s.Properties {
				documented = append(documented, name)
			}
			required := slices.Clone(s.Required)
			for _, l := range [][]string{fields, always, documented, required} {
				slices.Sort(l)
			}
			if !slices.Equal(fields, documented) {
				t.Errorf("properties %v, the code's fields %v", documented, fields)
			}
			if !strings.HasSuffix(schema, "Request") && !slices.Equal(always, required) {
				t.Errorf("required %v, the fields the code always writes %v", required, always)
			}
		})
	}
}
