package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingSweeper counts sweeps, signals each on swept, fails when err is set, and blocks
// in the sweep until release is closed when release is not nil.
type countingSweeper struct {
	mu      sync.Mutex
	n       int
	err     error
	swept   chan struct{}
	release chan struct{}
	active  bool
	overlap bool
}

func (s *countingSweeper) work(ctx context.Context) error {
	_, err := s.SweepHealth(ctx)
	return err
}

func (s *countingSweeper) SweepHealth(ctx context.Context) (int, error) {
	s.mu.Lock()
	if s.active {
		s.overlap = true
	}
	s.active = true
	s.n++
	s.mu.Unlock()
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	s.active = false
	s.mu.Unlock()
	s.swept <- struct{}{}
	return 3, s.err
}

// TestTickerSweepsUntilStopped: the ticker sweeps again after a failing sweep, never runs
// two at once, and Run returns when its context ends.
func TestTickerSweepsUntilStopped(t *testing.T) {
	s := &countingSweeper{err: errors.New("storage down"), swept: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Ticker{Name: "health-sweep", Work: s.work, Interval: 10 * time.Millisecond}).Run(ctx)
	}()
	for range 3 {
		select {
		case <-s.swept:
		case <-time.After(10 * time.Second):
			t.Fatal("the ticker stopped sweeping")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlap {
		t.Error("two sweeps ran at once")
	}
}

// TestTickerStopWaitsForSweep: a stop during a sweep returns only after the sweep did.
func TestTickerStopWaitsForSweep(t *testing.T) {
	s := &countingSweeper{swept: make(chan struct{}, 16), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Ticker{Name: "health-sweep", Work: s.work, Interval: 5 * time.Millisecond}).Run(ctx) }()
	for {
		s.mu.Lock()
		active := s.active
		s.mu.Unlock()
		if active {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-s.swept:
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep in flight did not see the stop")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTickerNeedsWorkAndInterval(t *testing.T) {
	work := (&countingSweeper{}).work
	for _, tk := range []*Ticker{{Name: "t", Interval: time.Second}, {Name: "t", Work: work}, {Work: work, Interval: time.Second},
		{Name: "t", Work: work, Interval: time.Second, Lease: &memLease{}}} {
		if err := tk.Run(context.Background()); err == nil {
			t.Errorf("%+v ran", tk)
		}
	}
}

// memLease is a Lease in memory, as the Table store's lease row behaves: one holder until
// its time runs out, renewable by the holder.
type memLease struct {
	mu     sync.Mutex
	holder string
	until  time.Time
}

func (l *memLease) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	l.holder, l.until = holder, now.Add(ttl)
	return true, nil
}

// TestTickersOfSeveralInstancesRunOncePerPeriod: three instances' tickers on one lease,
// ticking a minute apart each and out of step with one another: in every period exactly
// one runs the work, the same one while it lives; when it stops, another takes over
// within two periods and is then alone.
func TestTickersOfSeveralInstancesRunOncePerPeriod(t *testing.T) {
	lease := &memLease{}
	const interval = time.Minute
	runs := map[string]int{}
	tickers := map[string]*Ticker{}
	for _, h := range []string{"a", "b", "c"} {
		tickers[h] = &Ticker{Name: "reconcile", Interval: interval, Lease: lease, Holder: h, Work: func(context.Context) error {
			runs[h]++
			return nil
		}}
	}
	log := slog.New(slog.DiscardHandler)
	offsets := map[string]time.Duration{"a": 0, "b": 20 * time.Second, "c": 41 * time.Second}
	alive := map[string]bool{"a": true, "b": true, "c": true}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var ranIn []string // who ran, per period
	for period := range 20 {
		if period == 10 {
			alive["a"] = false
		}
		var who []string
		for _, h := range []string{"a", "b", "c"} {
			if alive[h] && tickers[h].once(context.Background(), t0.Add(time.Duration(period)*interval+offsets[h]), log) {
				who = append(who, h)
			}
		}
		ranIn = append(ranIn, strings.Join(who, ""))
	}
	want := []string{"a", "a", "a", "a", "a", "a", "a", "a", "a", "a"}
	if diff := cmp.Diff(want, ranIn[:10]); diff != "" {
		t.Errorf("periods 0-9 (-want +got):\n%s", diff)
	}
	// a's last renewal (9:00) holds until 10:30: b, ticking at 10:20, is refused, and c,
	// at 10:41, takes over.
	for i, who := range ranIn[10:] {
		if who != "c" {
			t.Errorf("period %d: %q ran, want c alone: %v", 10+i, who, ranIn)
		}
	}
}
