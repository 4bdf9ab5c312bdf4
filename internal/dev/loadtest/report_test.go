package loadtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// oldReport is a report as `loadtest onboard -json` wrote it before the per-request
// fields and the /creds levels: one /creds run and one GET credential run.
const oldReport = `{
  "onboarding": {"credentials": 100, "verified": 100, "failed": 0, "errors": 0, "final_states": {"verified": 100},
    "submitted_ns": 1000000000, "all_verified_ns": 2000000000, "lists": 20, "list_misses": 0, "list_missed": 0},
  "handler_cpu_ns": 2500000000,
  "handler_peak_rss_bytes": 100000000,
  "storage": {"services": {"table": {"requests": 2000, "forwarded": 2000, "operations": {"GET entity": 2000}},
    "queue": {"requests": 1220, "forwarded": 1220, "operations": {"POST messages": 1220}}}},
  "steady": [
    {"name": "POST /api/org/{ws}/ds/{table}/creds", "result": {"concurrency": 64, "requests": 9000, "warmup_requests": 1000,
      "rps": 150, "p50_ns": 5000000, "p99_ns": 20000000}, "handler_cpu_ns": 1280000000,
      "storage": {"services": {"table": {"requests": 40}}}},
    {"name": "GET /organizations/{org}/credentials/{id}", "result": {"concurrency": 64, "requests": 900, "warmup_requests": 100,
      "rps": 15, "p50_ns": 90000000, "p99_ns": 160000000}, "handler_cpu_ns": 700000000,
      "storage": {"services": {"table": {"requests": 2010}}}}
  ]
}`

// TestReportReadsOlderReports: a report without the per-request fields gives the same
// figures from its counts, and what it lacks is reported missing, not zero.
func TestReportReadsOlderReports(t *testing.T) {
	var r Report
	if err := json.Unmarshal([]byte(oldReport), &r); err != nil {
		t.Fatal(err)
	}
	if tx, ok := r.TransactionsPerOnboarding(); !ok || tx != 32.2 {
		t.Errorf("transactions per onboarding %v %v, want 32.2", tx, ok)
	}
	if cpu, ok := r.CPUPerOnboarding(); !ok || cpu != 25*time.Millisecond {
		t.Errorf("CPU per onboarding %v %v", cpu, ok)
	}
	creds, ok := r.Run(CredsRun, 64)
	if !ok {
		t.Fatal("no /creds run at 64")
	}
	// CPU over the run, warm-up included, per request served (warm-up included).
	if cpu, ok := creds.CPUPerRequest(); !ok || cpu != 128*time.Microsecond {
		t.Errorf("/creds CPU per request %v %v, want 128µs", cpu, ok)
	}
	detail, ok := r.Run(DetailRun, 64)
	if !ok {
		t.Fatal("no GET credential run at 64")
	}
	if tx, ok := detail.TransactionsPerRequest(); !ok || tx != 2.01 {
		t.Errorf("GET credential transactions per request %v %v, want 2.01", tx, ok)
	}
	if _, ok := r.Run(CredsRun, 1); ok {
		t.Error("a /creds run at 1 connection in a report that has none")
	}
	if r.Profiled != nil || r.ProfileFile != "" {
		t.Error("a profile in a report that has none")
	}
}

// TestReportRoundTrip: the per-request figures are written for readers of the JSON, and
// a report without counts has no figures rather than zeros.
func TestReportRoundTrip(t *testing.T) {
	var r Report
	r.AddSteady(SteadyRun{Name: CredsRun, Result: Result{Concurrency: 16, Requests: 90, WarmupRequests: 10},
		HandlerCPU: 5 * time.Millisecond, Storage: &faultproxy.Stats{Services: map[faultproxy.Service]faultproxy.ServiceStats{"table": {Requests: 3}}}})
	r.AddSteady(SteadyRun{Name: DetailRun, Result: Result{Concurrency: 64, Requests: 10}})
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	s := back.Steady[0]
	if s.HandlerCPUPerRequest != 50*time.Microsecond || s.StoragePerRequest == nil || *s.StoragePerRequest != 0.03 {
		t.Errorf("per request: %v, %v", s.HandlerCPUPerRequest, s.StoragePerRequest)
	}
	d := back.Steady[1]
	if _, ok := d.CPUPerRequest(); ok || d.StoragePerRequest != nil {
		t.Errorf("a run without CPU or storage counts has figures: %+v", d)
	}
	if _, ok := back.TransactionsPerOnboarding(); ok {
		t.Error("transactions per onboarding without counts")
	}
	if _, ok := back.CPUPerOnboarding(); ok {
		t.Error("CPU per onboarding without a measurement")
	}
}
