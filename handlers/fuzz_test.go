package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// The fuzz targets of the HTTP and queue adapters need no storage: they drive the body
// decoder, the queue payload decoder and the Invoker in-process. Seeds are the f.Add calls
// and testdata/fuzz/<FuzzName>/.

// bodyKinds are the request bodies the API decodes, by route, and whether an empty body
// is a valid request there.
var bodyKinds = []struct {
	route      string
	new        func() any
	allowEmpty bool
}{
	{"POST credentials", func() any { return &createRequest{} }, false},
	{"POST tenant", func() any { return &tenantRequest{} }, false},
	{"POST storage", func() any { return &storageRequest{} }, false},
	{"POST save-unverified", func() any { return &emptyRequest{} }, true},
	{"PUT credential", func() any { return &defaultRequest{} }, false},
	{"POST workspaces", func() any { return &registerWorkspaceRequest{} }, false},
	{"PUT workspace credential", func() any { return &linkRequest{} }, false},
	{"POST creds", func() any { return &emptyRequest{} }, true},
}

// FuzzDecodeBody: the decoder accepts a body exactly when it is a JSON object, in UTF-8,
// of the route's own fields, each at most once, spelled exactly and not null, sent as
// application/json (or with no Content-Type), or, where the route takes no body, when it
// is empty (whatever its Content-Type); what it decodes re-encodes to an equivalent body;
// and every refusal is a 400, 413 or 415 with a short message.
func FuzzDecodeBody(f *testing.F) {
	seeds := []struct {
		kind        uint8
		contentType string
		body        string
	}{
		{0, "application/json", `{"name":"prod","storage_type":"azure_federated","base_path":"az://acct/cont/p"}`},
		{0, "application/json; charset=utf-8", `{"name":"a","name":"b"}`},
		{0, "", `{"NAME":"a"}`},
		{0, "application/json", `{"name":null}`},
		{0, "application/json", "{\"name\":\"\xff\"}"},
		{0, "application/json", `{"name":"\ud800"}`},
		{0, "application/json", `{"name":"\ud83d\ude00"}`},
		{1, "application/json", `{"tenant_id":"ceeafc3d-f026-420b-a75b-9df0c970e6d1"}`},
		{1, "text/plain", `{"tenant_id":"x"}`},
		{1, "application/json", `{"tenant_id":1}`},
		{2, "application/json", `{"subscription_id":"s","resource_group":"r","storage_account":"a","container_name":"c"}`},
		{3, "application/json", ``},
		{3, "application/json", `null`},
		{3, "application/json", `{}`},
		{3, "application/json", `{} {}`},
		{4, "application/json", `{"credential_id":"ceeafc3d-f026-420b-a75b-9df0c970e6d1"}`},
		{5, "application/json", `{"workspace_id":"ws","credential_id":null}`},
		{6, "application/json", `[{"credential_id":"x"}]`},
		{7, "application/json", " \t\n"},
		{7, "application/jsonx", `{}`},
		{7, "application/x-www-form-urlencoded", ``},
		{3, "text/plain", " "},
		{7, "application/x-www-form-urlencoded", `a=1`},
		{0, "application/json", "\xef\xbb\xbf{}"},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, kind uint8, contentType string, body []byte) {
		k := bodyKinds[int(kind)%len(bodyKinds)]
		v := k.new()
		err := decodeRequest(body, contentType, v, k.allowEmpty)
		want, why := acceptableBody(body, contentType, v, k.allowEmpty)
		if err != nil {
			var pe *publicError
			if !errors.As(err, &pe) {
				t.Fatalf("%s %q: error %v (%T) is not a public error", k.route, body, err, err)
			}
			if pe.status != http.StatusBadRequest && pe.status != http.StatusRequestEntityTooLarge && pe.status != http.StatusUnsupportedMediaType {
				t.Fatalf("%s %q: status %d (%s)", k.route, body, pe.status, pe.msg)
			}
			if pe.code == "" || pe.msg == "" || !utf8.ValidString(pe.msg) || len(pe.msg) > 512 {
				t.Fatalf("%s %q: code %q, message %q", k.route, body, pe.code, pe.msg)
			}
			if want {
				t.Fatalf("%s %q (Content-Type %q): refused (%s), but it is a valid body", k.route, body, contentType, pe.msg)
			}
			return
		}
		if !want {
			t.Fatalf("%s %q (Content-Type %q): accepted, but %s", k.route, body, contentType, why)
		}
		// What was decoded re-encodes to a body that decodes to the same request.
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		w := k.new()
		if err := decodeRequest(again, "application/json", w, false); err != nil && len(jsonFields(v)) > 0 {
			t.Fatalf("%s: re-encoded %s refused: %v", k.route, again, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%s: %q decoded to %+v, its re-encoding %s to %+v", k.route, body, v, again, w)
		}
	})
}

// decodeRequest runs decode on a request with body and Content-Type.
func decodeRequest(body []byte, contentType string, v any, allowEmpty bool) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return decode(httptest.NewRecorder(), r, v, allowEmpty)
}

// acceptableBody is the oracle of FuzzDecodeBody, written from the API's rules.
func acceptableBody(body []byte, contentType string, v any, allowEmpty bool) (bool, string) {
	notJSON := false
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		notJSON = err != nil || mt != "application/json"
	}
	if notJSON && !allowEmpty {
		return false, "the content type is not JSON"
	}
	if len(body) > MaxBodyBytes {
		return false, "it is too large"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return allowEmpty, "it is empty"
	}
	if notJSON {
		return false, "it is a body whose content type is not JSON"
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		return false, "it is not JSON in UTF-8"
	}
	if unpairedSurrogate(body) {
		return false, "it escapes an unpaired surrogate"
	}
	var fields map[string]json.RawMessage
	if bytes.TrimSpace(body)[0] != '{' || json.Unmarshal(body, &fields) != nil {
		return false, "it is not an object"
	}
	names := map[string]reflect.Type{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		names[t.Field(i).Tag.Get("json")] = t.Field(i).Type
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	_, _ = dec.Token()
	seen := map[string]bool{}
	for dec.More() {
		tok, _ := dec.Token()
		key := tok.(string)
		var raw json.RawMessage
		_ = dec.Decode(&raw)
		typ, ok := names[key]
		switch {
		case !ok:
			return false, "it has an unknown field"
		case seen[key]:
			return false, "it names a field twice"
		case string(raw) == "null":
			return false, "a field is null"
		case json.Unmarshal(raw, reflect.New(typ).Interface()) != nil:
			return false, "a field has the wrong type"
		}
		seen[key] = true
	}
	return true, ""
}

// FuzzDecodePayload: a queue payload decodes to a job with a kind, an organization and a
// credential, or fails as malformed (dropped, never retried); a decoded job, written as a
// queue message and handed over the way the host does, decodes to the same job.
func FuzzDecodePayload(f *testing.F) {
	job := `{"kind":"sp_poll","org_id":"org-a","credential_id":"c1","generation":3,"deadline":"2026-11-23T12:10:00Z","attempt":2}`
	b64 := "eyJraW5kIjoic3BfcG9sbCIsIm9yZ19pZCI6Im8iLCJjcmVkZW50aWFsX2lkIjoiYyJ9"
	for _, s := range []string{job, quoted(job), quoted(quoted(job)), quoted(b64), `"` + b64 + `"`,
		quoted(quoted(b64)), `{"kind":"app_cleanup","org_id":"o","credential_id":"c","app_object_id":"x"}`,
		`""`, `" "`, `"\"\""`, `null`, `[]`, `42`, `"%%%"`, `"e30="`, `{"kind":"sp_poll"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		job, err := decodePayload(raw)
		if err != nil {
			if !errors.Is(err, queue.ErrMalformed) {
				t.Fatalf("%q: error %v is not malformed", raw, err)
			}
			return
		}
		if _, ok := queue.Of(job.Kind); !ok || job.OrgID == "" || job.CredentialID == "" {
			t.Fatalf("%q: decoded an incomplete job %+v", raw, job)
		}
		body, err := queue.Encode(job)
		if err != nil {
			t.Fatalf("%q: decoded job %+v does not encode: %v", raw, job, err)
		}
		for _, handed := range []string{quoted(body), quoted(quoted(body))} {
			again, err := decodePayload([]byte(handed))
			if err != nil {
				t.Fatalf("%q: re-encoded as %s: %v", raw, handed, err)
			}
			if diff := cmp.Diff(job, again, cmp.Comparer(time.Time.Equal)); diff != "" {
				t.Fatalf("%q: re-encoded job came back changed (-first +again):\n%s", raw, diff)
			}
		}
	})
}

// quoted is s as a JSON string.
func quoted(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// okRunner records the jobs it runs and completes each.
type okRunner struct {
	mu   sync.Mutex
	jobs []credential.Job
}

func (r *okRunner) Run(ctx context.Context, job credential.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, job)
	return nil
}

// FuzzInvocation posts arbitrary invocation bodies to each queue function: the answer is
// always 200 in the host's response shape (a malformed message is dropped, not retried
// until it is poisoned), and a job that runs is of the function's own kind.
func FuzzInvocation(f *testing.F) {
	job := `{"kind":"sp_poll","org_id":"org-a","credential_id":"c1","generation":3}`
	for _, s := range []string{
		`{"Data":{"job":` + quoted(job) + `},"Metadata":{"DequeueCount":1,"Id":"m1"}}`,
		`{"Data":{"job":` + job + `},"Metadata":{"DequeueCount":"2"}}`,
		`{"Data":{"job":"eyJraW5kIjoic3BfcG9sbCIsIm9yZ19pZCI6Im8iLCJjcmVkZW50aWFsX2lkIjoiYyJ9"}}`,
		`{"Data":{}}`, `{"Data":null,"Metadata":null}`, `[]`, `garbage`, ``,
		`{"Data":{"job":{"kind":"app_cleanup","org_id":"o","credential_id":"c","app_object_id":"a"}}}`,
	} {
		for i := range 3 {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		runner := &okRunner{}
		iv := NewInvoker(runner, slog.New(slog.DiscardHandler))
		fns := iv.Functions()
		fn := fns[int(which)%len(fns)]
		rec := httptest.NewRecorder()
		iv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+fn.Function, bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s %q: status %d: %s", fn.Function, body, rec.Code, rec.Body)
		}
		var resp struct {
			Outputs     map[string]any
			Logs        []string
			ReturnValue any
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Outputs == nil || len(resp.Logs) == 0 {
			t.Fatalf("%s %q: not the host's response shape (%v): %s", fn.Function, body, err, rec.Body)
		}
		for _, j := range runner.jobs {
			if j.Kind != fn.Kind {
				t.Fatalf("%s %q: ran a %s job", fn.Function, body, j.Kind)
			}
		}
	})
}
