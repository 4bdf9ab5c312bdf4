package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// JobRunner runs one background job; credential.Runner is one. It returns an error only
// for a failure worth delivering the same message again.
type JobRunner interface {
	Run(ctx context.Context, job credential.Job) error
}

// HealthSweeper schedules a health re-probe of every verified credential; credential.HealthMonitor
// is one.
type HealthSweeper interface {
	SweepHealth(ctx context.Context) (int, error)
}

// Reconciler reconciles the background work once; credential.Reconciler is one.
type Reconciler interface {
	Reconcile(ctx context.Context) (credential.ReconcileReport, error)
}

// InvokerOption adjusts an Invoker.
type InvokerOption func(*Invoker)

// WithHealthSweep has the health-sweep timer function (queue.HealthSweep) run sweeper.
// Without it the function's invocations fail (500), which the host logs.
func WithHealthSweep(sweeper HealthSweeper) InvokerOption {
	return func(iv *Invoker) { iv.sweeper = sweeper }
}

// WithReconciler has the reconcile timer function (queue.Reconcile) run r. Without it the
// function's invocations fail (500).
func WithReconciler(r Reconciler) InvokerOption {
	return func(iv *Invoker) { iv.reconciler = r }
}

// WriteTimeout bounds how long the handler's server takes to answer a request or an
// invocation. It is longer than host.json's functionTimeout (a test holds it): a queue job
// that runs as long as the host lets it must still be able to answer, or the host counts a
// job that succeeded as failed.
const WriteTimeout = 130 * time.Second

// maxPayloadNesting bounds how many layers of JSON-string quoting and base64 the payload
// decoder peels off before it gives up.
const maxPayloadNesting = 8

// Invoker serves the Functions host's invocations of the queue-triggered functions, one per
// row of queue.JobQueues, and of the timer functions of queue.Timers: POST /<function> with
// {"Data":{"job":<message>},"Metadata":{...}}, answered with
// {"Outputs":{},"Logs":[...],"ReturnValue":null}.
//
// A 200 completes the message (the host deletes it); any other status fails the
// invocation, and the host delivers the message again until maxDequeueCount, then moves
// it to <queue>-poison. So a job that failed in a way worth retrying gets 500, and a
// message that can never be processed (malformed, or on the wrong queue) is logged at
// error level and answered 200: retrying cannot fix it, and a poison queue nobody reads
// would only hide it; the log line carries the evidence.
//
// The Invoker has no authentication: mount it only where the host alone can reach it
// (FUNCTIONS_CUSTOMHANDLER_PORT on 127.0.0.1), never on a public listener. The local stack's
// AZCREDS_LOCAL_INVOCATIONS, with which tests play the host, requires a loopback listener.
type Invoker struct {
	jobs       JobRunner
	sweeper    HealthSweeper
	reconciler Reconciler
	log        *slog.Logger
	byPath     map[string]queue.JobQueue
	timers     map[string]timerFunction
}

// timerFunction is a timer function and what one invocation of it does: a summary for the
// host's log, or the failure.
type timerFunction struct {
	queue.Timer
	run func(ctx context.Context) (summary string, attrs []any, err error)
}

// NewInvoker returns the adapter that runs the queue functions' jobs with jobs and the
// timer functions with what the options give it.
func NewInvoker(jobs JobRunner, log *slog.Logger, opts ...InvokerOption) *Invoker {
	iv := &Invoker{jobs: jobs, log: log, byPath: map[string]queue.JobQueue{}, timers: map[string]timerFunction{}}
	for _, o := range opts {
		o(iv)
	}
	for _, jq := range queue.JobQueues {
		iv.byPath["/"+jq.Function] = jq
	}
	for _, fn := range queue.Timers {
		var run func(ctx context.Context) (string, []any, error)
		switch fn {
		case queue.HealthSweep:
			run = iv.sweep
		case queue.Reconcile:
			run = iv.reconcile
		default:
			panic(fmt.Sprintf("handlers: timer function %s has no runner in the Invoker", fn.Function))
		}
		iv.timers["/"+fn.Function] = timerFunction{Timer: fn, run: run}
	}
	return iv
}

// sweep is one run of the health-sweep timer function.
func (iv *Invoker) sweep(ctx context.Context) (string, []any, error) {
	if iv.sweeper == nil {
		return "", nil, errors.New("no health sweeper is wired to this function")
	}
	n, err := iv.sweeper.SweepHealth(ctx)
	return fmt.Sprintf("health sweep scheduled %d probe(s)", n), []any{"probes", n}, err
}

// reconcile is one run of the reconcile timer function.
func (iv *Invoker) reconcile(ctx context.Context) (string, []any, error) {
	if iv.reconciler == nil {
		return "", nil, errors.New("no reconciler is wired to this function")
	}
	r, err := iv.reconciler.Reconcile(ctx)
	return fmt.Sprintf("reconciled %d open windows: %d jobs scheduled, %d poisoned messages handled, %d index rows removed",
			r.Indexed, r.Scheduled(), r.Poisoned, r.Closed),
		[]any{"indexed", r.Indexed, "scheduled", r.Scheduled(), "poisoned", r.Poisoned, "closed", r.Closed, "left", r.Failed}, err
}

// Functions lists the queue functions the Invoker serves: the job table's rows.
func (iv *Invoker) Functions() []queue.JobQueue { return slices.Clone(queue.JobQueues) }

// Timers lists the timer functions the Invoker serves.
func (iv *Invoker) Timers() []queue.Timer { return slices.Clone(queue.Timers) }

// ServeHTTP answers GET / (the host's start-up probe) and the functions' invocations.
func (iv *Invoker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn, isQueue := iv.byPath[r.URL.Path]
	timer, isTimer := iv.timers[r.URL.Path]
	if (isQueue || isTimer) && r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, "", fail(http.StatusMethodNotAllowed, codeMethod, "method %s is not allowed here; allowed: POST", r.Method))
		return
	}
	if isQueue {
		iv.invoke(w, r, fn)
		return
	}
	if isTimer {
		iv.tick(w, r, timer)
		return
	}
	if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	writeError(w, "", fail(http.StatusNotFound, codeNotFound, "no such endpoint"))
}

// owns says whether path is one of the functions' invocation paths.
func (iv *Invoker) owns(path string) bool {
	_, queue := iv.byPath[path]
	_, timer := iv.timers[path]
	return queue || timer
}

// Compose is the handler for the Functions host's port: the queue and timer functions'
// invocation paths (POST /<function>, any method answered) go to inv, everything else to api, which
// answers the host's GET / probe itself. TestFunctionsMatchRoutes keeps the API off the
// invocation paths. Standalone, serve the API alone: nothing but the host may invoke.
func Compose(api http.Handler, inv *Invoker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inv.owns(r.URL.Path) {
			inv.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// invocationResponse is the custom handler's answer to the host. Logs go to the host's
// function log: short, and never a secret.
type invocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// invocation is what one delivery is known by, for the log line.
type invocation struct {
	messageID    string
	dequeueCount int64
	job          credential.Job
	decoded      bool
}

// malformed is the error of a delivery that no retry can fix; it matches queue.ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", queue.ErrMalformed, fmt.Sprintf(format, args...))
}

// invoke runs one delivery and maps its outcome: done or malformed 200, failed 500.
func (iv *Invoker) invoke(w http.ResponseWriter, r *http.Request, fn queue.JobQueue) {
	start := time.Now()
	id := uuid.NewString()
	w.Header().Set("X-Request-Id", id)
	ctx := context.WithValue(r.Context(), requestIDKey, id)
	var inv invocation
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return iv.deliver(ctx, w, r, fn, &inv)
	}()
	attrs := []any{"request_id", id, "function", fn.Function, "queue", fn.Queue, "message_id", inv.messageID,
		"dequeue_count", inv.dequeueCount, "duration_ms", time.Since(start).Milliseconds()}
	if inv.decoded {
		attrs = append(attrs, "kind", inv.job.Kind, "org", inv.job.OrgID, "credential", inv.job.CredentialID,
			"generation", inv.job.Generation, "attempt", inv.job.Attempt)
	}
	resp := invocationResponse{Outputs: map[string]any{}, Logs: []string{}}
	status := http.StatusOK
	switch {
	case err == nil:
		iv.log.InfoContext(ctx, "queue job done", attrs...)
		resp.Logs = append(resp.Logs, fmt.Sprintf("%s job for credential %s done (dequeue count %d)",
			inv.job.Kind, inv.job.CredentialID, inv.dequeueCount))
	case errors.Is(err, queue.ErrMalformed):
		iv.log.ErrorContext(ctx, "dropping a malformed queue message: no retry can fix it", append(attrs, "err", err)...)
		resp.Logs = append(resp.Logs, fmt.Sprintf("dropped a malformed message on %s: %v (request id %s)", fn.Queue, err, id))
	default:
		status = http.StatusInternalServerError
		iv.log.ErrorContext(ctx, "queue job failed; the host delivers the message again", append(attrs, "err", err)...)
		resp.Logs = append(resp.Logs, fmt.Sprintf("%s job failed (%s); the host retries it (request id %s)",
			fn.Kind, failureClass(err), id))
	}
	writeJSON(w, status, resp)
}

// failureClass names a failure for the host's log without its details, which may carry
// provider text; the details are in our own log under the request id.
func failureClass(err error) string {
	switch {
	case errors.Is(err, credential.ErrUnavailable):
		return "an Azure service was unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timed out or cancelled"
	}
	return "internal error"
}

// deliver reads the host's invocation, decodes the message and runs its job.
func (iv *Invoker) deliver(ctx context.Context, w http.ResponseWriter, r *http.Request, fn queue.JobQueue, inv *invocation) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return malformed("invocation body is larger than %d bytes", MaxBodyBytes)
		}
		return fmt.Errorf("read the invocation body: %w", err)
	}
	var req struct {
		Data     map[string]json.RawMessage `json:"Data"`
		Metadata map[string]json.RawMessage `json:"Metadata"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return malformed("invocation body is not the host's JSON object: %s", describeJSONError(err))
	}
	inv.messageID, inv.dequeueCount = invocationMetadata(req.Metadata)
	raw, ok := req.Data[fn.Binding]
	if !ok {
		return malformed("invocation has no Data.%s (the trigger binding's name)", fn.Binding)
	}
	job, err := decodePayload(raw)
	if err != nil {
		return err
	}
	job.Delivery, job.RequestID = int(inv.dequeueCount), RequestID(ctx)
	inv.job, inv.decoded = job, true
	if job.Kind != fn.Kind {
		return malformed("a %s job arrived on the %s queue (function %s)", job.Kind, fn.Queue, fn.Function)
	}
	if err := iv.jobs.Run(ctx, job); err != nil {
		return fmt.Errorf("run %s job for credential %s: %w", job.Kind, job.CredentialID, err)
	}
	return nil
}

// invocationMetadata reads the message id and dequeue count from the trigger metadata,
// leniently: they only label the log line. The host writes DequeueCount as a number;
// a string is taken too.
func invocationMetadata(md map[string]json.RawMessage) (id string, dequeueCount int64) {
	_ = json.Unmarshal(md["Id"], &id)
	raw := bytes.TrimSpace(md["DequeueCount"])
	if err := json.Unmarshal(raw, &dequeueCount); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			dequeueCount, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		}
	}
	return id, dequeueCount
}

// decodePayload reads a job from the trigger's payload, which the host may hand over as
// the message's JSON object, as a JSON string holding that JSON (quoted once or more), or
// as a string of base64 of the JSON (a host with messageEncoding none passes the stored
// body through). It peels at most maxPayloadNesting layers.
func decodePayload(raw []byte) (credential.Job, error) {
	b := bytes.TrimSpace(raw)
	for range maxPayloadNesting {
		switch {
		case len(b) == 0:
			return credential.Job{}, malformed("empty payload")
		case b[0] == '{':
			return queue.DecodeJSON(b)
		case b[0] == '"':
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return credential.Job{}, malformed("payload is not a valid JSON string: %s", describeJSONError(err))
			}
			s = strings.TrimSpace(s)
			if strings.HasPrefix(s, "{") || strings.HasPrefix(s, `"`) {
				b = []byte(s)
				continue
			}
			dec, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return credential.Job{}, malformed("payload string is neither JSON nor base64")
			}
			b = bytes.TrimSpace(dec)
		default:
			return credential.Job{}, malformed("payload is neither a JSON object nor a string")
		}
	}
	return credential.Job{}, malformed("payload is nested more than %d levels deep", maxPayloadNesting)
}

// tick runs one invocation of a timer function: the host's payload
// ({"Data":{"<binding>":{"Schedule":{...},"ScheduleStatus":{...},"IsPastDue":false}},
// "Metadata":{...}}) only labels the log line, and the function's work runs whatever it
// holds. A failed run is answered 500 so the host records the failure; the host does not
// retry a timer, and the next tick runs again.
func (iv *Invoker) tick(w http.ResponseWriter, r *http.Request, fn timerFunction) {
	start := time.Now()
	id := uuid.NewString()
	w.Header().Set("X-Request-Id", id)
	ctx := context.WithValue(r.Context(), requestIDKey, id)
	pastDue := timerPastDue(w, r, fn.Binding)
	attrs := []any{"request_id", id, "function", fn.Function, "past_due", pastDue}
	resp := invocationResponse{Outputs: map[string]any{}, Logs: []string{}}
	summary, more, err := func() (summary string, more []any, err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return fn.run(ctx)
	}()
	attrs = append(append(attrs, more...), "duration_ms", time.Since(start).Milliseconds())
	if err != nil {
		iv.log.ErrorContext(ctx, "timer function failed; the next tick runs again", append(attrs, "err", err)...)
		resp.Logs = append(resp.Logs, fmt.Sprintf("%s failed (%s; request id %s); so far: %s", fn.Function, failureClass(err), id, summary))
		writeJSON(w, http.StatusInternalServerError, resp)
		return
	}
	iv.log.InfoContext(ctx, "timer function done", attrs...)
	resp.Logs = append(resp.Logs, summary)
	writeJSON(w, http.StatusOK, resp)
}

// timerPastDue reads IsPastDue from a timer invocation, leniently: the payload may be
// missing, malformed, or the timer info quoted as a JSON string.
func timerPastDue(w http.ResponseWriter, r *http.Request, binding string) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return false
	}
	var req struct {
		Data map[string]json.RawMessage `json:"Data"`
	}
	if json.Unmarshal(data, &req) != nil {
		return false
	}
	raw := bytes.TrimSpace(req.Data[binding])
	var quoted string
	if json.Unmarshal(raw, &quoted) == nil {
		raw = []byte(quoted)
	}
	var info struct {
		IsPastDue bool `json:"IsPastDue"`
	}
	_ = json.Unmarshal(raw, &info)
	return info.IsPastDue
}
