package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/loadtest"
)

// olderReport is a report of a load generator from before the /creds levels and the
// per-request fields: /creds and GET credential at 64 connections only.
const olderReport = `{
  "onboarding": {"credentials": 1000, "verified": 1000},
  "handler_cpu_ns": 28700000000,
  "storage": {"services": {"table": {"requests": 16950}, "queue": {"requests": 10260}, "blob": {"requests": 5000}}},
  "steady": [
    {"name": "POST /api/org/{ws}/ds/{table}/creds", "result": {"concurrency": 64, "requests": 609996, "warmup_requests": 0,
      "rps": 10166, "p50_ns": 5100000, "p99_ns": 22500000}, "handler_cpu_ns": 78077000000},
    {"name": "GET /organizations/{org}/credentials/{id}", "result": {"concurrency": 64, "requests": 41808, "warmup_requests": 0,
      "rps": 696, "p50_ns": 90000000, "p99_ns": 164000000}, "handler_cpu_ns": 29300000000,
      "storage": {"services": {"table": {"requests": 84000}}}}
  ]
}`

// newReport builds a report as the current load generator writes it, scaled by f.
func newReport(f float64) loadtest.Report {
	r := loadtest.Report{Onboarding: loadtest.OnboardingResult{Credentials: 100},
		HandlerCPU: time.Duration(f * float64(2*time.Second)),
		Storage:    &faultproxy.Stats{Services: map[faultproxy.Service]faultproxy.ServiceStats{"table": {Requests: int64(2400 * f)}}}}
	for _, c := range []int{1, 16, 64} {
		r.AddSteady(loadtest.SteadyRun{Name: loadtest.CredsRun,
			Result:     loadtest.Result{Concurrency: c, Requests: 1000, RPS: 100 * f, P50: time.Duration(f * float64(time.Millisecond)), P99: 4 * time.Millisecond},
			HandlerCPU: time.Duration(f * float64(100*time.Millisecond))})
	}
	r.AddSteady(loadtest.SteadyRun{Name: loadtest.DetailRun, Result: loadtest.Result{Concurrency: 64, Requests: 500, RPS: 50},
		HandlerCPU: time.Second, Storage: &faultproxy.Stats{Services: map[faultproxy.Service]faultproxy.ServiceStats{"table": {Requests: int64(1000 * f)}}}})
	return r
}

func rowOf(t *testing.T, c comparison, group, name string) row {
	t.Helper()
	for _, r := range c.rows {
		if r.group == group && r.name == name {
			return r
		}
	}
	t.Fatalf("no row %s / %s", group, name)
	return row{}
}

// TestCompareReports: the figures of each side are medians over its runs, the ratio is
// after over before, and the rows cover /creds at each level, GET credential and the
// onboarding.
func TestCompareReports(t *testing.T) {
	before := []loadtest.Report{newReport(1), newReport(3), newReport(2)} // median 2
	after := []loadtest.Report{newReport(1)}
	c := compareReports(before, after, []int{1, 16, 64}, 64)
	if len(c.rows) != 3*4+4+2 || len(c.notes) != 0 {
		t.Fatalf("%d rows, notes %v", len(c.rows), c.notes)
	}
	for _, tc := range []struct {
		group, name          string
		before, after, ratio float64
	}{
		{"/creds, c=1", "req/s", 200, 100, 0.5},
		{"/creds, c=16", "p50 ms", 2, 1, 0.5},
		{"/creds, c=64", "p99 ms", 4, 4, 1},
		{"/creds, c=64", "handler CPU µs/request", 200, 100, 0.5},
		{"GET credential, c=64", "storage transactions/request", 4, 2, 0.5},
		{"onboarding", "storage transactions/onboarding", 48, 24, 0.5},
		{"onboarding", "handler CPU ms/onboarding", 40, 20, 0.5},
	} {
		r := rowOf(t, c, tc.group, tc.name)
		if r.before.median != tc.before || r.after.median != tc.after || !r.hasRatio || r.ratio != tc.ratio {
			t.Errorf("%s %s: before %+v after %+v ratio %v", tc.group, tc.name, r.before, r.after, r.ratio)
		}
	}
	if r := rowOf(t, c, "/creds, c=1", "req/s"); r.before.min != 100 || r.before.max != 300 || r.before.n != 3 {
		t.Errorf("range %+v", r.before)
	}
	out := formatComparison(c)
	if !strings.Contains(out, "200 (100-300)") || !strings.Contains(out, "0.50") {
		t.Errorf("table:\n%s", out)
	}
}

// TestCompareOlderReport: a ref whose load generator wrote the older report is compared
// on what it has (/creds and GET credential at 64 connections, the onboarding), and what
// it lacks is named, not shown as zero.
func TestCompareOlderReport(t *testing.T) {
	var old loadtest.Report
	if err := json.Unmarshal([]byte(olderReport), &old); err != nil {
		t.Fatal(err)
	}
	c := compareReports([]loadtest.Report{old}, []loadtest.Report{newReport(1)}, []int{1, 16, 64}, 64)
	r := rowOf(t, c, "/creds, c=64", "handler CPU µs/request")
	if r.before.n != 1 || r.before.median < 127.9 || r.before.median > 128.1 || !r.hasRatio {
		t.Errorf("/creds CPU per request of the older report: %+v", r)
	}
	if r := rowOf(t, c, "GET credential, c=64", "storage transactions/request"); r.before.median < 2.0 || r.before.median > 2.01 {
		t.Errorf("GET credential transactions per request: %+v", r.before)
	}
	if r := rowOf(t, c, "onboarding", "storage transactions/onboarding"); r.before.median != 32.21 {
		t.Errorf("transactions per onboarding: %+v", r.before)
	}
	if r := rowOf(t, c, "/creds, c=1", "req/s"); r.before.n != 0 || r.hasRatio {
		t.Errorf("a figure the older report lacks: %+v", r)
	}
	if want := []string{"before: no /creds run at c=1", "before: no /creds run at c=16"}; !slices.Equal(c.notes, want) {
		t.Errorf("notes %q, want %q", c.notes, want)
	}
	if out := formatComparison(c); !strings.Contains(out, "missing") {
		t.Errorf("table:\n%s", out)
	}
	// A run without the handler's CPU lacks only that figure.
	noCPU := newReport(1)
	noCPU.Steady[0].HandlerCPU = 0
	c = compareReports([]loadtest.Report{newReport(1), noCPU}, []loadtest.Report{newReport(1)}, []int{1}, 64)
	if want := []string{"before run 2: /creds at c=1: no handler CPU measured"}; !slices.Equal(c.notes, want) {
		t.Errorf("notes %q, want %q", c.notes, want)
	}
	if r := rowOf(t, c, "/creds, c=1", "handler CPU µs/request"); r.before.n != 1 || !r.hasRatio {
		t.Errorf("a figure one of two runs has: %+v", r)
	}
}

func TestStatOf(t *testing.T) {
	if s := statOf([]float64{4, 1, 3, 2}); s.median != 2.5 || s.min != 1 || s.max != 4 || s.n != 4 {
		t.Errorf("%+v", s)
	}
	if s := statOf(nil); s.n != 0 {
		t.Errorf("%+v", s)
	}
}

// TestUntar: the export writes files (with their executable bit), directories and links,
// and refuses names outside the tree.
func TestUntar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}}, "")
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "cmd/", Mode: 0o755}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "cmd/x.go", Mode: 0o644}, "package x\n")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "scripts/dev.sh", Mode: 0o755}, "#!/bin/sh\n")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "cmd/x.go"}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := untar(bytes.NewReader(buf.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "link")); err != nil || string(b) != "package x\n" {
		t.Errorf("link: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "scripts/dev.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("dev.sh: %v %v", fi, err)
	}

	for _, name := range []string{"../escape", "/abs"} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644})
		_ = tw.Close()
		if err := untar(&b, t.TempDir()); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestShort(t *testing.T) {
	if got := short("53a21be0a1b2c3d4e5f60718293a4b5c6d7e8f90"); got != "53a21be0a1b2" {
		t.Errorf("short = %s", got)
	}
	if got := short("main~1"); got != "main~1" {
		t.Errorf("short(main~1) = %s", got)
	}
}
