package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Reconciler is the level-triggered safety net under the job chains. A window's attempts
// are a chain of queue messages, each scheduling the next; a message the queue loses, or
// sets aside after failing on every delivery, ends the chain. On a schedule the
// Reconciler reads the open-window index (rows the creates and submits write before they
// begin) and the poison queues, reads each indexed credential, and schedules the current
// generation's next job of every window that has stopped moving:
//
//   - an open window (sp_pending, or access_pending before it timed out) whose last attempt
//     is older than staleIntervals poll intervals, or whose deadline passed an interval ago
//     without its closing transition;
//   - a window whose job's message sits in a poison queue (the failure it met is shown on
//     the credential first);
//   - a create that never recorded its app, once its guard has had its time: the guard again;
//   - a deleted credential whose clean-up has not deleted its app (the clean-up removes the
//     row when it has), once the delete's own clean-up had its time: the clean-up again.
//
// A scheduled job carries the window's generation, deadline and the attempt the row
// expects, like the chain's own: when the chain was alive after all, whichever of the two
// runs second finds the attempt counted and is dropped, so there is never more than one
// chain per window. Index rows of work that has ended are removed as they are found.
type Reconciler struct {
	cfg     Config
	store   Store
	poison  PoisonQueue
	windows windows
	log     *slog.Logger
	now     func() time.Time
}

// NewReconciler returns the reconciler on its ports.
func NewReconciler(cfg Config, store Store, index WindowIndex, scheduler Scheduler, poison PoisonQueue, log *slog.Logger,
	opts ...Option) (*Reconciler, error) {
	if err := required("credential reconciler", map[string]any{"store": store, "window index": index,
		"scheduler": scheduler, "poison queue": poison, "log": log}); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	o := newOptions(opts)
	return &Reconciler{cfg: cfg, store: store, poison: poison, log: log, now: o.now,
		windows: windows{scheduler: scheduler, index: index, cfg: cfg, now: o.now, log: log}}, nil
}

// staleIntervals is how many poll intervals a window may go without an attempt before the
// reconciler takes its chain for lost: a live chain's next job is due one interval after
// the last attempt, and gets two more to be picked up.
const staleIntervals = 3

// maxPoisonedPerRun bounds the poisoned messages one reconciliation handles; the rest wait
// for the next.
const maxPoisonedPerRun = 100

// ReconcileReport counts what one reconciliation found and did.
type ReconcileReport struct {
	Indexed      int // rows of the open-window index
	Read         int // credentials read
	Stale        int // windows without an attempt for staleIntervals intervals: next job scheduled
	PastDeadline int // windows past their deadline without their closing transition: next job scheduled
	Guards       int // creates that never recorded their app: guard scheduled
	Cleanups     int // deleted credentials whose app was not cleaned up: clean-up scheduled
	Poisoned     int // poisoned messages handled and removed
	FromPoison   int // windows whose next job was scheduled because their job was poisoned
	Closed       int // index rows of ended work removed
	Failed       int // rows or messages left for the next reconciliation after an error
}

// Scheduled is how many jobs the reconciliation scheduled.
func (r ReconcileReport) Scheduled() int {
	return r.Stale + r.PastDeadline + r.Guards + r.Cleanups + r.FromPoison
}

// Reconcile runs once: the poison queues first (their windows are restarted at once), then
// every row of the open-window index. A row or message that fails is left for the next
// run; the error names how many, with the first cause.
func (r *Reconciler) Reconcile(ctx context.Context) (ReconcileReport, error) {
	now := r.now().UTC()
	var rep ReconcileReport
	var rows []OpenWindow
	err := r.windows.index.OpenWindows(ctx, func(w OpenWindow) error {
		rows = append(rows, w)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("reconcile: read the open-window index: %w", err)
	}
	rep.Indexed = len(rows)
	byCredential := make(map[string]OpenWindow, len(rows))
	for _, w := range rows {
		byCredential[w.OrgID+"/"+w.CredentialID] = w
	}
	var errs []error
	restarted := &keySet{keys: map[string]bool{}}
	if err := r.drainPoison(ctx, now, byCredential, restarted, &rep); err != nil {
		errs = append(errs, err)
	}
	var todo []OpenWindow
	for _, w := range rows {
		if !restarted.has(w.OrgID + "/" + w.CredentialID) {
			todo = append(todo, w)
		}
	}
	pass, perrs := inParallel(todo, func(w OpenWindow, rep *ReconcileReport) error {
		if err := r.reconcile(ctx, now, w, rep); err != nil {
			rep.Failed++
			return err
		}
		return nil
	})
	rep.add(pass)
	errs = append(errs, perrs...)
	attrs := []any{"indexed", rep.Indexed, "read", rep.Read, "stale", rep.Stale, "past_deadline", rep.PastDeadline,
		"guards", rep.Guards, "cleanups", rep.Cleanups, "poisoned", rep.Poisoned, "from_poison", rep.FromPoison, "closed", rep.Closed, "failed", rep.Failed}
	if len(errs) > 0 {
		return rep, fmt.Errorf("reconcile: %d left for the next run: %w", len(errs), errs[0])
	}
	r.log.InfoContext(ctx, "reconciled", attrs...)
	return rep, nil
}

// parallelism bounds the credentials and poisoned messages one reconciliation handles at
// once: a partition that answers slowly (its storage client retrying for seconds) holds up
// its own rows only, not the run.
const parallelism = 16

// inParallel runs fn for every item, parallelism at a time, each with a report of its
// own, and returns their sum and the errors.
func inParallel[T any](items []T, fn func(T, *ReconcileReport) error) (ReconcileReport, []error) {
	var (
		mu   sync.Mutex
		sum  ReconcileReport
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, parallelism)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var rep ReconcileReport
			err := fn(it, &rep)
			mu.Lock()
			defer mu.Unlock()
			sum.add(rep)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return sum, errs
}

// add adds o's counts to r's (but Indexed).
func (r *ReconcileReport) add(o ReconcileReport) {
	r.Read += o.Read
	r.Stale += o.Stale
	r.PastDeadline += o.PastDeadline
	r.Guards += o.Guards
	r.Cleanups += o.Cleanups
	r.Poisoned += o.Poisoned
	r.FromPoison += o.FromPoison
	r.Closed += o.Closed
	r.Failed += o.Failed
}

// keySet is a set of credential keys that goroutines share.
type keySet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (k *keySet) put(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[key] = true
}

func (k *keySet) has(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[key]
}

// reconcile looks at one indexed credential: it restarts a stopped window, guards an
// unfinished create, or removes the row of work that has ended.
func (r *Reconciler) reconcile(ctx context.Context, now time.Time, w OpenWindow, rep *ReconcileReport) error {
	c, err := r.store.Get(ctx, w.OrgID, w.CredentialID)
	if errors.Is(err, ErrNotFound) {
		// Deleted, or a create whose row is not written yet (or never was).
		return r.deleted(ctx, now, w, rep)
	}
	if err != nil {
		return fmt.Errorf("read credential %s: %w", w.CredentialID, err)
	}
	rep.Read++
	if c.Generation < w.Generation {
		// A submit is writing the window (or failed to).
		return r.closeAfterSettle(ctx, now, w, rep)
	}
	if kind, open := openWindow(c); open {
		interval := r.windows.interval(kind)
		switch {
		case now.After(c.Progress.Deadline.Add(interval)):
			rep.PastDeadline++
			return r.restart(ctx, now, c, kind, "its deadline passed without its closing transition")
		case now.Sub(lastActivity(c)) > staleIntervals*interval:
			rep.Stale++
			return r.restart(ctx, now, c, kind, "no attempt for three poll intervals")
		}
		return nil
	}
	if c.App.ObjectID == "" {
		// A create that never recorded its app: its guard deletes what it left, once the
		// guard's own job has had its time and half as long again.
		if now.Sub(c.CreatedAt) > r.cfg.CreateGuardDelay*3/2 {
			rep.Guards++
			r.log.WarnContext(ctx, "reconciler: a create never finished and its guard has not removed it; scheduling the guard again",
				"org", c.OrgID, "credential", c.ID, "created_at", c.CreatedAt)
			return r.windows.scheduler.Schedule(ctx, Job{Kind: JobAppCleanup, OrgID: c.OrgID, CredentialID: c.ID}, 0)
		}
		return nil
	}
	return r.close(ctx, w, rep)
}

// deleted looks at an indexed credential that is not there: a deleted one whose app its
// clean-up has not deleted yet (the clean-up removes the row when it has) gets a clean-up
// again, once the delete's own had its time; any other row goes once it settled.
func (r *Reconciler) deleted(ctx context.Context, now time.Time, w OpenWindow, rep *ReconcileReport) error {
	d, err := r.store.Tombstone(ctx, w.OrgID, w.CredentialID)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && d.App.ObjectID == "":
		return r.closeAfterSettle(ctx, now, w, rep)
	case err != nil:
		return fmt.Errorf("read the tombstone of credential %s: %w", w.CredentialID, err)
	}
	if now.Sub(w.OpenedAt) <= AppCleanupSettle*3/2 {
		return nil
	}
	rep.Cleanups++
	r.log.WarnContext(ctx, "reconciler: a deleted credential's app has not been cleaned up; scheduling its clean-up again",
		"org", w.OrgID, "credential", w.CredentialID, "app_object_id", d.App.ObjectID, "deleted_at", d.DeletedAt)
	return r.windows.scheduler.Schedule(ctx, Job{Kind: JobAppCleanup, OrgID: w.OrgID, CredentialID: w.CredentialID, AppObjectID: d.App.ObjectID}, 0)
}

// settle is how long an index row may wait for its credential to reach it: far longer
// than a create's or submit's write takes.
func (r *Reconciler) settle() time.Duration { return r.cfg.CreateGuardDelay }

func (r *Reconciler) closeAfterSettle(ctx context.Context, now time.Time, w OpenWindow, rep *ReconcileReport) error {
	if now.Sub(w.OpenedAt) <= r.settle() {
		return nil
	}
	return r.close(ctx, w, rep)
}

func (r *Reconciler) close(ctx context.Context, w OpenWindow, rep *ReconcileReport) error {
	if err := r.windows.index.CloseWindow(ctx, w); err != nil {
		return fmt.Errorf("remove the index row of credential %s: %w", w.CredentialID, err)
	}
	rep.Closed++
	return nil
}

// openWindow says which job kind c's open window runs; a window is open from its submit
// until its closing transition, or, for the access probe, until it timed out.
func openWindow(c *Credential) (JobKind, bool) {
	switch {
	case c.State == StateSPPending && c.Progress.Kind == WindowSPPoll:
		return JobSPPoll, true
	case c.State == StateAccessPending && c.Progress.Kind == WindowAccessProbe && c.Progress.Status != StatusTimedOut:
		return JobAccessProbe, true
	}
	return "", false
}

// lastActivity is when c's window last moved: its last attempt, or its start. Every
// attempt writes the row, so its UpdatedAt is at least the last attempt's time.
func lastActivity(c *Credential) time.Time {
	if c.UpdatedAt.After(c.Progress.StartedAt) {
		return c.UpdatedAt
	}
	return c.Progress.StartedAt
}

// restart schedules the current generation's next job of c's window, due now. It is the
// job the chain would have scheduled: a live chain's own makes one of the two a replay.
func (r *Reconciler) restart(ctx context.Context, now time.Time, c *Credential, kind JobKind, why string) error {
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation, Deadline: c.Progress.Deadline,
		Attempt: c.Progress.Attempts, IssuedAt: now}
	if err := r.windows.scheduler.Schedule(ctx, job, 0); err != nil {
		return fmt.Errorf("schedule the next %s of credential %s: %w", kind, c.ID, err)
	}
	r.log.InfoContext(ctx, "reconciler: window restarted", "why", why, "kind", kind, "org", c.OrgID, "credential", c.ID,
		"generation", c.Generation, "attempt", c.Progress.Attempts, "deadline", c.Progress.Deadline,
		"idle_ms", now.Sub(lastActivity(c)).Milliseconds())
	return nil
}

// drainPoison handles up to maxPoisonedPerRun poisoned messages. A message is removed once
// handled; one whose handling failed is released for the next run, and its window is not
// restarted by this one (the next meets the message first).
func (r *Reconciler) drainPoison(ctx context.Context, now time.Time, rows map[string]OpenWindow, restarted *keySet,
	rep *ReconcileReport) error {
	batch, err := r.poison.Poisoned(ctx, maxPoisonedPerRun)
	if err != nil {
		return fmt.Errorf("read the poison queues: %w", err)
	}
	pass, errs := inParallel(batch, func(p PoisonedJob, rep *ReconcileReport) error {
		if err := r.handlePoisoned(ctx, now, p, rows, restarted, rep); err != nil {
			again := errors.Is(err, errHandleAgain)
			if !again {
				rep.Failed++
			}
			restarted.put(p.Job.OrgID + "/" + p.Job.CredentialID)
			if rerr := r.poison.Release(ctx, p); rerr != nil {
				return errors.Join(err, fmt.Errorf("release poisoned message %s: %w", p.MessageID, rerr))
			}
			if again {
				return nil
			}
			return err
		}
		if err := r.poison.Remove(ctx, p); err != nil {
			rep.Failed++
			return fmt.Errorf("remove poisoned message %s from %s: %w", p.MessageID, p.Queue, err)
		}
		rep.Poisoned++
		return nil
	})
	rep.add(pass)
	return errors.Join(errs...)
}

// errHandleAgain is a poisoned message whose credential changed while it was handled: it
// is released, and the next run handles it on the row as it is then.
var errHandleAgain = errors.New("the credential changed while its poisoned job was handled")

// handlePoisoned logs a poisoned job at error level and takes its work up again: a
// window's failure is shown on the credential (what its last delivery noted in the index,
// else that the job failed on every delivery) and its next job scheduled; a clean-up is
// queued again, since an app registration depends on it; a health probe waits for the
// next sweep.
func (r *Reconciler) handlePoisoned(ctx context.Context, now time.Time, p PoisonedJob, rows map[string]OpenWindow,
	restarted *keySet, rep *ReconcileReport) error {
	if p.Err != nil {
		r.log.ErrorContext(ctx, "reconciler: removing a poisoned message that holds no job", "queue", p.Queue,
			"message_id", p.MessageID, "poisoned_at", p.PoisonedAt, "err", p.Err)
		return nil
	}
	job := p.Job
	r.log.ErrorContext(ctx, "reconciler: a job failed on every delivery and was set aside in its poison queue; taking its work up again",
		"queue", p.Queue, "message_id", p.MessageID, "poisoned_at", p.PoisonedAt, "kind", job.Kind, "org", job.OrgID,
		"credential", job.CredentialID, "generation", job.Generation, "attempt", job.Attempt, "app_object_id", job.AppObjectID)
	switch job.Kind {
	case JobAppCleanup:
		job.Delivery, job.RequestID = 0, ""
		return r.windows.scheduler.Schedule(ctx, job, 0)
	case JobHealthProbe:
		return nil
	}
	c, err := r.store.Get(ctx, job.OrgID, job.CredentialID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read credential %s of a poisoned job: %w", job.CredentialID, err)
	}
	kind, open := openWindow(c)
	if !open || kind != job.Kind || c.Generation != job.Generation || c.Progress.Attempts > job.Attempt+1 {
		r.log.InfoContext(ctx, "reconciler: a poisoned job's window moved on or closed since; its failure is history", "org", c.OrgID,
			"credential", c.ID, "state", c.State, "generation", c.Generation, "attempts", c.Progress.Attempts, "job_attempt", job.Attempt)
		return nil
	}
	key := job.OrgID + "/" + job.CredentialID
	problem := poisonedProblem(p)
	if f := rows[key].Failure; f.Kind == job.Kind && f.Generation == job.Generation && f.Attempt == job.Attempt && f.Problem.Message != "" {
		problem = f.Problem
	}
	if c.LastError != problem {
		c.LastError = problem
		c.UpdatedAt = now
		if err := r.store.Update(ctx, c, nil); err != nil {
			switch {
			case errors.Is(err, ErrNotFound):
				return nil // deleted meanwhile: its clean-up is queued
			case errors.Is(err, ErrConflict):
				// A job or a request moved the row: the next run sees whether the window
				// moved on or still shows nothing of the failure.
				return errHandleAgain
			}
			return fmt.Errorf("show the failure of a poisoned job on credential %s: %w", c.ID, err)
		}
	}
	r.log.InfoContext(ctx, "reconciler: a poisoned job's failure shown on its credential", "org", c.OrgID, "credential", c.ID,
		"last_error", problem.Message, "last_error_request_id", problem.RequestID, "noted", problem != poisonedProblem(p))
	if err := r.restart(ctx, now, c, kind, "its job was poisoned"); err != nil {
		return err
	}
	rep.FromPoison++
	restarted.put(key)
	return nil
}

// poisonedProblem is what a credential shows for a poisoned job whose last delivery left
// no note (it died, or could not write one): that it failed on every delivery, traced by
// the poisoned message's id.
func poisonedProblem(p PoisonedJob) Problem {
	return Problem{Code: string(StatusUnexpectedError), RequestID: p.MessageID,
		Message: "Background work failed on every try with an unexpected error (request id " + p.MessageID + ")"}
}
