package localazure

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/clocktest"
)

const (
	homeTenant   = "11111111-1111-1111-1111-111111111111"
	custTenant   = "22222222-2222-2222-2222-222222222222"
	otherTenant  = "33333333-3333-3333-3333-333333333333"
	miClientID   = "44444444-4444-4444-4444-444444444444"
	miObjectID   = "55555555-5555-5555-5555-555555555555"
	subscription = "66666666-6666-6666-6666-666666666666"
)

type fixture struct {
	t     *testing.T
	s     *Server
	srv   *httptest.Server
	clock *clocktest.Clock
}

// newFixture serves a stand-in with a home tenant, one customer tenant and a clock at a
// fixed instant over TLS. configure may adjust the Config.
func newFixture(t *testing.T, configure func(*Config)) *fixture {
	t.Helper()
	c := clocktest.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg := Config{
		HomeTenantID:     homeTenant,
		ManagedIdentity:  ManagedIdentity{ClientID: miClientID, ObjectID: miObjectID},
		Tenants:          []string{custTenant},
		PropagationDelay: 30 * time.Second,
		Now:              c.Now,
		SigningKey:       testKey(t),
	}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewTLSServer(s.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, s: s, srv: srv, clock: c}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("body %q is not a JSON array: %v", r.body, err)
	}
	return l
}

// do sends a request; body is JSON-encoded unless it is already a []byte or url.Values.
func (f *fixture) do(method, path string, body any, header map[string]string) response {
	f.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case url.Values:
		rd = strings.NewReader(b.Encode())
		contentType = "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (f *fixture) mustStatus(r response, want int) response {
	f.t.Helper()
	if r.status != want {
		f.t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

// miToken gets a managed identity token for resource from the MI endpoint.
func (f *fixture) miToken(resource string) string {
	f.t.Helper()
	r := f.mustStatus(f.do(http.MethodGet, "/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(resource), nil,
		map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader}), http.StatusOK)
	return r.json(f.t)["access_token"].(string)
}

func bearerHeader(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// graphAsMI calls Graph as the managed identity.
func (f *fixture) graphAsMI(method, path string, body any) response {
	f.t.Helper()
	return f.do(method, path, body, bearerHeader(f.miToken(GraphAudience)))
}

type testApp struct {
	objectID, appID string
}

// createApp registers a multi-tenant app with a FIC trusting the managed identity.
func (f *fixture) createApp(name string) testApp {
	f.t.Helper()
	r := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications",
		map[string]any{"displayName": name, "signInAudience": "AzureADMultipleOrgs"}), http.StatusCreated)
	m := r.json(f.t)
	app := testApp{objectID: m["id"].(string), appID: m["appId"].(string)}
	f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications/"+app.objectID+"/federatedIdentityCredentials",
		map[string]any{"name": "backend", "issuer": V2Issuer(homeTenant), "subject": miObjectID,
			"audiences": []string{TokenExchangeAudience}}), http.StatusCreated)
	return app
}

// installSP installs app's service principal in tenant through the control endpoint.
func (f *fixture) installSP(tenantID, appID string) string {
	f.t.Helper()
	r := f.do(http.MethodPost, "/control/tenants/"+tenantID+"/servicePrincipals", map[string]string{"appId": appID}, nil)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		f.t.Fatalf("install SP: %d %s", r.status, r.body)
	}
	return r.json(f.t)["id"].(string)
}

// tokenForm is a client-credentials request with a federated assertion.
func tokenForm(appID, assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {appID},
		"client_assertion_type": {jwtBearerAssertionType},
		"client_assertion":      {assertion},
		"scope":                 {scope + " openid offline_access profile"},
	}
}

func gzipped(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entraCode returns the first of error_codes and checks the rest of Entra's error shape.
func entraCode(t *testing.T, r response) int {
	t.Helper()
	m := r.json(t)
	for _, k := range []string{"error", "error_description", "timestamp", "trace_id", "correlation_id"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("Entra error lacks %q: %s", k, r.body)
		}
	}
	codes, _ := m["error_codes"].([]any)
	if len(codes) != 1 {
		t.Fatalf("error_codes = %v, want one code", m["error_codes"])
	}
	code := int(codes[0].(float64))
	if desc := m["error_description"].(string); !strings.HasPrefix(desc, "AADSTS"+itoa(code)+": ") {
		t.Errorf("error_description %q does not start with AADSTS%d", desc, code)
	}
	return code
}

// graphCode returns error.code and checks the rest of Graph's error shape.
func graphCode(t *testing.T, r response) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", r.body)
	}
	inner, _ := e["innerError"].(map[string]any)
	if msg, _ := e["message"].(string); msg == "" || inner == nil || inner["request-id"] == "" {
		t.Errorf("Graph error lacks message or innerError.request-id: %s", r.body)
	}
	return e["code"].(string)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// testKey is a small signing key: fast to generate per test, and tokens in tests protect
// nothing.
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
