package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// recordingRunner is a JobRunner that records the jobs it is given and fails or panics
// on demand.
type recordingRunner struct {
	mu    sync.Mutex
	jobs  []credential.Job
	err   error
	panic any
}

func (r *recordingRunner) Run(ctx context.Context, job credential.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, job)
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

func (r *recordingRunner) ran() []credential.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]credential.Job(nil), r.jobs...)
}

// lockedBuffer collects log output written from handler goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON log records written so far.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func newTestInvoker(runner JobRunner) (*Invoker, *lockedBuffer) {
	logs := &lockedBuffer{}
	return NewInvoker(runner, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), logs
}

// hostInvocation is the body the Functions host posts for a queue trigger whose binding
// "job" received payload (raw JSON), as in the custom handler documentation.
func hostInvocation(payload string, dequeueCount any) string {
	count, _ := json.Marshal(dequeueCount)
	return `{"Data":{"job":` + payload + `},"Metadata":{"DequeueCount":` + string(count) + `,` +
		`"ExpirationTime":"2026-11-30T12:00:00+00:00","Id":"6a1d3c4e-8f7b-4c2a-9e1d-0b5f3a7c9d21",` +
		`"InsertionTime":"2026-11-23T12:00:00+00:00","NextVisibleTime":"2026-11-23T12:00:35+00:00",` +
		`"PopReceipt":"AgAAAAMAAAAAAAAAAgtnj8x+1QE=",` +
		`"sys":{"MethodName":"sp-poll","UtcNow":"2026-11-23T12:00:05.2205399Z","RandGuid":"24ad4c06-24ad-4e5b-8294-3da9714877e9"}}}`
}

func postInvocation(t *testing.T, h http.Handler, function, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+function, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkInvocationResponse holds an answer to exactly {"Outputs":{},"Logs":[...],"ReturnValue":null}
// and returns its Logs.
func checkInvocationResponse(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int) []string {
	t.Helper()
	if rec.Code != wantStatus {
		t.Fatalf("status %d, want %d; body %s", rec.Code, wantStatus, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	if len(body) != 3 {
		t.Errorf("response has fields %v, want exactly Outputs, Logs and ReturnValue", keys(body))
	}
	if got := string(body["Outputs"]); got != "{}" {
		t.Errorf("Outputs = %s, want {}", got)
	}
	if got := string(body["ReturnValue"]); got != "null" {
		t.Errorf("ReturnValue = %s, want null", got)
	}
	var logs []string
	if err := json.Unmarshal(body["Logs"], &logs); err != nil || logs == nil {
		t.Fatalf("Logs = %s, want an array of strings", body["Logs"])
	}
	if len(logs) == 0 {
		t.Error("Logs is empty; the host's function log should say what happened")
	}
	return logs
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// testJobs is one valid job per queue function.
func testJobs() map[credential.JobKind]credential.Job {
	deadline := time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC)
	return map[credential.JobKind]credential.Job{
		credential.JobSPPoll:      {Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: "c1", Generation: 3, Deadline: deadline, Attempt: 2},
		credential.JobAccessProbe: {Kind: credential.JobAccessProbe, OrgID: "org-a", CredentialID: "c2", Generation: 5, Deadline: deadline, Attempt: 1},
		credential.JobAppCleanup:  {Kind: credential.JobAppCleanup, OrgID: "org-a", CredentialID: "c3", AppObjectID: "0c6f2b1e-obj"},
		credential.JobHealthProbe: {Kind: credential.JobHealthProbe, OrgID: "org-a", CredentialID: "c4", Generation: 2,
			IssuedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Deadline: time.Date(2026, 11, 23, 12, 1, 30, 0, time.UTC)},
	}
}

// messageJSON is the JSON a job's queue message carries (base64-decoded).
func messageJSON(t *testing.T, job credential.Job) string {
	t.Helper()
	body, err := queue.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestInvokerPayloadShapes: every function accepts its message as the host may hand it
// over, runs the job once, and answers 200 in the host's shape.
func TestInvokerPayloadShapes(t *testing.T) {
	inv, _ := newTestInvoker(nil)
	functions := inv.Functions()
	if len(functions) != 4 {
		t.Fatalf("Functions() = %+v, want the four queue functions", functions)
	}
	for _, fn := range functions {
		job := testJobs()[fn.Kind]
		msg := messageJSON(t, job)
		b64, err := queue.Encode(job)
		if err != nil {
			t.Fatal(err)
		}
		shapes := map[string]string{
			"object":                msg,
			"object with spaces":    "  \n" + msg + "\n ",
			"string":                jsonString(msg),
			"quoted twice":          jsonString(jsonString(msg)),
			"quoted three times":    jsonString(jsonString(jsonString(msg))),
			"base64 string":         jsonString(b64),
			"base64, quoted twice":  jsonString(jsonString(b64)),
			"string with blank pad": jsonString(" " + msg + "\n"),
		}
		for name, payload := range shapes {
			t.Run(fn.Function+"/"+name, func(t *testing.T) {
				runner := &recordingRunner{}
				inv, logs := newTestInvoker(runner)
				rec := postInvocation(t, inv, fn.Function, hostInvocation(payload, 1))
				out := checkInvocationResponse(t, rec, http.StatusOK)
				got := runner.ran()
				if len(got) != 1 {
					t.Fatalf("runner ran %d jobs, want 1", len(got))
				}
				want := job
				want.Delivery = 1 // the invocation's DequeueCount
				// ... and the invocation's request id, the one its answer and log line carry.
				want.RequestID = rec.Header().Get("X-Request-Id")
				if diff := cmp.Diff(want, got[0]); diff != "" {
					t.Errorf("job (-want +got):\n%s", diff)
				}
				if !strings.Contains(out[0], job.CredentialID) {
					t.Errorf("Logs %q do not name the credential", out)
				}
				recs := logs.records(t)
				if len(recs) != 1 || recs[0]["dequeue_count"] != float64(1) || recs[0]["credential"] != job.CredentialID {
					t.Errorf("log records %v, want one naming the credential with dequeue_count 1", recs)
				}
			})
		}
	}
}

// TestInvokerRunFailure: a job that fails is answered 500 (the host retries, then
// poisons) in the host's shape, with a short reason and none of the error's text.
func TestInvokerRunFailure(t *testing.T) {
	const secret = "sig=SECRETSASSIGNATURE"
	for name, runner := range map[string]*recordingRunner{
		"unavailable": {err: fmt.Errorf("read credential: %w", errors.Join(credential.ErrUnavailable, errors.New("GET https://x/?"+secret+": 503")))},
		"other":       {err: errors.New("boom " + secret)},
		"panic":       {panic: "nil finder " + secret},
	} {
		t.Run(name, func(t *testing.T) {
			inv, logs := newTestInvoker(runner)
			job := testJobs()[credential.JobSPPoll]
			rec := postInvocation(t, inv, "sp-poll", hostInvocation(messageJSON(t, job), 3))
			out := checkInvocationResponse(t, rec, http.StatusInternalServerError)
			if joined := strings.Join(out, "\n"); strings.Contains(joined, "SECRET") || !strings.Contains(joined, "failed") {
				t.Errorf("Logs %q: want a short failure reason and no error text", out)
			}
			if name == "unavailable" && !strings.Contains(out[0], "unavailable") {
				t.Errorf("Logs %q: want the failure's class", out)
			}
			if len(runner.ran()) != 1 {
				t.Errorf("runner ran %d times, want 1", len(runner.ran()))
			}
			recs := logs.records(t)
			if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["dequeue_count"] != float64(3) || recs[0]["err"] == nil {
				t.Errorf("log records %v, want one error with dequeue_count 3 and the cause", recs)
			}
		})
	}
}

// TestInvokerDropsMalformed: a message no retry can fix is logged loudly and answered
// 200, so the host deletes it instead of delivering it again; the runner never sees it.
func TestInvokerDropsMalformed(t *testing.T) {
	spPoll := messageJSON(t, testJobs()[credential.JobSPPoll])
	nested := spPoll
	for range maxPayloadNesting + 1 {
		nested = jsonString(nested)
	}
	cases := []struct {
		name, function, body string
	}{
		{"kind mismatch: sp_poll on access-probe", "access-probe", hostInvocation(spPoll, 1)},
		{"kind mismatch: access_probe on app-cleanup", "app-cleanup", hostInvocation(messageJSON(t, testJobs()[credential.JobAccessProbe]), 1)},
		{"body not JSON", "sp-poll", "this is not JSON"},
		{"body a JSON array", "sp-poll", "[1,2]"},
		{"empty body", "sp-poll", ""},
		{"no Data", "sp-poll", `{"Metadata":{"DequeueCount":1}}`},
		{"binding under another name", "sp-poll", `{"Data":{"msg":` + spPoll + `},"Metadata":{"DequeueCount":1}}`},
		{"payload null", "sp-poll", hostInvocation("null", 1)},
		{"payload a number", "sp-poll", hostInvocation("42", 1)},
		{"payload an array", "sp-poll", hostInvocation("[]", 1)},
		{"payload empty string", "sp-poll", hostInvocation(`""`, 1)},
		{"payload not base64", "sp-poll", hostInvocation(`"hello, world!"`, 1)},
		{"payload base64 of text", "sp-poll", hostInvocation(jsonString(base64.StdEncoding.EncodeToString([]byte("plain text"))), 1)},
		{"payload broken JSON in a string", "sp-poll", hostInvocation(jsonString(`{"kind":"sp_poll",`), 1)},
		{"payload missing credential", "sp-poll", hostInvocation(`{"kind":"sp_poll","org_id":"o","generation":1}`, 1)},
		{"payload unknown kind", "sp-poll", hostInvocation(`{"kind":"bogus","org_id":"o","credential_id":"c"}`, 1)},
		{"payload nested too deep", "sp-poll", hostInvocation(nested, 1)},
		{"body over 64 KiB", "sp-poll", hostInvocation(jsonString(strings.Repeat("A", MaxBodyBytes)), 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runner := &recordingRunner{}
			inv, logs := newTestInvoker(runner)
			rec := postInvocation(t, inv, tc.function, tc.body)
			out := checkInvocationResponse(t, rec, http.StatusOK)
			if !strings.Contains(out[0], "malformed") {
				t.Errorf("Logs %q: want it to say the message was dropped as malformed", out)
			}
			if n := len(runner.ran()); n != 0 {
				t.Errorf("runner ran %d jobs, want none", n)
			}
			recs := logs.records(t)
			if len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(recs[0]["msg"]), "malformed") {
				t.Errorf("log records %v, want one error about a malformed message", recs)
			}
		})
	}
}

// TestInvokerMetadata: the dequeue count and message id reach the log line whether the
// host writes the count as a number or a string.
func TestInvokerMetadata(t *testing.T) {
	for _, count := range []any{4, "4"} {
		inv, logs := newTestInvoker(&recordingRunner{})
		rec := postInvocation(t, inv, "sp-poll", hostInvocation(messageJSON(t, testJobs()[credential.JobSPPoll]), count))
		checkInvocationResponse(t, rec, http.StatusOK)
		recs := logs.records(t)
		if len(recs) != 1 || recs[0]["dequeue_count"] != float64(4) || recs[0]["message_id"] != "6a1d3c4e-8f7b-4c2a-9e1d-0b5f3a7c9d21" {
			t.Errorf("DequeueCount %#v: log records %v, want dequeue_count 4 and the message id", count, recs)
		}
	}
}

// TestInvokerProbeAndMethods: the host's start-up probe gets 200 at once; other methods
// on a function's path and unknown paths get JSON errors.
func TestInvokerProbeAndMethods(t *testing.T) {
	runner := &recordingRunner{}
	inv, _ := newTestInvoker(runner)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/sp-poll", http.StatusMethodNotAllowed},
		{http.MethodPut, "/app-cleanup", http.StatusMethodNotAllowed},
		{http.MethodPost, "/no-such-function", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		inv.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s %s: body %q is not JSON", tc.method, tc.path, rec.Body)
		}
	}
	if n := len(runner.ran()); n != 0 {
		t.Errorf("runner ran %d jobs, want none", n)
	}
}

// TestCompose: on the host's port, the functions' paths reach the Invoker and every
// other path the API, over a real server.
func TestCompose(t *testing.T) {
	runner := &recordingRunner{}
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(Compose(New(nil, nil, nil, nil, log), NewInvoker(runner, log)))
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	for _, fn := range NewInvoker(nil, log).Functions() {
		job := testJobs()[fn.Kind]
		status, body := do(http.MethodPost, "/"+fn.Function, hostInvocation(jsonString(jsonString(messageJSON(t, job))), 1))
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"Outputs":{}`)) {
			t.Errorf("POST /%s: %d %s, want the Invoker's 200", fn.Function, status, body)
		}
	}
	if got := runner.ran(); len(got) != 4 {
		t.Errorf("runner ran %d jobs, want 4", len(got))
	}
	if status, body := do(http.MethodGet, "/", ""); status != http.StatusOK || !bytes.Contains(body, []byte(`"ok"`)) {
		t.Errorf("GET /: %d %s, want 200", status, body)
	}
	if status, _ := do(http.MethodGet, "/openapi.json", ""); status != http.StatusOK {
		t.Errorf("GET /openapi.json: %d, want the API's 200", status)
	}
	if status, body := do(http.MethodGet, "/organizations/org-a/credentials", ""); status != http.StatusUnauthorized {
		t.Errorf("GET /organizations/org-a/credentials without a token: %d %s, want the API's 401", status, body)
	}
	if status, _ := do(http.MethodGet, "/no/such/path", ""); status != http.StatusNotFound {
		t.Errorf("GET /no/such/path: %d, want the API's 404", status)
	}
}
