package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Lease lets one of several instances do a timer's work in a period; store.Store's
// TryLease (a row with an ETag) is one.
type Lease interface {
	// TryLease takes the lease name for holder until now+ttl, when it is free, expired or
	// holder's already; it reports whether holder has it.
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
}

// leaseIntervals is how many intervals a ticker's lease lasts: its holder renews it every
// interval, and another instance takes over within two once the holder is gone.
const leaseIntervals = 1.5

// Ticker does a timer's work on an interval: the standalone twin of a timer function of
// the Functions host (queue.Timers: the health sweep, the reconciler), for `make run` and
// a handler run by itself. Both call the same work. The first run is one interval after
// the start, not at it, so a restart does not do it at once. A run that fails is logged;
// the next tick runs again. With a Lease, a run happens only while this instance (Holder)
// holds the lease named Name: of several instances one does the work per period, as the
// host runs a timer function on one instance.
type Ticker struct {
	Name     string // the timer function's name: logs and the lease
	Work     func(ctx context.Context) error
	Interval time.Duration
	Lease    Lease
	Holder   string
	Log      *slog.Logger
	now      func() time.Time // time.Now when nil
}

// Run does the work every t.Interval until ctx is done. Runs never overlap: one that
// takes longer than the interval delays the next tick. It returns once ctx is done and
// the run in flight, if any, has returned.
func (t *Ticker) Run(ctx context.Context) error {
	if t.Work == nil || t.Interval <= 0 || t.Name == "" || (t.Lease != nil && t.Holder == "") {
		return errors.New("ticker: a name, work and a positive interval are required (and a holder with a lease)")
	}
	log := t.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := t.now
	if now == nil {
		now = time.Now
	}
	log = log.With("timer", t.Name)
	log.InfoContext(ctx, "ticker started", "interval", t.Interval.String(), "leased", t.Lease != nil)
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.InfoContext(context.WithoutCancel(ctx), "ticker stopped")
			return nil
		case <-tick.C:
		}
		t.once(ctx, now(), log)
	}
}

// once does the work if this instance may this period: without a lease always, with one
// when it holds it at now.
func (t *Ticker) once(ctx context.Context, now time.Time, log *slog.Logger) bool {
	if t.Lease != nil {
		held, err := t.Lease.TryLease(ctx, t.Name, t.Holder, now, time.Duration(leaseIntervals*float64(t.Interval)))
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "timer lease not read; the next tick tries again", "err", err)
		}
		if !held {
			log.DebugContext(ctx, "another instance holds the timer's lease: not running this period")
			return false
		}
	}
	start := time.Now()
	if err := t.Work(ctx); err != nil && ctx.Err() == nil {
		log.ErrorContext(ctx, "timer work failed; the next tick runs again", "duration_ms", time.Since(start).Milliseconds(), "err", err)
	}
	return true
}
