package handlers

import (
	"net/http"
	"testing"
)

// TestDecodeStrict pins what decode refuses beyond encoding/json, each with its message.
// Without checkStrict every one of these bodies but the last was accepted.
func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		name, body string
		allowEmpty bool
		msg        string
	}{
		{"field twice", `{"tenant_id":"a","tenant_id":"b"}`, false, `invalid JSON body: field "tenant_id" appears more than once`},
		{"field in capitals", `{"TENANT_ID":"a"}`, false, `invalid JSON body: unknown field "TENANT_ID"`},
		{"field null", `{"tenant_id":null}`, false, `invalid JSON body: field "tenant_id" must not be null; leave it out instead`},
		{"body null", `null`, true, "invalid JSON body: the body must be a JSON object"},
		{"invalid UTF-8", "{\"tenant_id\":\"a\xff\"}", false, "invalid JSON body: it is not valid UTF-8"},
		{"unpaired high surrogate", `{"tenant_id":"a\ud800"}`, false, "invalid JSON body: it is not valid UTF-8"},
		{"unpaired low surrogate", `{"tenant_id":"\udc00a"}`, false, "invalid JSON body: it is not valid UTF-8"},
		{"reversed pair", `{"tenant_id":"\udc00\ud800"}`, false, "invalid JSON body: it is not valid UTF-8"},
		{"stray brace", `{"tenant_id":"a"}}`, false, "invalid JSON body: unexpected data after the JSON object"},
		{"stray bracket", `{"tenant_id":"a"}]`, false, "invalid JSON body: unexpected data after the JSON object"},
	}
	for _, c := range cases {
		err := decodeRequest([]byte(c.body), "application/json", &tenantRequest{}, c.allowEmpty)
		pe, ok := err.(*publicError)
		if !ok || pe.status != http.StatusBadRequest || pe.msg != c.msg {
			t.Errorf("%s: got %v, want 400 %q", c.name, err, c.msg)
		}
	}
	// A surrogate pair is one character, and escaped backslashes are not escapes.
	for _, body := range []string{`{"tenant_id":"\ud83d\ude00"}`, `{"tenant_id":"\\ud800"}`, `{"tenant_id":"\\\\"}`} {
		if err := decodeRequest([]byte(body), "application/json", &tenantRequest{}, false); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestNonCanonicalPaths: a path ServeMux would redirect to its cleaned form is a 400,
// never a redirect; escaped dots are a path value like any other.
func TestNonCanonicalPaths(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/organizations/o/credentials": true, "/organizations/o/credentials/": true,
		"/organizations/o/credentials/%2E%2E": true, "/organizations/o/credentials/..": false,
		"/organizations/o/credentials/./x": false, "/organizations//credentials": false, "//": false,
	} {
		if got := canonicalPath(path); got != want {
			t.Errorf("canonicalPath(%q) = %v, want %v", path, got, want)
		}
	}
}
