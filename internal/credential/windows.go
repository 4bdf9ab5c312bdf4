package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// windows schedules the jobs of the two waiting windows (the service principal poll and
// the access probe): a window's index row, its first job and its backstop when a submit
// starts it, each following attempt, and their spacing. Onboarding, Jobs and the
// Reconciler share it.
type windows struct {
	scheduler Scheduler
	index     WindowIndex
	cfg       Config
	now       func() time.Time
	log       *slog.Logger
}

// interval spaces the attempts of a windowed job kind.
func (w windows) interval(kind JobKind) time.Duration {
	if kind == JobAccessProbe {
		return w.cfg.AccessProbeInterval
	}
	return w.cfg.SPPollInterval
}

// open writes c's row of the open-window index before a create (generation 0) or a
// submit (the generation it gives c) writes c: from then on the reconciler watches it.
// Failing here fails the command before anything changed.
func (w windows) open(ctx context.Context, c *Credential, generation int64) error {
	row := OpenWindow{OrgID: c.OrgID, CredentialID: c.ID, Generation: generation, OpenedAt: w.now().UTC()}
	if err := w.index.OpenWindow(ctx, row); err != nil {
		return fmt.Errorf("index the background work of credential %s: %w", c.ID, errors.Join(ErrUnavailable, err))
	}
	return nil
}

// start hands the first job of a new window to the workers. It runs after the row is
// written, so the job finds its generation. When it fails, the backstop queued before
// the write starts the window a little later.
func (w windows) start(ctx context.Context, c *Credential, kind JobKind) {
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation, Deadline: c.Progress.Deadline}
	if err := w.scheduler.Schedule(ctx, job, 0); err != nil {
		w.log.WarnContext(ctx, "first job of a window not queued; its backstop starts the window", "kind", kind,
			"org", c.OrgID, "credential", c.ID, "generation", c.Generation, "backstop", w.backstopDelay(kind).String(), "err", err)
	}
}

// backstop queues, before a submit writes its new window, a delayed copy of the window's
// first job (the generation the write will give it, attempt 0). Should the process die
// between the write and start, or start's job fail to queue, the copy starts the window
// late instead of never. When the first job did run, the copy finds the attempt counted
// and is dropped as a replay; when the write fails, the copy's generation never comes,
// or is another submit's whose own first job counts the attempt first. Failing here
// fails the submit before anything changed.
func (w windows) backstop(ctx context.Context, c *Credential, kind JobKind, deadline time.Time) error {
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation + 1, Deadline: deadline}
	if err := w.scheduler.Schedule(ctx, job, w.backstopDelay(kind)); err != nil {
		return fmt.Errorf("start %s for credential %s: %w", kind, c.ID, errors.Join(ErrUnavailable, err))
	}
	return nil
}

// backstopDelay leaves the window's first job, queued right after the write, time to run,
// and the write itself time to finish: a write whose answer was lost is retried by the
// storage SDK for several seconds, and a backstop that moved the row meanwhile would make
// the retry's check find someone else's write and report a conflict for a submit that
// landed.
func (w windows) backstopDelay(kind JobKind) time.Duration {
	if w.cfg.WindowBackstop > 0 {
		return w.cfg.WindowBackstop
	}
	return max(time.Minute, 3*w.interval(kind))
}

// next schedules the window's following attempt, due after its interval but never after
// the deadline, so the last attempt lands on it.
func (w windows) next(ctx context.Context, c *Credential, kind JobKind) error {
	delay := min(w.interval(kind), max(c.Progress.Deadline.Sub(w.now()), 0))
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation,
		Deadline: c.Progress.Deadline, Attempt: c.Progress.Attempts}
	if err := w.scheduler.Schedule(ctx, job, delay); err != nil {
		return fmt.Errorf("schedule the next %s of credential %s: %w", kind, c.ID, err)
	}
	return nil
}
