package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
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
	go func() { done <- (&Ticker{Sweeper: s, Interval: 10 * time.Millisecond}).Run(ctx) }()
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
	go func() { done <- (&Ticker{Sweeper: s, Interval: 5 * time.Millisecond}).Run(ctx) }()
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

func TestTickerNeedsSweeperAndInterval(t *testing.T) {
	for _, tk := range []*Ticker{{Interval: time.Second}, {Sweeper: &countingSweeper{}}} {
		if err := tk.Run(context.Background()); err == nil {
			t.Errorf("%+v ran", tk)
		}
	}
}
