// Package sweep runs the health sweep on an interval when no Azure Functions host runs the
// health-sweep timer function: the standalone twin of that timer, for `make run` and a
// handler run by itself. Both call the same sweep (credential.HealthMonitor.SweepHealth).
//
// The first sweep runs one interval after the start, not at it, so a restart does not
// probe the whole fleet at once. A sweep that fails is logged; the next tick sweeps again.
// Run returns once its context is done and the sweep in flight, if any, has returned.
package sweep

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sweeper schedules a health probe of every verified credential.
type Sweeper interface {
	SweepHealth(ctx context.Context) (int, error)
}

// Ticker calls a Sweeper every Interval.
type Ticker struct {
	Sweeper  Sweeper
	Interval time.Duration
	Log      *slog.Logger
}

// Run sweeps every t.Interval until ctx is done. Sweeps never overlap: a sweep that takes
// longer than the interval delays the next tick.
func (t *Ticker) Run(ctx context.Context) error {
	if t.Sweeper == nil || t.Interval <= 0 {
		return errors.New("sweep: a sweeper and a positive interval are required")
	}
	log := t.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.InfoContext(ctx, "health sweep ticker started", "interval", t.Interval.String())
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.InfoContext(context.WithoutCancel(ctx), "health sweep ticker stopped")
			return nil
		case <-tick.C:
		}
		start := time.Now()
		n, err := t.Sweeper.SweepHealth(ctx)
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "health sweep failed; the next tick sweeps again", "probes", n,
				"duration_ms", time.Since(start).Milliseconds(), "err", err)
		}
	}
}
