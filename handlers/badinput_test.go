package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
)

// watched is the API and the queue functions on one port, as the Functions host sees
// them, with every row of the store at hand so a test can compare them before and after.
type watched struct{ *harness }

func newWatched(t *testing.T) *watched {
	t.Helper()
	return &watched{newHarness(t)}
}

// rows lists every row of the store with its ETag, so that any write shows.
func (w *watched) rows() []string { return w.store.Snapshot() }

// send is one raw request: path as written (escapes kept), no redirect followed, the
// body and Content-Type as given.
func (w *watched) send(method, path, contentType string, body []byte, headers map[string]string) response {
	w.t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := *apiCheck.Client(w.srv.Client())
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// as sends a request as a caller of org with a JSON content type.
func (w *watched) as(org, method, path string, body []byte) response {
	return w.send(method, path, "application/json", body, map[string]string{"Authorization": "Bearer " + w.token(org), OrgHeader: org})
}

// wantClientError holds r to the contract for bad input: a 4xx (never a 3xx or 5xx) with
// the JSON error shape and the request id in both the header and the body.
func wantClientError(t *testing.T, what string, r response) {
	t.Helper()
	if r.status < 400 || r.status > 499 {
		t.Errorf("%s: status %d, want a 4xx; body %.300s", what, r.status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	var eb struct {
		Error *errorDetail `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == nil {
		t.Errorf("%s: body is not the JSON error shape (%v): %.300s", what, err, r.body)
		return
	}
	e := eb.Error
	if e.Code == "" || e.Message == "" || e.RequestID == "" || e.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("%s: error %+v, X-Request-Id %q", what, e, r.header.Get("X-Request-Id"))
	}
	if len(e.Message) > 1024 {
		t.Errorf("%s: message of %d bytes", what, len(e.Message))
	}
}

// bodyRoute is a route with a body and a request to it that succeeds.
type bodyRoute struct {
	method, path string
	valid        map[string]any
	emptyOK      bool // an empty body is a valid request here
}

// badBodies returns the malformed variants of a valid body, by name.
func badBodies(valid map[string]any, emptyOK bool) map[string][]byte {
	enc := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	with := func(key string, v any) []byte {
		m := map[string]any{}
		for k, x := range valid {
			m[k] = x
		}
		m[key] = v
		return enc(m)
	}
	good := enc(valid)
	out := map[string][]byte{
		"oversized":             with("padding", strings.Repeat("x", MaxBodyBytes)),
		"oversized whitespace":  append(bytes.Repeat([]byte(" "), MaxBodyBytes+1), good...),
		"truncated":             good[:len(good)-1],
		"cut in a string":       good[:len(good)/2],
		"only an opening":       []byte("{"),
		"array":                 []byte("[" + string(good) + "]"),
		"string":                []byte(`"` + strings.ReplaceAll(string(good), `"`, `\"`) + `"`),
		"number":                []byte("42"),
		"null":                  []byte("null"),
		"unknown field":         with("extra", "x"),
		"trailing data":         append(append([]byte{}, good...), []byte(` {}`)...),
		"two objects":           append(append([]byte{}, good...), good...),
		"stray closing brace":   append(append([]byte{}, good...), '}'),
		"stray closing bracket": append(append([]byte{}, good...), ']'),
		"byte order mark":       append([]byte("\xef\xbb\xbf"), good...),
		"nested deeply":         with("extra", json.RawMessage(strings.Repeat("[", 5000)+strings.Repeat("]", 5000))),
		"not JSON":              []byte("tenant_id=x&name=y"),
		"NUL":                   []byte("\x00"),
	}
	if !emptyOK {
		out["empty"] = nil
		out["whitespace"] = []byte(" \n\t ")
	}
	for key := range valid {
		for kind, v := range map[string]any{"number": 7, "array": []string{"a"}, "object": map[string]string{"a": "b"},
			"null": nil, "true": true} {
			out[fmt.Sprintf("%s as %s", key, kind)] = with(key, v)
		}
		s, _ := valid[key].(string)
		quoted := string(enc(s))
		dup := strings.Replace(string(good), `"`+key+`":`, `"`+key+`":`+quoted+`,"`+key+`":`, 1)
		out[key+" twice"] = []byte(dup)
		out[key+" in capitals"] = []byte(strings.Replace(string(good), `"`+key+`"`, `"`+strings.ToUpper(key)+`"`, 1))
		out[key+" with invalid UTF-8"] = []byte(strings.Replace(string(good), quoted, quoted[:len(quoted)-1]+"\xff\xfe\"", 1))
		out[key+" with a lone surrogate"] = []byte(strings.Replace(string(good), quoted, quoted[:len(quoted)-1]+`\udc00"`, 1))
	}
	if len(valid) == 0 {
		out["invalid UTF-8 key"] = []byte("{\"\xff\":1}")
		out["lone surrogate key"] = []byte(`{"\ud800":1}`)
	}
	return out
}

// badContentTypes are refused whatever the body.
var badContentTypes = []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
	"application/json-patch+json", "application/xml", "json", "application/json; charset", ";;;", "application/jsonx"}

// fixture is an organization with a credential in each state that a body route acts on,
// a workspace without tables, and ids for the paths.
type fixture struct {
	draft, spVerified, timedOut, verified string
	workspace                             string
}

func (w *watched) fixture(org string) fixture {
	w.t.Helper()
	base := "/organizations/" + org + "/credentials"
	var f fixture
	mk := func(name string) string { return w.create(org, name, "az://bloblake/lakedata/"+name).ID }
	f.draft, f.spVerified, f.timedOut, f.verified = mk("draft"), mk("spverified"), mk("timedout"), mk("verified")
	for _, id := range []string{f.spVerified, f.timedOut, f.verified} {
		w.want(w.call("POST", org, base+"/"+id+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
		w.advance(org, id, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = "sp-" + id })
	}
	for _, id := range []string{f.timedOut, f.verified} {
		w.want(w.call("POST", org, base+"/"+id+"/storage", storageBody("bloblake", "lakedata")), http.StatusAccepted)
	}
	w.advance(org, f.verified, credential.EventAccessConfirmed, nil)
	w.clock.Advance(6 * time.Minute) // past the timed-out credential's access deadline
	f.workspace = "ws-1"
	w.want(w.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": f.workspace, "credential_id": f.verified}), http.StatusCreated)
	return f
}

func (f fixture) bodyRoutes(org string) []bodyRoute {
	creds := "/organizations/" + org + "/credentials"
	return []bodyRoute{
		{method: "POST", path: creds, valid: map[string]any{"name": "fresh", "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata/fresh"}},
		{method: "POST", path: creds + "/" + f.draft + "/tenant", valid: map[string]any{"tenant_id": tenantID}},
		{method: "POST", path: creds + "/" + f.spVerified + "/storage", valid: map[string]any{"subscription_id": subID,
			"resource_group": "data-rg", "storage_account": "bloblake", "container_name": "lakedata"}},
		{method: "POST", path: creds + "/" + f.timedOut + "/save-unverified", valid: map[string]any{}, emptyOK: true},
		{method: "PUT", path: "/organizations/" + org + "/credential", valid: map[string]any{"credential_id": f.verified}},
		{method: "POST", path: "/organizations/" + org + "/workspaces", valid: map[string]any{"workspace_id": "ws-2", "credential_id": f.verified}},
		{method: "PUT", path: "/organizations/" + org + "/workspaces/" + f.workspace + "/credential", valid: map[string]any{"credential_id": f.verified}},
		{method: "POST", path: "/api/org/" + f.workspace + "/ds/table1/creds", valid: map[string]any{}, emptyOK: true},
	}
}

// TestBadBodies sends every malformed variant of every route's body, and every body
// with a wrong content type: each is a 4xx with the JSON error shape, and no row of the
// table changes. The valid bodies are then sent once to show each would have changed it.
func TestBadBodies(t *testing.T) {
	w := newWatched(t)
	f := w.fixture(org)
	before := w.rows()
	apps := w.dir.Apps()
	sent := 0
	for _, rt := range f.bodyRoutes(org) {
		bad := badBodies(rt.valid, rt.emptyOK)
		names := make([]string, 0, len(bad))
		for name := range bad {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			wantClientError(t, fmt.Sprintf("%s %s, %s", rt.method, rt.path, name), w.as(org, rt.method, rt.path, bad[name]))
			sent++
		}
		good, _ := json.Marshal(rt.valid)
		for _, ct := range badContentTypes {
			r := w.send(rt.method, rt.path, ct, good, map[string]string{"Authorization": "Bearer " + w.token(org), OrgHeader: org})
			wantClientError(t, fmt.Sprintf("%s %s, Content-Type %q", rt.method, rt.path, ct), r)
			if r.status != http.StatusUnsupportedMediaType {
				t.Errorf("%s %s, Content-Type %q: status %d, want 415", rt.method, rt.path, ct, r.status)
			}
			sent++
		}
	}
	if diff := cmp.Diff(before, w.rows()); diff != "" {
		t.Fatalf("bad bodies changed rows (-before +after):\n%s", diff)
	}
	if n := w.dir.Apps(); n != apps {
		t.Fatalf("bad bodies changed the directory: %d apps, had %d", n, apps)
	}
	t.Logf("%d bad bodies over %d routes: all 4xx, no row changed", sent, len(f.bodyRoutes(org)))

	// The same routes with their valid bodies do change rows: the check above can fail.
	for _, rt := range f.bodyRoutes(org) {
		good, _ := json.Marshal(rt.valid)
		prev := w.rows()
		r := w.as(org, rt.method, rt.path, good)
		if r.status/100 != 2 {
			t.Fatalf("%s %s with a valid body: %d %s", rt.method, rt.path, r.status, r.body)
		}
		if rt.method != "PUT" && cmp.Equal(prev, w.rows()) {
			t.Errorf("%s %s with a valid body changed no row", rt.method, rt.path)
		}
	}
}

// badSegments are values for one path parameter, as written in the URL.
var badSegments = map[string]string{
	"encoded slash":        "a%2Fb",
	"encoded slash alone":  "%2F",
	"encoded backslash":    "a%5Cb",
	"dot":                  ".",
	"dot-dot":              "..",
	"encoded dot":          "%2E",
	"encoded dot-dot":      "%2E%2E",
	"encoded dot-dot, lc":  "%2e%2e",
	"dot-dot and slash":    "..%2F..%2Fx",
	"empty":                "",
	"overlong":             strings.Repeat("a", 4000),
	"unicode":              "w%C3%B6rk",
	"fullwidth dots":       "%EF%BC%8E%EF%BC%8E",
	"invalid UTF-8":        "a%FFb",
	"NUL":                  "a%00b",
	"space":                "a%20b",
	"quote":                "a%27b",
	"hash":                 "a%23b",
	"question mark":        "a%3Fb",
	"percent":              "a%25b",
	"uuid with slash":      "ceeafc3d-f026-420b-a75b%2F9df0c970e6d1",
	"uuid with dot-dot":    "ceeafc3d-f026-420b-a75b-9df0c970e6d1%2F..",
	"braced uuid":          "%7Bceeafc3d-f026-420b-a75b-9df0c970e6d1%7D",
	"double-encoded slash": "a%252Fb",
}

// pathRoute is a route with path parameters; %s marks the parameter under test.
type pathRoute struct {
	method, path string
	body         map[string]any
}

func (f fixture) pathRoutes(org string) []pathRoute {
	creds := "/organizations/" + org + "/credentials"
	tenant := map[string]any{"tenant_id": tenantID}
	link := map[string]any{"credential_id": f.verified}
	storage := map[string]any{"subscription_id": subID, "resource_group": "data-rg", "storage_account": "bloblake", "container_name": "lakedata"}
	var out []pathRoute
	for _, r := range []pathRoute{
		{"GET", creds + "/%s", nil}, {"DELETE", creds + "/%s", nil}, {"GET", creds + "/%s/events", nil},
		{"POST", creds + "/%s/tenant", tenant}, {"POST", creds + "/%s/storage", storage},
		{"POST", creds + "/%s/save-unverified", map[string]any{}},
		{"GET", "/organizations/" + org + "/workspaces/%s", nil},
		{"PUT", "/organizations/" + org + "/workspaces/%s/credential", link},
		{"DELETE", "/organizations/" + org + "/workspaces/%s/credential", nil},
		{"POST", "/api/org/%s/ds/table1/creds", nil}, {"POST", "/api/org/" + f.workspace + "/ds/%s/creds", nil},
		{"GET", "/organizations/%s/credentials", nil}, {"POST", "/organizations/%s/credentials", map[string]any{"name": "n",
			"storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"}},
		{"PUT", "/organizations/%s/credential", link}, {"GET", "/organizations/%s/workspaces/" + f.workspace, nil},
	} {
		out = append(out, r)
	}
	return out
}

// TestBadPathParameters puts every bad segment in every path parameter of every route:
// each answer is a 4xx with the JSON error shape (a redirect to a cleaned path is not
// one), and no row changes.
func TestBadPathParameters(t *testing.T) {
	w := newWatched(t)
	f := w.fixture(org)
	before := w.rows()
	names := make([]string, 0, len(badSegments))
	for name := range badSegments {
		names = append(names, name)
	}
	slices.Sort(names)
	sent := 0
	for _, rt := range f.pathRoutes(org) {
		for _, name := range names {
			seg := badSegments[name]
			path := strings.Replace(rt.path, "%s", seg, 1)
			var body []byte
			if rt.body != nil {
				body, _ = json.Marshal(rt.body)
			}
			// The org header names the path's org as the server decodes it, so a bad org
			// reaches validation rather than the header check.
			hdrOrg := org
			if strings.HasPrefix(rt.path, "/organizations/%s") {
				hdrOrg = decodedSegment(seg)
			}
			headers := map[string]string{"Authorization": "Bearer " + w.token(hdrOrg), OrgHeader: hdrOrg}
			if !validHeaderValue(hdrOrg) {
				headers[OrgHeader] = org
			}
			r := w.send(rt.method, path, "application/json", body, headers)
			wantClientError(t, fmt.Sprintf("%s %s (%s)", rt.method, clipPath(path), name), r)
			sent++
		}
	}
	if diff := cmp.Diff(before, w.rows()); diff != "" {
		t.Fatalf("bad path parameters changed rows (-before +after):\n%s", diff)
	}
	t.Logf("%d requests with bad path parameters: all 4xx, no row changed", sent)
}

func clipPath(p string) string {
	if len(p) > 100 {
		return p[:100] + "..."
	}
	return p
}

// decodedSegment is a path segment as the server reads it.
func decodedSegment(seg string) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] == '%' && i+2 < len(seg) {
			var c byte
			if _, err := fmt.Sscanf(seg[i+1:i+3], "%02X", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(seg[i])
	}
	return b.String()
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return false
		}
	}
	return v != ""
}

// TestBadQueuePayloads posts garbage invocations to every queue function, on the port
// the host uses: each is answered 200 with the host's response shape (a malformed
// message is logged and dropped, never retried into the poison queue) and no row changes.
func TestBadQueuePayloads(t *testing.T) {
	w := newWatched(t)
	f := w.fixture(org)
	before := w.rows()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	job := func(kind credential.JobKind, fields string) string {
		return fmt.Sprintf(`{"kind":%q,"org_id":%q,"credential_id":%q,"generation":99,"attempt":0%s}`, kind, org, f.draft, fields)
	}
	deep := job(credential.JobSPPoll, "")
	for range maxPayloadNesting + 1 {
		deep = quote(deep)
	}
	payloads := map[string]string{
		"not JSON":              "garbage",
		"JSON array":            "[1,2]",
		"empty object":          "{}",
		"no Data":               `{"Metadata":{}}`,
		"Data null":             `{"Data":null}`,
		"job missing":           `{"Data":{"other":"x"}}`,
		"job number":            `{"Data":{"job":42}}`,
		"job null":              `{"Data":{"job":null}}`,
		"job empty string":      `{"Data":{"job":""}}`,
		"job not base64":        `{"Data":{"job":"%%%"}}`,
		"job base64 of garbage": `{"Data":{"job":` + quote(b64("garbage")) + `}}`,
		"job base64 of array":   `{"Data":{"job":` + quote(b64("[]")) + `}}`,
		"job nested too deep":   `{"Data":{"job":` + deep + `}}`,
		"job without ids":       `{"Data":{"job":{"kind":"sp_poll"}}}`,
		"job with slash org":    `{"Data":{"job":{"kind":"sp_poll","org_id":"a/b","credential_id":"c"}}}`,
		"job with hash id":      `{"Data":{"job":{"kind":"access_probe","org_id":"` + org + `","credential_id":"c#1"}}}`,
		"job with control org":  `{"Data":{"job":{"kind":"app_cleanup","org_id":"a\u0001","credential_id":"c","app_object_id":"x"}}}`,
		"job with query org":    `{"Data":{"job":{"kind":"sp_poll","org_id":"a?b","credential_id":"c"}}}`,
		"job with quote org":    `{"Data":{"job":{"kind":"sp_poll","org_id":"a'b","credential_id":"c"}}}`,
		"job with long org":     `{"Data":{"job":{"kind":"sp_poll","org_id":"` + strings.Repeat("o", 2000) + `","credential_id":"c"}}}`,
		"job generation string": `{"Data":{"job":{"kind":"sp_poll","org_id":"o","credential_id":"c","generation":"1"}}}`,
		"job deadline garbage":  `{"Data":{"job":{"kind":"sp_poll","org_id":"o","credential_id":"c","deadline":"soon"}}}`,
		"job stale generation":  `{"Data":{"job":` + quote(b64(job(credential.JobSPPoll, ""))) + `}}`,
		"job unknown credential": `{"Data":{"job":{"kind":"access_probe","org_id":"` + org +
			`","credential_id":"00000000-0000-0000-0000-000000000000","generation":1}}}`,
		"job unknown org":        `{"Data":{"job":{"kind":"sp_poll","org_id":"nobody","credential_id":"` + f.draft + `"}}}`,
		"job negative attempt":   `{"Data":{"job":{"kind":"access_probe","org_id":"o","credential_id":"c","attempt":-5}}}`,
		"oversized":              `{"Data":{"job":"` + strings.Repeat("A", MaxBodyBytes) + `"}}`,
		"Metadata garbage":       `{"Data":{"job":{"kind":"sp_poll","org_id":"o","credential_id":"c"}},"Metadata":{"DequeueCount":[],"Id":{}}}`,
		"job with invalid UTF-8": "{\"Data\":{\"job\":{\"kind\":\"sp_poll\",\"org_id\":\"o\xff\",\"credential_id\":\"c\"}}}",
	}
	names := make([]string, 0, len(payloads))
	for name := range payloads {
		names = append(names, name)
	}
	slices.Sort(names)
	sent := 0
	for _, fn := range NewInvoker(nil, slog.New(slog.DiscardHandler)).Functions() {
		for _, name := range names {
			r := w.send("POST", "/"+fn.Function, "application/json", []byte(payloads[name]), nil)
			what := fmt.Sprintf("POST /%s, %s", fn.Function, name)
			if r.status != http.StatusOK {
				t.Errorf("%s: status %d, want 200 (dropped); body %.300s", what, r.status, r.body)
			}
			var resp struct {
				Outputs     map[string]any `json:"Outputs"`
				Logs        []string       `json:"Logs"`
				ReturnValue any            `json:"ReturnValue"`
			}
			if err := json.Unmarshal(r.body, &resp); err != nil || resp.Outputs == nil || len(resp.Logs) == 0 {
				t.Errorf("%s: not the host's response shape (%v): %.300s", what, err, r.body)
			}
			sent++
		}
	}
	if diff := cmp.Diff(before, w.rows()); diff != "" {
		t.Fatalf("bad queue payloads changed rows (-before +after):\n%s", diff)
	}
	t.Logf("%d bad invocations: all 200, no row changed", sent)
}
