package apicheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// detail is a credential detail as openapi.json describes it.
const detail = `{"id":"0d7c3f8a-5b1e-4c2d-9e6f-7a8b9c0d1e2f","org_id":"org-a","name":"n","storage_type":"azure_federated",
"base_path":"az://acct/box","state":"draft","created_at":"2026-11-23T12:00:00Z","updated_at":"2026-11-23T12:00:00Z",
"verified_at":null,"is_org_default":false,"install_command":"","admin_consent_url":"",
"azure":{"app_id":"","tenant_id":"","sp_object_id":"","subscription_id":"","resource_group":"","storage_account":"acct","container_name":"box","prefix":""},
"role_assignment_command":"","portal_url":"","portal_account":"","progress":null,"generation":0,"last_error":"","last_error_code":"",
"last_error_provider_error":"","last_error_request_id":"","health":null%s}`

const requestID = "7d0f4b8e-2c1a-4e5f-9b3d-6a8c0e1f2d4b"

// answer is what the fake API answers.
type answer struct {
	status int
	header map[string]string
	body   string
}

// exchange sends method path (with body) through a Validator of the repository's
// openapi.json to a server that answers a, and returns the call's error and the Validator.
func exchange(t *testing.T, method, path, body string, a answer) (error, *Validator) {
	t.Helper()
	v, err := Load(filepath.Join("..", "..", "..", "handlers", "openapi.json"), func(r *http.Request) bool { return r.URL.Path == "/sp-poll" })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, val := range a.header {
			w.Header().Set(k, val)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("X-Activeloop-Org-Id", "org-a")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := v.Client(srv.Client()).Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err, v
}

func jsonHeader() map[string]string {
	return map[string]string{"Content-Type": "application/json; charset=utf-8", "X-Request-Id": requestID}
}

// TestValidatorIsStrict: a described answer passes and is counted; an undescribed field,
// status, missing header, body, content type or a refused request accepted by the API
// each fail the call and are recorded.
func TestValidatorIsStrict(t *testing.T) {
	t.Setenv(TallyDirEnv, "") // these answers are made up: they are no API's, and not counted
	const get = "/organizations/org-a/credentials/0d7c3f8a-5b1e-4c2d-9e6f-7a8b9c0d1e2f"
	cases := []struct {
		name, method, path, body string
		a                        answer
		fails                    string // "" when it passes
	}{
		{"a described detail", "GET", get, "", answer{200, jsonHeader(), strings.Replace(detail, "%s", "", 1)}, ""},
		{"a described field (last_error_hint)", "GET", get, "", answer{200, jsonHeader(), strings.Replace(detail, "%s", `,"last_error_hint":"no_role"`, 1)}, ""},
		{"an undescribed field", "GET", get, "", answer{200, jsonHeader(), strings.Replace(detail, "%s", `,"surprise":1`, 1)}, "surprise"},
		{"a value outside an enum", "GET", get, "", answer{200, jsonHeader(), strings.Replace(detail, "%s", `,"last_error_hint":"maybe"`, 1)}, "last_error_hint"},
		{"a missing required field", "GET", get, "", answer{200, jsonHeader(), `{"id":"0d7c3f8a-5b1e-4c2d-9e6f-7a8b9c0d1e2f"}`}, "org_id"},
		{"an undescribed status", "GET", get, "", answer{http.StatusTeapot, jsonHeader(), `{}`}, "status is not supported"},
		{"no X-Request-Id", "GET", get, "", answer{200, map[string]string{"Content-Type": "application/json"}, strings.Replace(detail, "%s", "", 1)}, "X-Request-Id"},
		{"an undescribed success status", "DELETE", get, "", answer{http.StatusAccepted, jsonHeader(), `{}`}, "status is not supported"},
		{"another content type", "GET", get, "", answer{200, map[string]string{"Content-Type": "text/plain", "X-Request-Id": requestID}, "hi"}, "text/plain"},
		{"an error as described", "GET", get, "", answer{404, jsonHeader(), `{"error":{"code":"not_found","message":"credential not found","request_id":"` + requestID + `"}}`}, ""},
		{"an error with an undescribed code", "GET", get, "", answer{404, jsonHeader(), `{"error":{"code":"gone","message":"m","request_id":"r"}}`}, "code"},
		{"an error with candidates", "POST", "/organizations/org-a/workspaces", `{"workspace_id":"ws"}`,
			answer{409, jsonHeader(), `{"error":{"code":"conflict","message":"m","field":"credential_id","request_id":"r","candidates":[{"id":"` + requestID + `","name":"a"}]}}`}, ""},
		{"an accepted request the description refuses", "POST", "/organizations/org-a/credentials/0d7c3f8a-5b1e-4c2d-9e6f-7a8b9c0d1e2f/tenant", `{"tenant_id":"x","extra":1}`,
			answer{202, jsonHeader(), strings.Replace(detail, "%s", "", 1)}, "accepted a request"},
		{"an unrouted path answered with the error shape", "GET", "/no/such/path", "", answer{404, jsonHeader(), `{"error":{"code":"not_found","message":"no such endpoint","request_id":"r"}}`}, ""},
		{"an unrouted path answered 200", "GET", "/no/such/path", "", answer{200, jsonHeader(), `{}`}, "no 4xx"},
		{"a method the path does not serve, without Allow", "PATCH", get, "", answer{405, jsonHeader(), `{"error":{"code":"method_not_allowed","message":"m","request_id":"r"}}`}, "Allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err, v := exchange(t, tc.method, tc.path, tc.body, tc.a)
			switch {
			case tc.fails == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
				t.Fatalf("error %v, want one that says %q", err, tc.fails)
			case tc.fails != "" && len(v.Failures()) != 1:
				t.Fatalf("failures recorded %v", v.Failures())
			}
			if v.Checked() != 1 {
				t.Fatalf("checked %d answers, want 1", v.Checked())
			}
			if err := v.Report("apicheck-test"); (err != nil) != (tc.fails != "") {
				t.Fatalf("report: %v", err)
			}
		})
	}
}

// TestValidatorSkipsWhatIsNotTheAPI: the wizard's static page and the paths the caller
// names are not checked nor counted.
func TestValidatorSkipsWhatIsNotTheAPI(t *testing.T) {
	for _, path := range []string{"/wizard/", "/wizard/app.js", "/sp-poll"} {
		err, v := exchange(t, "GET", path, "", answer{200, map[string]string{"Content-Type": "text/html"}, "<html>"})
		if err != nil || v.Checked() != 0 {
			t.Errorf("%s: %v, checked %d", path, err, v.Checked())
		}
	}
}

// TestReportLeavesTheTally: with the tally directory set, Report leaves the count there.
func TestReportLeavesTheTally(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(TallyDirEnv, dir)
	_, v := exchange(t, "GET", "/", "", answer{200, jsonHeader(), `{"status":"ok"}`})
	if err := v.Report("some/pkg"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("tally files %v", files)
	}
	data, _ := os.ReadFile(files[0])
	if string(data) != "some/pkg 1\n" {
		t.Errorf("tally %q", data)
	}
}
