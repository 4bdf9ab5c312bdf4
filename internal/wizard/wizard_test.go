package wizard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// standIn is a stand-in's double: it records what reached it and answers as told.
type standIn struct {
	*httptest.Server
	got []*http.Request
	// bodies are the request bodies that reached it, in order.
	bodies []string
}

func newStandIn(t *testing.T, answer http.HandlerFunc) *standIn {
	t.Helper()
	s := &standIn{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.got = append(s.got, r.Clone(r.Context()))
		s.bodies = append(s.bodies, string(b))
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// apiDouble stands for the API: it names itself in every answer.
var apiDouble = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", "api")
	w.WriteHeader(http.StatusTeapot)
})

func newPage(t *testing.T, s *standIn) http.Handler {
	t.Helper()
	p, err := New(Options{StandIn: s.URL + "/", Transport: s.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	return Beside(apiDouble, p)
}

func do(t *testing.T, h http.Handler, method, target, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPageFiles: the page, its script and its style come from the binary, under a policy
// that allows only the page's own files, and nothing else is served under the prefix.
func TestPageFiles(t *testing.T) {
	h := newPage(t, newStandIn(t, func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/wizard/", "text/html", `<script src="wizard.js" defer></script>`},
		{"/wizard/wizard.js", "javascript", "X-Activeloop-Org-Id"},
		{"/wizard/wizard.css", "text/css", ".outcome"},
	} {
		w := do(t, h, http.MethodGet, tc.path, "", nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), tc.contentType) || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: %d %s, body has %q: %v", tc.path, w.Code, w.Header().Get("Content-Type"), tc.contains, strings.Contains(w.Body.String(), tc.contains))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q", tc.path, w.Header().Get("Referrer-Policy"))
		}
	}
	if w := do(t, h, http.MethodGet, "/wizard", "", nil); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/wizard/" {
		t.Errorf("GET /wizard: %d to %q", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/wizard/nope.js", "/wizard/static/index.html", "/wizard/.hidden"} {
		if w := do(t, h, http.MethodGet, path, "", nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := do(t, h, http.MethodPost, "/wizard/", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /wizard/: %d, want 405", w.Code)
	}
}

// TestPageHasNoInlineCode: the policy allows no inline script or style, so the page must
// have none (it would silently not run).
func TestPageHasNoInlineCode(t *testing.T) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`<style`)} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("index.html has inline code at %d: %q", loc[0], page[loc[0]:min(len(page), loc[1]+20)])
		}
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllStringSubmatch(page, -1) {
		if _, err := static.ReadFile("static/" + ref[1]); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", ref[1])
		}
	}
}

// TestBesideLeavesTheAPIAlone: only the prefix is the page's; every other path, those that
// merely start like it included, is the API's.
func TestBesideLeavesTheAPIAlone(t *testing.T) {
	h := newPage(t, newStandIn(t, func(w http.ResponseWriter, r *http.Request) {}))
	for _, path := range []string{"/", "/organizations/o/credentials", "/wizardry", "/wizard.js", "/api/org/w/ds/t/creds", "/openapi.json"} {
		if w := do(t, h, http.MethodGet, path, "", nil); w.Header().Get("X-Served-By") != "api" {
			t.Errorf("GET %s did not reach the API (%d)", path, w.Code)
		}
	}
	for _, path := range []string{"/wizard", "/wizard/", "/wizard/config.json"} {
		if w := do(t, h, http.MethodGet, path, "", nil); w.Header().Get("X-Served-By") == "api" {
			t.Errorf("GET %s reached the API", path)
		}
	}
}

// TestCustomerProxy: the panel's calls reach the stand-in's control endpoints, body and
// query intact, and never carry the platform's token or organization.
func TestCustomerProxy(t *testing.T) {
	s := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"sp-1"}`)
	})
	h := newPage(t, s)
	secret := http.Header{"Authorization": {"Bearer platform-token"}, "X-Activeloop-Org-Id": {"org-1"}, "Cookie": {"a=b"},
		"Content-Type": {"application/json"}}
	w := do(t, h, http.MethodPost, "/wizard/customer/tenants/t-1/servicePrincipals?x=1", `{"appId":"app-1"}`, secret)
	if w.Code != http.StatusCreated || w.Body.String() != `{"id":"sp-1"}` {
		t.Fatalf("answer %d %s", w.Code, w.Body.String())
	}
	if len(s.got) != 1 {
		t.Fatalf("%d requests reached the stand-in", len(s.got))
	}
	r := s.got[0]
	if r.Method != http.MethodPost || r.URL.Path != "/control/tenants/t-1/servicePrincipals" || r.URL.RawQuery != "x=1" || s.bodies[0] != `{"appId":"app-1"}` {
		t.Errorf("the stand-in got %s %s?%s %q", r.Method, r.URL.Path, r.URL.RawQuery, s.bodies[0])
	}
	for _, hdr := range []string{"Authorization", "X-Activeloop-Org-Id", "Cookie"} {
		if v := r.Header.Get(hdr); v != "" {
			t.Errorf("the stand-in got %s: %q", hdr, v)
		}
	}
	if w := do(t, h, http.MethodDelete, "/wizard/customer/roleAssignments/abc", "", nil); w.Code != http.StatusCreated || s.got[1].URL.Path != "/control/roleAssignments/abc" {
		t.Errorf("DELETE: %d, reached %s", w.Code, s.got[1].URL.Path)
	}
	if w := do(t, h, http.MethodPut, "/wizard/customer/tenants", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d, want 405", w.Code)
	}
	// The one PUT: how the administrator answers an admin consent.
	if w := do(t, h, http.MethodPut, "/wizard/customer/consent/app-1", `{"refuse":true}`, nil); w.Code != http.StatusCreated ||
		s.got[2].Method != http.MethodPut || s.got[2].URL.Path != "/control/consent/app-1" || s.bodies[2] != `{"refuse":true}` {
		t.Errorf("PUT consent: %d, reached %s %s %q", w.Code, s.got[2].Method, s.got[2].URL.Path, s.bodies[2])
	}
	big := strings.Repeat("x", maxProxyBody+1)
	if w := do(t, h, http.MethodPost, "/wizard/customer/tenants", big, nil); w.Code < 400 {
		t.Errorf("a body over %d bytes: %d", maxProxyBody, w.Code)
	}
}

// TestConsentProxy: only the authority's admin-consent endpoint is reachable, and its
// redirects land on the page's origin: back on the wizard as they are, and on the
// stand-in's own pages through the page's routes.
func TestConsentProxy(t *testing.T) {
	var s *standIn
	s = newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "back":
			http.Redirect(w, r, "http://127.0.0.1:7071/wizard/?admin_consent=True&tenant=t-1&state=c-1", http.StatusFound)
		case "page":
			http.Redirect(w, r, s.URL+"/t-1/adminconsent/decide?x=1", http.StatusFound)
		case "control":
			http.Redirect(w, r, s.URL+"/control/tenants", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "consent")
		}
	})
	h := newPage(t, s)
	for _, tc := range []struct{ answer, location string }{
		{"back", "http://127.0.0.1:7071/wizard/?admin_consent=True&tenant=t-1&state=c-1"},
		{"page", "/wizard/consent/t-1/adminconsent/decide?x=1"},
		{"control", "/wizard/customer/tenants"},
	} {
		w := do(t, h, http.MethodGet, "/wizard/consent/t-1/adminconsent?client_id=a&answer="+tc.answer, "", nil)
		if w.Code != http.StatusFound || w.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d to %q, want %q", tc.answer, w.Code, w.Header().Get("Location"), tc.location)
		}
	}
	if got := s.got[0]; got.URL.Path != "/t-1/adminconsent" || got.URL.Query().Get("client_id") != "a" {
		t.Errorf("the stand-in got %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	if w := do(t, h, http.MethodPost, "/wizard/consent/t-1/adminconsent/decide", "accept=1", nil); w.Code != http.StatusOK || s.got[len(s.got)-1].URL.Path != "/t-1/adminconsent/decide" {
		t.Errorf("POST decide: %d", w.Code)
	}
	n := len(s.got)
	for _, path := range []string{"/wizard/consent/t-1/oauth2/v2.0/token", "/wizard/consent/msi/token", "/wizard/consent/t-1/v2.0/.well-known/openid-configuration"} {
		if w := do(t, h, http.MethodGet, path, "", nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if len(s.got) != n {
		t.Errorf("a path outside admin consent reached the stand-in")
	}
}

// TestConfig: the script learns the stand-in's authority, to open admin-consent URLs
// that name it through the page.
func TestConfig(t *testing.T) {
	s := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {})
	w := do(t, newPage(t, s), http.MethodGet, "/wizard/config.json", "", nil)
	var cfg pageConfig
	if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil || w.Code != http.StatusOK {
		t.Fatalf("%d %s: %v", w.Code, w.Body.String(), err)
	}
	if cfg != (pageConfig{Authority: s.URL + "/", Customer: "/wizard/customer/", Consent: "/wizard/consent/"}) {
		t.Errorf("config %+v", cfg)
	}
}

// TestStandInDown: an unreachable stand-in is a JSON 502 that says what to check.
func TestStandInDown(t *testing.T) {
	s := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {})
	h := newPage(t, s)
	s.Close()
	w := do(t, h, http.MethodGet, "/wizard/customer/tenants", "", nil)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "local stack") {
		t.Errorf("%d %s", w.Code, w.Body.String())
	}
}

func TestNewRefusesABadStandIn(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:7443", "https://127.0.0.1:7443/control", "127.0.0.1:7443", "https://127.0.0.1:7443/?x=1"} {
		if _, err := New(Options{StandIn: u}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
