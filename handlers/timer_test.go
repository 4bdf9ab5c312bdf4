package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// recordingSweeper counts sweeps and answers each with n probes, or err.
type recordingSweeper struct {
	mu    sync.Mutex
	calls int
	n     int
	err   error
}

func (s *recordingSweeper) SweepHealth(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.n, s.err
}

func (s *recordingSweeper) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// timerInvocation is the body the Functions host posts for a timer trigger whose binding
// "timer" received info (raw JSON).
func timerInvocation(info string) string {
	return `{"Data":{"timer":` + info + `},"Metadata":{"sys":{"MethodName":"health-sweep",` +
		`"UtcNow":"2026-11-23T12:15:00.0171285Z","RandGuid":"9d3c51a4-7b8e-4f6a-a1c2-3e4d5f6a7b8c"}}}`
}

const timerInfo = `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2026-11-23T12:00:00+00:00",` +
	`"Next":"2026-11-23T12:15:00+00:00","LastUpdated":"2026-11-23T12:00:00.0132455+00:00"},"IsPastDue":%v}`

// TestInvokerTimerSweeps: every shape of the host's timer invocation runs one sweep and is
// answered 200 in the host's shape, saying how many probes were scheduled.
func TestInvokerTimerSweeps(t *testing.T) {
	for name, tc := range map[string]struct {
		body    string
		pastDue bool
	}{
		"host payload":        {timerInvocation(fmt.Sprintf(timerInfo, false)), false},
		"past due":            {timerInvocation(fmt.Sprintf(timerInfo, true)), true},
		"info as a string":    {timerInvocation(jsonString(fmt.Sprintf(timerInfo, true))), true},
		"no timer info":       {`{"Data":{},"Metadata":{}}`, false},
		"empty body":          {"", false},
		"body that is no map": {"[1,2]", false},
	} {
		t.Run(name, func(t *testing.T) {
			sweeper := &recordingSweeper{n: 7}
			logs := &lockedBuffer{}
			inv := NewInvoker(nil, slog.New(slog.NewJSONHandler(logs, nil)), WithHealthSweep(sweeper))
			rec := postInvocation(t, inv, queue.HealthSweep.Function, tc.body)
			out := checkInvocationResponse(t, rec, http.StatusOK)
			if sweeper.count() != 1 {
				t.Fatalf("swept %d times, want once", sweeper.count())
			}
			if !strings.Contains(out[0], "scheduled 7 probe(s)") {
				t.Errorf("Logs %q: want the number of probes scheduled", out)
			}
			recs := logs.records(t)
			if len(recs) != 1 || recs[0]["probes"] != float64(7) || recs[0]["past_due"] != tc.pastDue || recs[0]["function"] != "health-sweep" {
				t.Errorf("log records %v, want one naming the function, 7 probes and past_due %v", recs, tc.pastDue)
			}
		})
	}
}

// TestInvokerTimerFailure: a failed sweep, and a timer function with no sweeper wired, are
// answered 500 in the host's shape with the failure's class and none of its text.
func TestInvokerTimerFailure(t *testing.T) {
	const secret = "sig=SECRETSASSIGNATURE"
	for name, inv := range map[string]*Invoker{
		"unavailable": NewInvoker(nil, slog.New(slog.DiscardHandler), WithHealthSweep(&recordingSweeper{n: 2,
			err: fmt.Errorf("list: %w", errors.Join(credential.ErrUnavailable, errors.New("GET https://x/?"+secret)))})),
		"no sweeper": NewInvoker(nil, slog.New(slog.DiscardHandler)),
	} {
		t.Run(name, func(t *testing.T) {
			rec := postInvocation(t, inv, queue.HealthSweep.Function, timerInvocation(fmt.Sprintf(timerInfo, false)))
			out := checkInvocationResponse(t, rec, http.StatusInternalServerError)
			joined := strings.Join(out, "\n")
			if strings.Contains(joined, "SECRET") || !strings.Contains(joined, "failed") {
				t.Errorf("Logs %q: want a short failure reason and no error text", out)
			}
			if name == "unavailable" && !strings.Contains(joined, "unavailable") {
				t.Errorf("Logs %q: want the failure's class", out)
			}
		})
	}
}

// TestInvokerTimerRouting: only POST runs the timer function, and Compose sends its path
// to the Invoker, not the API.
func TestInvokerTimerRouting(t *testing.T) {
	sweeper := &recordingSweeper{n: 1}
	log := slog.New(slog.DiscardHandler)
	h := Compose(New(nil, nil, nil, nil, log), NewInvoker(&recordingRunner{}, log, WithHealthSweep(sweeper)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+queue.HealthSweep.Function, nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
		t.Errorf("GET /%s: %d, Allow %q; want 405 allowing POST", queue.HealthSweep.Function, rec.Code, rec.Header().Get("Allow"))
	}
	checkInvocationResponse(t, postInvocation(t, h, queue.HealthSweep.Function, timerInvocation(fmt.Sprintf(timerInfo, false))), http.StatusOK)
	if sweeper.count() != 1 {
		t.Fatalf("swept %d times through Compose, want once", sweeper.count())
	}
}

// fakeReconciler answers every run with rep, or err.
type fakeReconciler struct {
	mu   sync.Mutex
	runs int
	rep  credential.ReconcileReport
	err  error
}

func (r *fakeReconciler) Reconcile(ctx context.Context) (credential.ReconcileReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs++
	return r.rep, r.err
}

// TestInvokerReconcileTimer: the reconcile timer function runs the reconciler once per
// invocation and says what it did; a failed run, or no reconciler wired, is answered 500.
func TestInvokerReconcileTimer(t *testing.T) {
	r := &fakeReconciler{rep: credential.ReconcileReport{Indexed: 12, Stale: 2, PastDeadline: 1, Poisoned: 3, FromPoison: 1, Closed: 4}}
	logs := &lockedBuffer{}
	inv := NewInvoker(nil, slog.New(slog.NewJSONHandler(logs, nil)), WithReconciler(r))
	out := checkInvocationResponse(t, postInvocation(t, inv, queue.Reconcile.Function, timerInvocation(fmt.Sprintf(timerInfo, false))), http.StatusOK)
	if r.runs != 1 || !strings.Contains(out[0], "12 open windows: 4 jobs scheduled, 3 poisoned messages handled, 4 index rows removed") {
		t.Fatalf("%d runs, Logs %q", r.runs, out)
	}
	if recs := logs.records(t); len(recs) != 1 || recs[0]["function"] != "reconcile" || recs[0]["scheduled"] != float64(4) {
		t.Errorf("log records %v", recs)
	}
	r.err = fmt.Errorf("read the index: %w", credential.ErrUnavailable)
	checkInvocationResponse(t, postInvocation(t, inv, queue.Reconcile.Function, timerInvocation(fmt.Sprintf(timerInfo, false))), http.StatusInternalServerError)
	checkInvocationResponse(t, postInvocation(t, NewInvoker(nil, slog.New(slog.DiscardHandler)), queue.Reconcile.Function, "{}"), http.StatusInternalServerError)
}
