package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Jobs runs the background jobs of onboarding: the service principal poll and the access
// probe (one attempt each, then the next one scheduled until the window ends), and the
// app clean-up: a delete's (the links of its unlocked workspaces, then its app) and a
// create's guard (an app that a create left behind). Every job is idempotent: a stale,
// replayed or redelivered one changes nothing, or reschedules what a delivery that died
// did not.
type Jobs struct {
	cfg         Config
	store       Store
	workspaces  WorkspaceStore
	directory   Directory
	finder      Finder
	prober      Prober
	scheduler   Scheduler
	windows     windows
	transitions transitioner
	rows        *RecentRows // nil: every attempt reads its row
	log         *slog.Logger
	now         func() time.Time
}

// NewJobs returns the onboarding's background jobs on their ports. index is the
// open-window index, where a job that fails on its last delivery notes why (NoteFailure).
func NewJobs(cfg Config, store Store, workspaces WorkspaceStore, index WindowIndex, directory Directory, scheduler Scheduler, finder Finder,
	prober Prober, log *slog.Logger, opts ...Option) (*Jobs, error) {
	if err := required("credential jobs", map[string]any{"store": store, "workspace store": workspaces, "window index": index,
		"directory": directory, "scheduler": scheduler, "finder": finder, "prober": prober, "log": log}); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	o := newOptions(opts)
	store = remembering(store, o.rows)
	return &Jobs{cfg: cfg, store: store, workspaces: workspaces, directory: directory, finder: finder, prober: prober,
		scheduler: scheduler, windows: windows{scheduler: scheduler, index: index, cfg: cfg, now: o.now, log: log},
		transitions: transitioner{store: store, now: o.now}, rows: o.rows, log: log, now: o.now}, nil
}

// SPNotFoundMessage is the wizard's text when the service principal poll runs out of time.
const SPNotFoundMessage = "Couldn't find the service principal in your tenant"

// errStaleRow is an attempt begun on a remembered row whose write found the row moved on
// or gone: the attempt is made again on a fresh read (onRecentRow).
var errStaleRow = errors.New("the remembered row of the credential was stale")

// windowAttempt is one attempt of a window's job: on the row as RecentRows remembers it when
// recentOK (and one is), else on a fresh read.
type windowAttempt func(ctx context.Context, job Job, recentOK bool) error

// onRecentRow makes the attempt on the remembered row, and once more on a fresh read when
// that row turns out stale. Only an attempt whose row shows the job due, and whose every
// outcome is a write conditional on that row's ETag, starts from a remembered row
// (dueOrReschedule), so a stale one costs the attempt made in vain and the read.
func (j *Jobs) onRecentRow(ctx context.Context, job Job, run windowAttempt) error {
	err := run(ctx, job, j.rows != nil)
	if errors.Is(err, errStaleRow) {
		j.log.DebugContext(ctx, "a remembered row did not hold; making the attempt again on a fresh read", "kind", job.Kind,
			"org", job.OrgID, "credential", job.CredentialID, "generation", job.Generation, "attempt", job.Attempt)
		err = run(ctx, job, false)
	}
	return err
}

// dueOrReschedule reads the credential a windowed job is about and says whether the job
// is still the window's next step: same generation, expected state and window, and the
// attempt the row expects (a replayed message finds the attempt already counted). A
// redelivery of the attempt the row counted last schedules the window's next attempt
// again (and is not due itself).
//
// With recentOK it first looks at the remembered row: when that shows the job due, the
// job goes on from it (cached is true, and a failed write of its outcome is errStaleRow);
// when it shows the job passed, the job is dropped without a read (passed); anything else
// is decided on a fresh read, since it writes nothing a stale row would fail.
func (j *Jobs) dueOrReschedule(ctx context.Context, job Job, state State, window WindowKind, recentOK bool) (c *Credential, due, cached bool, err error) {
	if recentOK && j.rows != nil {
		if c, ok := j.rows.lookup(job.OrgID, job.CredentialID); ok {
			switch {
			case dueOn(c, job, state, window):
				j.logAttempt(ctx, job, c, true)
				return c, true, true, nil
			case passed(c, job):
				j.logStale(ctx, job, c, true)
				return c, false, false, nil
			}
		}
	}
	c, due, err = j.dueOnFresh(ctx, job, state, window)
	return c, due, false, err
}

// dueOn says whether job is the next step of c's window.
func dueOn(c *Credential, job Job, state State, window WindowKind) bool {
	return c.Generation == job.Generation && c.State == state && c.Progress.Kind == window && c.Progress.Attempts == job.Attempt
}

// passed says whether a row as it was shows job already behind its window, so that the
// row as it is shows that too: a row's generation only grows, and within a generation its
// count of attempts. A window's backstop and a replayed message meet this on the
// remembered row. Not passed is a row at the job's generation whose count is one past the
// job, when the job is a redelivery: the row as it is may still be there, and the
// redelivery then schedules the window's next attempt again (dueOnFresh).
func passed(c *Credential, job Job) bool {
	switch {
	case c.Generation != job.Generation:
		return c.Generation > job.Generation
	case c.Progress.Attempts == job.Attempt+1:
		return job.Delivery <= 1
	}
	return c.Progress.Attempts > job.Attempt
}

// logAttempt says how long the window went without an attempt: about its interval while
// the chain keeps up; more when jobs wait for the worker or a message was hidden or lost.
func (j *Jobs) logAttempt(ctx context.Context, job Job, c *Credential, cached bool) {
	j.log.DebugContext(ctx, "window attempt", "kind", job.Kind, "org", job.OrgID, "credential", job.CredentialID,
		"attempt", job.Attempt, "gap_ms", j.now().Sub(lastActivity(c)).Milliseconds(), "reconciled", !job.IssuedAt.IsZero(),
		"remembered_row", cached)
}

// logStale says a job was dropped as no longer its window's next step, on the row as read
// or as remembered.
func (j *Jobs) logStale(ctx context.Context, job Job, c *Credential, remembered bool) {
	j.log.DebugContext(ctx, "stale job dropped", "kind", job.Kind, "org", job.OrgID, "credential", job.CredentialID,
		"job_generation", job.Generation, "generation", c.Generation, "job_attempt", job.Attempt, "attempts", c.Progress.Attempts, "state", c.State,
		"reconciled", !job.IssuedAt.IsZero(), "remembered_row", remembered)
}

// dueOnFresh is dueOrReschedule on a fresh read.
func (j *Jobs) dueOnFresh(ctx context.Context, job Job, state State, window WindowKind) (*Credential, bool, error) {
	c, err := j.store.Get(ctx, job.OrgID, job.CredentialID)
	if errors.Is(err, ErrNotFound) {
		// Deleted meanwhile, as a rule. (A handler whose queues another deployment's
		// handlers share lands here with their jobs, and loses them: one set of queues per
		// deployment.)
		j.log.DebugContext(ctx, "job for a credential that does not exist dropped", "kind", job.Kind, "org", job.OrgID,
			"credential", job.CredentialID, "generation", job.Generation, "attempt", job.Attempt)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read credential %s for %s: %w", job.CredentialID, job.Kind, err)
	}
	inWindow := c.Generation == job.Generation && c.State == state && c.Progress.Kind == window
	ok := dueOn(c, job, state, window)
	if !ok && inWindow && job.Delivery > 1 && c.Progress.Attempts == job.Attempt+1 && c.Progress.Status != StatusTimedOut {
		// A redelivery of the attempt the row last counted: the delivery before saved the
		// attempt but may have died (or lost storage) before it scheduled the follow-up.
		// Scheduling it again keeps the window alive; a duplicate it may make is dropped
		// like any replay, and only redeliveries do this, so duplicates do not multiply.
		j.log.InfoContext(ctx, "redelivered job: scheduling its window's next attempt again", "kind", job.Kind, "org", job.OrgID,
			"credential", job.CredentialID, "generation", job.Generation, "job_attempt", job.Attempt, "delivery", job.Delivery)
		return c, false, j.windows.next(ctx, c, job.Kind)
	}
	if !ok {
		j.logStale(ctx, job, c, false)
		return c, false, nil
	}
	j.logAttempt(ctx, job, c, false)
	return c, true, nil
}

// save writes the outcome of an attempt: a transition with its event when ev is set,
// else the progress alone. A conflict means another delivery or a new window got there
// first, not found that the credential was deleted meanwhile; the job then ends without a
// follow-up. On a remembered row (cached) either may only mean the row was stale:
// errStaleRow, and the attempt is made again on a fresh read.
func (j *Jobs) save(ctx context.Context, c *Credential, cached bool, ev Event, change func(*Credential)) (bool, error) {
	var err error
	if ev != "" {
		err = j.transitions.apply(ctx, c, ev, "", change)
	} else {
		c.UpdatedAt = j.now().UTC()
		change(c)
		err = j.store.Update(ctx, c, nil)
	}
	if cached && (errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)) {
		return false, errStaleRow
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		// A conflict: another delivery or a new window got there first. Not found: the
		// credential was deleted while the attempt ran. Either way the job is done.
		j.log.InfoContext(ctx, "job lost a race; another writer moved the credential on or deleted it", "org", c.OrgID, "credential", c.ID, "err", err)
		return false, nil
	}
	return err == nil, err
}

// PollServicePrincipal looks once for the app's service principal in the submitted tenant
// and moves the credential by what it finds.
func (j *Jobs) PollServicePrincipal(ctx context.Context, job Job) error {
	return j.onRecentRow(ctx, job, j.pollServicePrincipal)
}

func (j *Jobs) pollServicePrincipal(ctx context.Context, job Job, recentOK bool) error {
	c, ok, cached, err := j.dueOrReschedule(ctx, job, StateSPPending, WindowSPPoll, recentOK)
	if err != nil || !ok {
		return err
	}
	objectID, ferr := j.finder.FindServicePrincipal(ctx, c.TenantID, c.App.AppID)
	now := j.now()
	code, requestID := providerDetails(ferr)
	attempt := func(c *Credential) { c.Progress.Attempts++ }
	switch {
	case ferr == nil:
		_, err = j.save(ctx, c, cached, EventSPFound, func(c *Credential) {
			attempt(c)
			c.SPObjectID = objectID
			c.Progress.Status = StatusFound
			c.LastError = Problem{}
		})
		return err
	case errors.Is(ferr, ErrTenantNotFound):
		_, err = j.save(ctx, c, cached, EventTenantNotFound, func(c *Credential) {
			attempt(c)
			c.Progress.Status = StatusTenantNotFound
			c.LastError = Problem{Code: string(StatusTenantNotFound), ProviderError: code, RequestID: requestID,
				Message: fmt.Sprintf("Tenant %s was not found. Check the tenant ID (az account show --query tenantId -o tsv) and submit it again.", c.TenantID)}
		})
		return err
	}
	// Not yet: not installed, not replicated, throttled, or our own federation problem.
	problem := Problem{}
	switch {
	case errors.Is(ferr, ErrFederation):
		j.log.ErrorContext(ctx, "Entra refused the platform's federated credential: fix the app registration or the backend identity",
			"org", c.OrgID, "credential", c.ID, "app_id", c.App.AppID, "tenant", c.TenantID, "provider_error", code, "err", ferr)
		problem = Problem{Code: "federation_error", ProviderError: code, RequestID: requestID,
			Message: "Sign-in with the platform's federated credential failed. This is a problem on our side, not in your tenant; we keep trying."}
	case errors.Is(ferr, ErrSPNotFound), errors.Is(ferr, ErrUnavailable):
	default:
		j.log.WarnContext(ctx, "unexpected error looking for the service principal", "org", c.OrgID, "credential", c.ID, "err", ferr)
		problem = Problem{Code: string(StatusUnexpectedError), ProviderError: code, RequestID: requestID,
			Message: "Looking for the service principal failed with an unexpected error; still trying."}
	}
	if !now.Before(c.Progress.Deadline) {
		_, err = j.save(ctx, c, cached, EventSPTimedOut, func(c *Credential) {
			attempt(c)
			c.Progress.Status = StatusNotFound
			c.LastError = Problem{Code: "sp_not_found", Message: SPNotFoundMessage, ProviderError: code, RequestID: requestID}
		})
		return err
	}
	saved, err := j.save(ctx, c, cached, "", func(c *Credential) {
		attempt(c)
		c.Progress.Status = StatusPolling
		c.LastError = problem
	})
	if !saved {
		return err
	}
	return j.windows.next(ctx, c, JobSPPoll)
}

// ProbeAccess runs the access probe once and moves the credential by the probe's outcome
// table (ClassifyAccessProbe). At the deadline the probe times out in access_pending,
// keeping the last attempt's hint (no_role: no role visible yet).
func (j *Jobs) ProbeAccess(ctx context.Context, job Job) error {
	return j.onRecentRow(ctx, job, j.probeAccess)
}

func (j *Jobs) probeAccess(ctx context.Context, job Job, recentOK bool) error {
	c, ok, cached, err := j.dueOrReschedule(ctx, job, StateAccessPending, WindowAccessProbe, recentOK)
	if err != nil || !ok {
		return err
	}
	target := ProbeTarget{TenantID: c.TenantID, AppID: c.App.AppID, Account: c.Storage.Account,
		Container: c.Storage.Container, Prefix: c.BasePath.Prefix, FreshToken: deniedBefore(c.Progress.Checks)}
	report := j.prober.Probe(ctx, target)
	now := j.now()
	// A grace as long as the window never ends: 403 and 404 then mean "not yet" until the
	// deadline, and the probe times out instead of failing early.
	afterGrace := !now.Before(c.Progress.GraceUntil) && c.Progress.GraceUntil.Before(c.Progress.Deadline)
	v := ClassifyAccessProbe(report, target, c.SPObjectID, afterGrace)
	checks := make([]Check, 0, len(report.Checks))
	for _, r := range report.Checks {
		checks = append(checks, Check{Name: r.Name, Result: r.Result, ProviderCode: r.Code})
	}
	record := func(c *Credential) {
		c.Progress.Attempts++
		c.Progress.Status = v.Status
		c.Progress.Checks = checks
		c.LastError = v.Problem
	}
	if v.Status == StatusUnexpectedError {
		j.log.WarnContext(ctx, "access probe met an unclassified error", "org", c.OrgID, "credential", c.ID,
			"provider_error", v.Problem.ProviderError, "provider_request_id", v.Problem.RequestID)
	}
	if !v.Again {
		_, err = j.save(ctx, c, cached, v.Event, record)
		return err
	}
	if !now.Before(c.Progress.Deadline) {
		_, err = j.save(ctx, c, cached, "", func(c *Credential) {
			record(c)
			c.Progress.Status = StatusTimedOut
			c.LastError = Problem{Code: string(StatusTimedOut), Hint: v.Problem.Hint, ProviderError: v.Problem.ProviderError, RequestID: v.Problem.RequestID,
				Message: "Timed out verifying access to your storage. Retry (submit the storage details again) or save anyway; the last check said: " + v.Problem.Message}
		})
		return err
	}
	saved, err := j.save(ctx, c, cached, "", record)
	if !saved {
		return err
	}
	return j.windows.next(ctx, c, JobAccessProbe)
}

// deniedBefore says whether the last attempt met a 403, after which a cached token could
// hide a role that has arrived since.
func deniedBefore(checks []Check) bool {
	for _, c := range checks {
		if c.ProviderCode == codeAuthorizationPermissionMismatch || c.ProviderCode == codeAuthorizationFailure {
			return true
		}
	}
	return false
}

// CleanUpApp finishes a credential's delete, or the compensation of a create that failed
// half-way. While the credential still holds the app (a delete that did not go through),
// nothing is deleted; until the job's Deadline it looks again (the delete may still be
// under way). Once the credential is deleted, it clears the links of its unlocked
// workspaces a page at a time (queueing itself again while some remain), then deletes
// the app (see deleteOwnApp). A job whose credential has neither a row nor a tombstone in
// its organization deletes nothing. A job without an app is a create's guard (see
// guardCreate).
func (j *Jobs) CleanUpApp(ctx context.Context, job Job) error {
	if job.AppObjectID == "" {
		return j.guardCreate(ctx, job)
	}
	c, err := j.store.Get(ctx, job.OrgID, job.CredentialID)
	switch {
	case err == nil && c.App.ObjectID == job.AppObjectID && j.now().Before(job.Deadline):
		// The delete that queued this job may still be under way.
		return j.scheduler.Schedule(ctx, job, AppCleanupRecheck)
	case err == nil && c.App.ObjectID == job.AppObjectID:
		j.log.InfoContext(ctx, "app clean-up skipped: the credential still holds the app", "org", job.OrgID, "credential", job.CredentialID)
		return nil
	case err == nil:
		// A create's compensation: the row never recorded the app.
		return j.deleteOwnApp(ctx, job, c.App.ObjectID)
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("read credential %s before clean-up: %w", job.CredentialID, err)
	}
	d, ok, err := j.deletedOf(ctx, job)
	if err != nil || !ok {
		return err
	}
	if d.App.ObjectID != "" && d.App.ObjectID != job.AppObjectID {
		j.refuseCleanUp(ctx, job, "the deleted credential held another app", d.App.ObjectID)
		return nil
	}
	more, err := j.unlink(ctx, job.OrgID, job.CredentialID)
	if err != nil {
		return err
	}
	if more {
		return j.scheduler.Schedule(ctx, job, 0)
	}
	if err := j.deleteOwnApp(ctx, job, d.App.ObjectID); err != nil {
		return err
	}
	// Done: the reconciler need not queue this clean-up again.
	if err := j.windows.index.CloseWindow(ctx, OpenWindow{OrgID: job.OrgID, CredentialID: job.CredentialID}); err != nil {
		j.log.WarnContext(ctx, "deleted credential's open-window row not removed; the reconciler's next clean-up removes it", "org", job.OrgID,
			"credential", job.CredentialID, "err", err)
	}
	return nil
}

// deletedOf reads the tombstone of the job's credential. Without one the credential
// never existed in the job's organization (every delete leaves one): the job is forged or
// misdirected, deletes nothing, and is logged at error level (ok false).
func (j *Jobs) deletedOf(ctx context.Context, job Job) (*DeletedCredential, bool, error) {
	d, err := j.store.Tombstone(ctx, job.OrgID, job.CredentialID)
	if errors.Is(err, ErrNotFound) {
		j.refuseCleanUp(ctx, job, "no such credential in the job's organization", "")
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the tombstone of credential %s before clean-up: %w", job.CredentialID, err)
	}
	return d, true, nil
}

// UnlinkPageSize is how many workspace links of a deleted credential one run of its
// clean-up job clears.
const UnlinkPageSize = 100

// unlink clears one page of links from unlocked workspaces to the deleted credential id;
// resolution already lets those workspaces fall back, so nothing a caller sees changes.
// Each write is conditional on the workspace as read: one changed meanwhile (linked
// elsewhere, or locked) is read again on the next page. It reports whether links may
// remain.
func (j *Jobs) unlink(ctx context.Context, orgID, id string) (bool, error) {
	ws, err := j.workspaces.UnlockedLinks(ctx, orgID, id, UnlinkPageSize)
	if err != nil {
		return false, fmt.Errorf("read the workspaces linked to deleted credential %s: %w", id, err)
	}
	raced := false
	for _, w := range ws {
		w.CredentialID, w.UpdatedAt = "", j.now().UTC()
		err := j.workspaces.UpdateWorkspace(ctx, w, nil)
		if errors.Is(err, ErrConflict) {
			raced = true
			continue
		}
		if err != nil {
			return false, fmt.Errorf("unlink workspace %s from deleted credential %s: %w", w.ID, id, err)
		}
	}
	if len(ws) > 0 {
		j.log.InfoContext(ctx, "workspace links of a deleted credential cleared", "org", orgID, "credential", id, "workspaces", len(ws), "raced", raced)
	}
	return raced || len(ws) == UnlinkPageSize, nil
}

// deleteOwnApp deletes the app registered under the job's credential's unique name, and
// only when it is the app the job names (when it names one) and the one the credential
// recorded (when it recorded one): a stale or forged job naming another credential's app
// deletes nothing. No app under the name counts as done.
func (j *Jobs) deleteOwnApp(ctx context.Context, job Job, recorded string) error {
	name := UniqueAppName(job.CredentialID)
	app, ok, err := j.directory.FindApp(ctx, name)
	if err != nil {
		return fmt.Errorf("find app %s of credential %s: %w", name, job.CredentialID, err)
	}
	if !ok {
		j.log.InfoContext(ctx, "no app registration left to delete", "org", job.OrgID, "credential", job.CredentialID, "app_object_id", job.AppObjectID)
		return nil
	}
	if (job.AppObjectID != "" && app.ObjectID != job.AppObjectID) || (recorded != "" && app.ObjectID != recorded) {
		j.refuseCleanUp(ctx, job, "the app registered under the credential's unique name is another one", app.ObjectID)
		return nil
	}
	if err := j.directory.DeleteApp(ctx, app.ObjectID); err != nil {
		return fmt.Errorf("delete app %s of credential %s: %w", app.ObjectID, job.CredentialID, err)
	}
	j.log.InfoContext(ctx, "app registration deleted", "org", job.OrgID, "credential", job.CredentialID, "app_id", app.AppID, "app_object_id", app.ObjectID)
	return nil
}

// refuseCleanUp drops a clean-up job that names an app its credential does not own: a
// stale or forged message. Nothing is deleted, and the error-level log makes it seen.
func (j *Jobs) refuseCleanUp(ctx context.Context, job Job, why, ownApp string) {
	j.log.ErrorContext(ctx, "app clean-up refused: the job names an app that is not its credential's; nothing deleted", "why", why,
		"org", job.OrgID, "credential", job.CredentialID, "app_object_id", job.AppObjectID, "credential_app_object_id", ownApp)
}

// guardCreate runs CreateGuardDelay after a create began, when the create has long
// finished or died. A row that records its app is done. Otherwise the app registered
// under the credential's unique name, if any, is an orphan (the create died between
// making it and recording it, or its clean-up failed) and is deleted, with the row the
// create never finished: a credential without an app can never be onboarded and would
// hold its name. A row younger than the delay (clocks differ between instances) is looked
// at again when it is old enough. A deleted credential's app goes too, when it is the
// one the tombstone records; a credential with neither row nor tombstone in the job's
// organization is none of this job's business, and nothing is deleted.
func (j *Jobs) guardCreate(ctx context.Context, job Job) error {
	c, err := j.store.Get(ctx, job.OrgID, job.CredentialID)
	recorded := ""
	switch {
	case err == nil && c.App.ObjectID != "":
		return nil
	case err == nil:
		if age := j.now().Sub(c.CreatedAt); age < j.cfg.CreateGuardDelay {
			return j.scheduler.Schedule(ctx, job, j.cfg.CreateGuardDelay-age)
		}
	case errors.Is(err, ErrNotFound):
		c = nil
		d, ok, err := j.deletedOf(ctx, job)
		if err != nil || !ok {
			return err
		}
		recorded = d.App.ObjectID
	default:
		return fmt.Errorf("read credential %s for its create guard: %w", job.CredentialID, err)
	}
	if err := j.deleteOwnApp(ctx, job, recorded); err != nil {
		return err
	}
	if c != nil {
		if err := j.store.Delete(ctx, c); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete the unfinished credential %s: %w", job.CredentialID, err)
		}
		j.log.WarnContext(ctx, "credential whose create never finished deleted", "org", job.OrgID, "credential", job.CredentialID, "name", c.Name)
	}
	return nil
}

// noteTimeout bounds the note of a last delivery's failure, which runs after the job's own
// time may have run out.
const noteTimeout = 10 * time.Second

// noteFailure logs a job that failed on its last delivery and notes the failure in the
// credential's row of the open-window index (best effort: the reconciler shows a generic
// failure without it).
func (j *Jobs) noteFailure(ctx context.Context, job Job, err error) {
	p := failureProblem(err, job.RequestID)
	j.log.ErrorContext(ctx, "job failed on its last delivery: the queue sets its message aside in the poison queue, and the reconciler shows the failure and takes the work up again",
		"kind", job.Kind, "org", job.OrgID, "credential", job.CredentialID, "generation", job.Generation, "attempt", job.Attempt,
		"delivery", job.Delivery, "request_id", job.RequestID, "failure", p.Message, "err", err)
	if job.Kind != JobSPPoll && job.Kind != JobAccessProbe {
		// A health probe waits for the next sweep, a clean-up is queued again: neither is a
		// window whose credential shows the failure (nor may its note replace a window's).
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
	defer cancel()
	f := JobFailure{Kind: job.Kind, Generation: job.Generation, Attempt: job.Attempt, At: j.now().UTC(), Problem: p}
	if nerr := j.windows.index.NoteFailure(ctx, job.OrgID, job.CredentialID, f); nerr != nil {
		j.log.WarnContext(ctx, "could not note a job's last failure in the open-window index", "kind", job.Kind,
			"org", job.OrgID, "credential", job.CredentialID, "err", nerr)
	}
}

// Runner runs a background job of any kind: the one job runner of the queue worker and
// of the Functions host's queue functions.
type Runner struct {
	jobs   *Jobs
	health *HealthMonitor
	log    *slog.Logger
}

// NewRunner returns the runner of jobs' kinds and of the health probe.
func NewRunner(jobs *Jobs, health *HealthMonitor, log *slog.Logger) (*Runner, error) {
	if err := required("credential job runner", map[string]any{"jobs": jobs, "health monitor": health, "log": log}); err != nil {
		return nil, err
	}
	return &Runner{jobs: jobs, health: health, log: log}, nil
}

// Run does one background job. It returns an error only for a failure worth retrying the
// same message for (storage unavailable, say); a job that is stale, replayed or about a
// deleted credential is done when it changes nothing. A failure on the message's last
// delivery (Config.MaxDeliveries) is logged at error level and noted in the open-window
// index, for the reconciler to show on the credential once it finds the message in the
// poison queue.
func (r *Runner) Run(ctx context.Context, job Job) error {
	err := r.run(ctx, job)
	if err != nil && job.Delivery >= r.jobs.cfg.MaxDeliveries {
		r.jobs.noteFailure(ctx, job, err)
	}
	return err
}

func (r *Runner) run(ctx context.Context, job Job) error {
	switch job.Kind {
	case JobSPPoll:
		return r.jobs.PollServicePrincipal(ctx, job)
	case JobAccessProbe:
		return r.jobs.ProbeAccess(ctx, job)
	case JobAppCleanup:
		return r.jobs.CleanUpApp(ctx, job)
	case JobHealthProbe:
		return r.health.ProbeHealth(ctx, job)
	}
	r.log.ErrorContext(ctx, "dropping a job of unknown kind", "kind", job.Kind, "org", job.OrgID, "credential", job.CredentialID)
	return nil
}
