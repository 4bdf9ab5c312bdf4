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
