package credential

import (
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/clocktest"
)

// TestRecentRowsBoundedAgedAndCopied: the table keeps at most its size, evicting the row
// used least recently; a row older than its time to live is gone; what it hands out and
// what it keeps are copies; a row without an ETag (a write whose answer named none) drops
// what was kept of it; forget drops one row.
func TestRecentRowsBoundedAgedAndCopied(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	rows := NewRecentRows(2, time.Minute, clock.Now)
	row := func(id string) *Credential {
		return &Credential{OrgID: "org", ID: id, ETag: "e-" + id, Progress: Progress{Checks: []Check{{Name: "write", Result: "pass"}}}}
	}
	rows.remember(row("a"))
	rows.remember(row("b"))
	if _, ok := rows.lookup("org", "a"); !ok {
		t.Fatal("a row just remembered is missing")
	}
	rows.remember(row("c")) // b is the least recently used
	if _, ok := rows.lookup("org", "b"); ok || rows.Len() != 2 {
		t.Fatalf("a full table kept its least recently used row (%d rows)", rows.Len())
	}
	got, ok := rows.lookup("org", "a")
	if !ok {
		t.Fatal("the row used last was evicted")
	}
	got.State, got.Progress.Checks[0].Result = StateVerified, "fail"
	if again, _ := rows.lookup("org", "a"); again.State != "" || again.Progress.Checks[0].Result != "pass" {
		t.Fatalf("a change to a row handed out reached the table: %+v", again)
	}
	kept := row("d")
	rows.remember(kept)
	kept.Progress.Checks[0].Result = "fail"
	if again, _ := rows.lookup("org", "d"); again.Progress.Checks[0].Result != "pass" {
		t.Fatal("a change to a remembered row after remember reached the table")
	}
	rows.remember(row("e"))
	noETag := row("e")
	noETag.ETag = ""
	rows.remember(noETag)
	if _, ok := rows.lookup("org", "e"); ok {
		t.Fatal("a row written without a known ETag is still remembered as it was before")
	}
	rows.forget("org", "d")
	if _, ok := rows.lookup("org", "d"); ok {
		t.Fatal("a forgotten row is still there")
	}
	rows.remember(row("f"))
	clock.Advance(time.Minute)
	if _, ok := rows.lookup("org", "f"); ok {
		t.Fatal("a row past its time to live was handed out")
	}
	if hits, misses := rows.Stats(); hits != 4 || misses != 4 {
		t.Fatalf("stats: %d hits, %d misses; want 4 and 4", hits, misses)
	}
}

// TestPassed: a job is passed when the row is at a later generation, or at its generation
// with more attempts counted than the job's, except a redelivery whose attempt the row
// counted last (it may have to schedule the next one again); a row at an earlier
// generation, or at the job's attempt, has not passed it.
func TestPassed(t *testing.T) {
	row := func(gen int64, attempts int) *Credential {
		return &Credential{Generation: gen, Progress: Progress{Attempts: attempts}}
	}
	job := func(gen int64, attempt, delivery int) Job {
		return Job{Generation: gen, Attempt: attempt, Delivery: delivery}
	}
	for _, tc := range []struct {
		name string
		row  *Credential
		job  Job
		want bool
	}{
		{"a later generation", row(3, 0), job(2, 5, 1), true},
		{"an earlier generation", row(1, 9), job(2, 0, 1), false},
		{"the job's attempt", row(2, 4), job(2, 4, 1), false},
		{"the attempt after, first delivery", row(2, 5), job(2, 4, 1), true},
		{"the attempt after, a redelivery", row(2, 5), job(2, 4, 2), false},
		{"two attempts after, a redelivery", row(2, 6), job(2, 4, 3), true},
		{"a backstop (attempt 0) after the first attempt", row(2, 1), job(2, 0, 0), true},
	} {
		if got := passed(tc.row, tc.job); got != tc.want {
			t.Errorf("%s: passed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
