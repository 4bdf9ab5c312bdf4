package credential

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLimiterBurstThenRefill: a fresh bucket allows its burst at once, then refuses with
// the exact time to the next token, which arrives with the clock, one token at a time.
func TestLimiterBurstThenRefill(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(Rate{Count: 30, Per: time.Minute, Burst: 30})
	for i := range 30 {
		if wait, ok := l.take("org-a", now); !ok {
			t.Fatalf("create %d of the burst refused (wait %s)", i+1, wait)
		}
	}
	wait, ok := l.take("org-a", now)
	if ok || wait != 2*time.Second {
		t.Fatalf("31st at once: ok %v, wait %s; want refused, 2s", ok, wait)
	}
	// Another organization has its own bucket.
	if _, ok := l.take("org-b", now); !ok {
		t.Fatal("another organization was refused")
	}
	now = now.Add(time.Second)
	if wait, ok := l.take("org-a", now); ok || wait != time.Second {
		t.Fatalf("after 1 s: ok %v, wait %s; want refused, 1s", ok, wait)
	}
	now = now.Add(time.Second)
	if _, ok := l.take("org-a", now); !ok {
		t.Fatal("after 2 s the next token had not arrived")
	}
	if _, ok := l.take("org-a", now); ok {
		t.Fatal("one token arrived and two were spent")
	}
	// A quiet minute fills the bucket again, and no more than that.
	now = now.Add(time.Hour)
	for i := range 30 {
		if _, ok := l.take("org-a", now); !ok {
			t.Fatalf("after a quiet hour, create %d refused", i+1)
		}
	}
	if _, ok := l.take("org-a", now); ok {
		t.Fatal("a quiet hour filled the bucket beyond its burst")
	}
}

func TestLimiterBurstAboveRate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(Rate{Count: 1, Per: time.Second, Burst: 3})
	for range 3 {
		if _, ok := l.take("o", now); !ok {
			t.Fatal("burst refused")
		}
	}
	if wait, ok := l.take("o", now); ok || wait != time.Second {
		t.Fatalf("4th: ok %v wait %s", ok, wait)
	}
}

func TestLimiterOff(t *testing.T) {
	l := newLimiter(Rate{})
	for range 1000 {
		if _, ok := l.take("o", time.Time{}); !ok {
			t.Fatal("the zero Rate refused")
		}
	}
	if len(l.full) != 0 {
		t.Fatal("the zero Rate keeps buckets")
	}
}

// TestLimiterForgetsFullBuckets: memory follows the organizations that created recently.
func TestLimiterForgetsFullBuckets(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(Rate{Count: 30, Per: time.Minute, Burst: 30})
	for i := range minSweep - 1 {
		l.take(fmt.Sprintf("org-%d", i), now)
	}
	now = now.Add(time.Minute) // every bucket full again
	l.take("late", now)
	if len(l.full) != 1 {
		t.Fatalf("%d buckets kept, want only the one just used", len(l.full))
	}
}

func TestRateLimitError(t *testing.T) {
	err := error(&RateLimitError{Rate: Rate{Count: 30, Per: time.Minute, Burst: 30}, RetryAfter: 1500 * time.Millisecond})
	if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrConflict) {
		t.Fatal("a RateLimitError must match ErrRateLimited only")
	}
	want := "too many credentials created in this organization: at most 30 per minute (bursts of up to 30); retry in 2 s"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if s := (&RateLimitError{RetryAfter: time.Millisecond}).RetrySeconds(); s != 1 {
		t.Fatalf("RetrySeconds of 1 ms = %d, want 1", s)
	}
}
