package credential_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// logBuffer collects JSON log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the messages logged at level (ERROR, WARN, INFO, DEBUG).
func (b *logBuffer) lines(level string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["level"] == level {
			out = append(out, rec)
		}
	}
	return out
}

// count is how many lines say msg.
func (b *logBuffer) count(msg string) int {
	n := 0
	for _, level := range []string{"DEBUG", "INFO", "WARN", "ERROR"} {
		for _, rec := range b.lines(level) {
			if rec["msg"] == msg {
				n++
			}
		}
	}
	return n
}

// reconcileFixture is the domain on fakes, logging to a buffer, with one-second poll
// intervals, a one-minute window and no backstops (the reconciler's own tests show what
// happens when a chain breaks).
type reconcileFixture struct {
	*fixture
	log *logBuffer
}

func newReconcileFixture(t *testing.T) *reconcileFixture {
	t.Helper()
	logs := &logBuffer{}
	fake := credentialtest.NewFakes()
	cfg := credential.Config{SPPollInterval: time.Second, AccessProbeInterval: time.Second, SPPollWindow: time.Minute,
		AccessProbeWindow: time.Minute, PropagationGrace: 10 * time.Second, CreateGuardDelay: 20 * time.Second}
	p := fake.Ports()
	p.Scheduler = credentialtest.WithoutBackstops(fake.Scheduler)
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: p, Now: fake.Clock.Now, Log: log})
	f := &fixture{t: t, fake: fake, Onboarder: &credentialtest.Onboarder{T: t, Org: "org", Domain: d,
		Store: fake.Store, Queue: fake.Scheduler, Finder: fake.Finder, Prober: fake.Prober, Now: fake.Clock.Now}}
	return &reconcileFixture{fixture: f, log: logs}
}

func (f *reconcileFixture) reconcile() credential.ReconcileReport {
	f.t.Helper()
	rep, err := f.Domain.Reconciler.Reconcile(context.Background())
	if err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return rep
}

// TestReconcileRestartsALostChain: an SP poll's follow-up is lost after its first
// attempt. Within three poll intervals the reconciler leaves the window alone; after them
// it schedules the same generation's next attempt, which moves the window on.
func TestReconcileRestartsALostChain(t *testing.T) {
	f := newReconcileFixture(t)
	id, first := f.Submitted()
	f.Run(first)
	if n := len(f.jobs(credential.JobSPPoll)); n != 1 {
		t.Fatalf("%d follow-ups queued, want 1", n)
	} // taken and dropped: the queue lost it
	f.fake.Clock.Advance(3 * time.Second)
	if rep := f.reconcile(); rep.Scheduled() != 0 || rep.Indexed != 1 || rep.Read != 1 {
		t.Fatalf("reconciled a window three intervals old: %+v", rep)
	}
	f.fake.Clock.Advance(time.Second + time.Millisecond)
	rep := f.reconcile()
	if rep.Stale != 1 || rep.Scheduled() != 1 {
		t.Fatalf("report %+v, want the stale window's next job", rep)
	}
	job := f.Single(credential.JobSPPoll)
	c := f.Get(id)
	if job.Generation != c.Generation || job.Attempt != 1 || !job.Deadline.Equal(c.Progress.Deadline) || job.IssuedAt.IsZero() {
		t.Fatalf("reconciler's job %+v, want attempt 1 of generation %d with the window's deadline", job, c.Generation)
	}
	f.fake.Finder.Script(credentialtest.Found{ObjectID: "sp"})
	f.Run(job)
	if c := f.Get(id); c.State != credential.StateSPVerified || c.Progress.Attempts != 2 {
		t.Fatalf("after the reconciler's job: %s after %d attempts", c.State, c.Progress.Attempts)
	}
	// The window closed: its index row goes at the next run.
	if rep := f.reconcile(); rep.Closed != 1 || rep.Scheduled() != 0 {
		t.Fatalf("after the window closed: %+v", rep)
	}
	if rep := f.reconcile(); rep.Indexed != 0 {
		t.Fatalf("index after closing: %+v", rep)
	}
}

// TestReconcileReaderRoleWindowStalledInTheGrace is the fault soak's Reader-role
// onboarding that ended timed_out: its probe's follow-up was lost during the propagation
// grace, and nothing ran until the deadline had passed. The reconciler takes the window up
// after three intervals, and its next attempt, past the grace, says role_not_sufficient
// well before the deadline.
func TestReconcileReaderRoleWindowStalledInTheGrace(t *testing.T) {
	f := newReconcileFixture(t)
	id, job := f.AtStorage()
	f.fake.Prober.Script(report("pass", "403", "pass", "skip"))
	f.Run(job) // within the grace: waiting for propagation
	if c := f.Get(id); c.Progress.Status != credential.StatusWaitingForRolePropagation {
		t.Fatalf("first attempt: %s", c.Progress.Status)
	}
	f.jobs(credential.JobAccessProbe) // the follow-up is lost
	restarts := 0
	for range 30 {
		f.fake.Clock.Advance(time.Second)
		restarts += f.reconcile().Scheduled()
		for _, j := range f.jobs(credential.JobAccessProbe) {
			f.Run(j)
		}
		if f.Get(id).State != credential.StateAccessPending {
			break
		}
	}
	c := f.Get(id)
	if c.State != credential.StateSPVerified || c.LastError.Code != string(credential.StatusRoleNotSufficient) || c.LastError.Hint != credential.HintReaderRole {
		t.Fatalf("after the reconciler: %s, %+v; want sp_verified with role_not_sufficient (reader)", c.State, c.LastError)
	}
	if !f.fake.Clock.Now().Before(c.Progress.Deadline) {
		t.Fatalf("ended at %v, after the deadline %v", f.fake.Clock.Now(), c.Progress.Deadline)
	}
	if restarts != 1 {
		t.Errorf("the reconciler scheduled %d jobs, want 1: the window moved again after it", restarts)
	}
	t.Logf("ended %s before the deadline", c.Progress.Deadline.Sub(f.fake.Clock.Now()))
}

// TestReconcilePastDeadline: a window whose deadline passed without its closing
// transition (the last job lost) is closed by the job the reconciler schedules.
func TestReconcilePastDeadline(t *testing.T) {
	f := newReconcileFixture(t)
	id, first := f.Submitted()
	f.jobs(credential.JobSPPoll) // the first job is lost: no attempt at all
	_ = first
	f.fake.Clock.Advance(time.Minute + 2*time.Second)
	rep := f.reconcile()
	if rep.PastDeadline != 1 {
		t.Fatalf("report %+v, want one window past its deadline", rep)
	}
	f.Run(f.Single(credential.JobSPPoll))
	c := f.Get(id)
	if c.State != credential.StateDraft || c.LastError.Message != credential.SPNotFoundMessage {
		t.Fatalf("after the deadline: %s %q", c.State, c.LastError.Message)
	}
	if diff := cmp.Diff([]credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSPTimedOut}, f.Causes(id)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestReconcileNeverMakesASecondChain: a window whose chain is alive, reconciled every
// second while its jobs run late, in random order, some delivered twice, and always
// stale enough for the reconciler to schedule its own job. Each attempt is made exactly
// once (one probe per counted attempt, attempts counted one by one), the reconciler's
// and the chain's duplicate jobs are dropped, and the queue never holds more than a few
// jobs of the window.
func TestReconcileNeverMakesASecondChain(t *testing.T) {
	for seed := range uint64(20) {
		f := newReconcileFixture(t)
		rng := rand.New(rand.NewPCG(seed, 7))
		f.fake.Finder.Script(credentialtest.Found{Err: credential.ErrSPNotFound}) // counted lookups, never found
		id, first := f.Submitted()
		f.Run(first)
		maxPending, ran := 0, 0
		for step := 0; step < 200; step++ {
			c := f.Get(id)
			if c.State != credential.StateSPPending {
				break
			}
			f.fake.Clock.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
			if rng.IntN(2) == 0 {
				f.reconcile()
			}
			jobs := f.jobs(credential.JobSPPoll)
			maxPending = max(maxPending, len(jobs))
			rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
			for i, j := range jobs {
				if i > 0 && rng.IntN(3) == 0 {
					// Left for later: the queue delivers it a step late.
					if err := f.fake.Scheduler.Schedule(context.Background(), j, 0); err != nil {
						t.Fatal(err)
					}
					continue
				}
				j.Delivery = 1 + rng.IntN(2)
				f.Run(j)
				ran++
			}
		}
		c := f.Get(id)
		if c.State != credential.StateDraft {
			t.Fatalf("seed %d: the window ended in %s", seed, c.State)
		}
		if calls := f.fake.Finder.Calls(); calls != c.Progress.Attempts {
			t.Fatalf("seed %d: %d lookups for %d attempts: an attempt was made twice", seed, calls, c.Progress.Attempts)
		}
		dropped := f.log.count("stale job dropped")
		if maxPending > 4 {
			t.Errorf("seed %d: up to %d jobs of one window queued at once", seed, maxPending)
		}
		if seed == 0 {
			t.Logf("seed 0: %d attempts, %d jobs run, %d duplicates dropped, at most %d queued at once", c.Progress.Attempts, ran, dropped, maxPending)
		}
		if dropped == 0 {
			t.Errorf("seed %d: no duplicate was dropped; the test did not race the reconciler against the chain", seed)
		}
	}
}

// TestReconcileGuardsAnUnfinishedCreate: a create whose row never recorded its app and
// whose guard's message was lost gets its guard again once the guard had its time, which
// removes the row and the app; the index row goes after that.
func TestReconcileGuardsAnUnfinishedCreate(t *testing.T) {
	f := newReconcileFixture(t)
	ctx := context.Background()
	down := credentialtest.Fault{Times: -1, Err: errors.New("storage down")}
	f.fake.Store.Inject("Update", down)
	f.fake.Store.Inject("Delete", down)
	if _, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "half", StorageType: "azure_federated",
		BasePath: "az://bloblake/lakedata"}, "r"); err == nil {
		t.Fatal("the create succeeded without recording its app")
	}
	f.fake.Store.Inject("Update", credentialtest.Fault{})
	f.fake.Store.Inject("Delete", credentialtest.Fault{})
	// The create could not record its app nor remove its row; the guard's message is lost.
	cs, err := f.fake.Store.List(ctx, "org")
	if err != nil || len(cs) != 1 || cs[0].App.ObjectID != "" {
		t.Fatalf("the failed create left %+v (%v), want its row without an app", cs, err)
	}
	f.jobs(credential.JobAppCleanup)
	f.fake.Clock.Advance(29 * time.Second)
	if rep := f.reconcile(); rep.Guards != 0 {
		t.Fatalf("guarded a create %s old: %+v", 29*time.Second, rep)
	}
	f.fake.Clock.Advance(2 * time.Second)
	if rep := f.reconcile(); rep.Guards != 1 {
		t.Fatalf("report %+v, want the guard scheduled", rep)
	}
	f.Run(f.Single(credential.JobAppCleanup))
	if _, err := f.fake.Store.Get(ctx, "org", cs[0].ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the unfinished create's row is still there: %v", err)
	}
	if rep := f.reconcile(); rep.Closed != 1 {
		t.Fatalf("report %+v, want the index row removed", rep)
	}
}

// TestIndexWrittenBeforeTheWork: a create and a submit write their index row before they
// write the credential: when the index cannot be written they fail and change nothing,
// and when the credential's write fails the row is there (and removed later).
func TestIndexWrittenBeforeTheWork(t *testing.T) {
	f := newReconcileFixture(t)
	ctx := context.Background()
	f.fake.Store.Inject("OpenWindow", credentialtest.Fault{Times: 1, Err: errors.New("index down")})
	_, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "a", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("create without its index row: %v, want unavailable", err)
	}
	if cs, _ := f.fake.Store.List(ctx, "org"); len(cs) != 0 {
		t.Fatalf("the create wrote %d credentials", len(cs))
	}
	c := f.Create("b")
	f.fake.Store.Inject("OpenWindow", credentialtest.Fault{Times: 1, Err: errors.New("index down")})
	if _, err := f.Domain.Onboarding.SubmitTenant(ctx, "org", c.ID, credentialtest.Tenant, "r"); !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("submit without its index row: %v", err)
	}
	if got := f.Get(c.ID); got.State != credential.StateDraft || got.Generation != c.Generation {
		t.Fatalf("the refused submit changed the credential: %s gen %d", got.State, got.Generation)
	}
	f.fake.Store.Inject("Update", credentialtest.Fault{Times: 1, Err: errors.New("storage down")})
	if _, err := f.Domain.Onboarding.SubmitTenant(ctx, "org", c.ID, credentialtest.Tenant, "r"); err == nil {
		t.Fatal("submit whose write failed succeeded")
	}
	var rows []credential.OpenWindow
	if err := f.fake.Store.OpenWindows(ctx, func(w credential.OpenWindow) error { rows = append(rows, w); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].CredentialID != c.ID || rows[0].Generation != c.Generation+1 {
		t.Fatalf("index %+v, want the submit's row (generation %d) though its write failed", rows, c.Generation+1)
	}
	// The row is ahead of its credential: kept while the write may still land, then removed.
	if rep := f.reconcile(); rep.Closed != 0 {
		t.Fatalf("report %+v: a row ahead of its credential removed at once", rep)
	}
	f.fake.Clock.Advance(21 * time.Second)
	if rep := f.reconcile(); rep.Closed != 1 {
		t.Fatalf("report %+v: want the stale row removed", rep)
	}
}

// serviceError is a failure an adapter classified: Azure Storage answered ServerBusy.
var serviceError = &credential.ProviderError{Kind: credential.ErrUnavailable, Service: credential.ServiceStorage,
	Code: "ServerBusy", Status: 503, RequestID: "queue-req-1"}

// TestPoisonedJobShownAndTakenUp: an SP poll whose follow-up cannot be queued fails on
// every delivery. The last delivery logs an error and notes the failure; once the queue
// has set the message aside, the reconciler logs an error, shows the failure on the
// credential (Azure Storage, with the queue's request id), schedules the window's next
// job and removes the poisoned message. The window then goes on.
func TestPoisonedJobShownAndTakenUp(t *testing.T) {
	f := newReconcileFixture(t)
	id, job := f.Submitted()
	f.fake.Scheduler.Inject(credentialtest.Fault{Times: -1, Err: serviceError})
	var last error
	for delivery := 1; delivery <= credential.DefaultMaxDeliveries; delivery++ {
		job.Delivery, job.RequestID = delivery, "delivery-req"
		last = f.Domain.Runner.Run(context.Background(), job)
		if last == nil {
			t.Fatalf("delivery %d succeeded without queueing the follow-up", delivery)
		}
		if delivery < credential.DefaultMaxDeliveries && f.log.count("job failed on its last delivery: the queue sets its message aside in the poison queue, and the reconciler shows the failure and takes the work up again") != 0 {
			t.Fatalf("delivery %d noted as the last", delivery)
		}
	}
	if n := len(f.log.lines("ERROR")); n != 1 {
		t.Fatalf("%d error lines after the last delivery, want 1", n)
	}
	f.fake.Scheduler.Inject(credentialtest.Fault{})
	msgID := f.fake.Scheduler.Poison(job)
	c := f.Get(id)
	if c.LastError != (credential.Problem{}) {
		t.Fatalf("last error before the reconciler: %+v", c.LastError)
	}
	rep := f.reconcile()
	if rep.Poisoned != 1 || rep.FromPoison != 1 || f.fake.Scheduler.PoisonedCount() != 0 {
		t.Fatalf("report %+v, %d left poisoned", rep, f.fake.Scheduler.PoisonedCount())
	}
	c = f.Get(id)
	want := credential.Problem{Code: "unexpected_error", ProviderError: "ServerBusy", RequestID: "queue-req-1",
		Message: "Azure Storage operation failed with an unexpected error (request id queue-req-1)"}
	if diff := cmp.Diff(want, c.LastError); diff != "" {
		t.Errorf("last error (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(c.LastError.Message, credential.UnexpectedStorageMessage) {
		t.Errorf("message %q is not in the seed's words", c.LastError.Message)
	}
	errs := f.log.lines("ERROR")
	if len(errs) != 2 || errs[1]["message_id"] != msgID {
		t.Fatalf("error lines %v, want the reconciler's about message %s", errs, msgID)
	}
	next := f.Single(credential.JobSPPoll)
	if next.Attempt != c.Progress.Attempts || next.Generation != c.Generation {
		t.Fatalf("next job %+v, want attempt %d", next, c.Progress.Attempts)
	}
	f.fake.Finder.Script(credentialtest.Found{ObjectID: "sp"})
	f.Run(next)
	if c := f.Get(id); c.State != credential.StateSPVerified || c.LastError != (credential.Problem{}) {
		t.Fatalf("after the reconciler: %s %+v", c.State, c.LastError)
	}
}

// TestPoisonedJobRowMovedWhileShown: when the row moves between the reconciler's read and
// its write of the failure, the poisoned message is released, not removed, and the next
// run handles it on the row as it is then: it shows the failure.
func TestPoisonedJobRowMovedWhileShown(t *testing.T) {
	f := newReconcileFixture(t)
	id, job := f.Submitted()
	f.fake.Scheduler.Poison(job)
	f.fake.Store.Inject(credentialtest.CallUpdate, credentialtest.Fault{Times: 1, Err: credential.ErrConflict})
	rep := f.reconcile()
	if rep.Poisoned != 0 || rep.Failed != 0 || f.fake.Scheduler.PoisonedCount() != 1 {
		t.Fatalf("first run: report %+v, %d left poisoned; want the message released for the next run, no failure", rep,
			f.fake.Scheduler.PoisonedCount())
	}
	if c := f.Get(id); c.LastError != (credential.Problem{}) {
		t.Fatalf("last error after a lost write: %+v", c.LastError)
	}
	rep = f.reconcile()
	if rep.Poisoned != 1 || rep.FromPoison != 1 || f.fake.Scheduler.PoisonedCount() != 0 {
		t.Fatalf("second run: report %+v, %d left poisoned", rep, f.fake.Scheduler.PoisonedCount())
	}
	if c := f.Get(id); !strings.HasPrefix(c.LastError.Message, "Background work failed on every try") {
		t.Fatalf("last error after the second run: %+v", c.LastError)
	}
}

// TestPoisonedJobWithoutANote: a job whose deliveries died before any could note a
// failure still shows on its credential, traced by the poisoned message's id.
func TestPoisonedJobWithoutANote(t *testing.T) {
	f := newReconcileFixture(t)
	id, job := f.Submitted()
	msgID := f.fake.Scheduler.Poison(job)
	f.reconcile()
	c := f.Get(id)
	if c.LastError.RequestID != msgID || !strings.Contains(c.LastError.Message, "failed on every try") || c.LastError.Code != "unexpected_error" {
		t.Fatalf("last error %+v, want the poisoned message %s", c.LastError, msgID)
	}
	next := f.Single(credential.JobSPPoll)
	if next.Attempt != 0 {
		t.Fatalf("next job %+v", next)
	}
	// A poisoned job of a window that has moved on since changes nothing.
	f.Run(next)
	f.Run(f.Single(credential.JobSPPoll))
	before, pending := f.Get(id), f.fake.Scheduler.Pending(credential.JobSPPoll)
	f.fake.Scheduler.Poison(job)
	if rep := f.reconcile(); rep.Poisoned != 1 || rep.FromPoison != 0 {
		t.Fatalf("report %+v for an old job's poisoned message", rep)
	}
	if after := f.Get(id); after.Revision != before.Revision || f.fake.Scheduler.Pending(credential.JobSPPoll) != pending {
		t.Fatalf("an old poisoned job wrote the credential or queued a job")
	}
}

// TestPoisonedCleanUpQueuedAgain: an app clean-up poisoned by Graph failures is logged and
// queued again (its app registration must not be forgotten); a poisoned health probe waits
// for the next sweep.
func TestPoisonedCleanUpQueuedAgain(t *testing.T) {
	f := newReconcileFixture(t)
	cleanup := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: "gone", AppObjectID: "app-1"}
	f.fake.Scheduler.Poison(cleanup)
	f.fake.Scheduler.Poison(credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: "x", IssuedAt: f.fake.Clock.Now()})
	if rep := f.reconcile(); rep.Poisoned != 2 {
		t.Fatalf("report %+v", rep)
	}
	if diff := cmp.Diff([]credential.Job{cleanup}, f.jobs(credential.JobAppCleanup)); diff != "" {
		t.Errorf("queued again (-want +got):\n%s", diff)
	}
	if n := f.fake.Scheduler.Pending(credential.JobHealthProbe); n != 0 {
		t.Errorf("%d health probes queued again", n)
	}
	if n := len(f.log.lines("ERROR")); n != 2 {
		t.Errorf("%d error lines, want one per poisoned message", n)
	}
}

// TestReconcileLeavesFailuresForNextTime: a credential that cannot be read is left for the
// next run, which the error says; the others are reconciled.
func TestReconcileLeavesFailuresForNextTime(t *testing.T) {
	f := newReconcileFixture(t)
	a, _ := f.Submitted()
	b, _ := f.Submitted()
	f.jobs(credential.JobSPPoll)
	f.fake.Clock.Advance(5 * time.Second)
	f.fake.Store.Inject("Get", credentialtest.Fault{Times: 1, Err: errors.New("partition busy")})
	rep, err := f.Domain.Reconciler.Reconcile(context.Background())
	if err == nil || rep.Failed != 1 || rep.Stale != 1 {
		t.Fatalf("report %+v, %v; want one window restarted and one left", rep, err)
	}
	rep = f.reconcile()
	if rep.Stale != 2 {
		t.Fatalf("next run %+v, want both windows (the one restarted is still stale)", rep)
	}
	_, _ = a, b
}

// TestReconcileCleansUpAfterALostDelete: a delete whose clean-up message was lost would
// leave its app registration without an owner. The delete indexed the credential first;
// once its own clean-up had its time, the reconciler queues another, which deletes the app
// and removes the row.
func TestReconcileCleansUpAfterALostDelete(t *testing.T) {
	f := newReconcileFixture(t)
	ctx := context.Background()
	c := f.Verified()
	f.reconcile() // the onboarding's row goes
	if err := f.Domain.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	f.jobs(credential.JobAppCleanup) // the clean-up is lost
	f.fake.Clock.Advance(credential.AppCleanupSettle)
	if rep := f.reconcile(); rep.Cleanups != 0 || rep.Indexed != 1 {
		t.Fatalf("report %+v while the delete's own clean-up may still run", rep)
	}
	f.fake.Clock.Advance(credential.AppCleanupSettle)
	if rep := f.reconcile(); rep.Cleanups != 1 {
		t.Fatalf("report %+v, want the clean-up scheduled again", rep)
	}
	job := f.Single(credential.JobAppCleanup)
	if job.AppObjectID != c.App.ObjectID {
		t.Fatalf("clean-up %+v, want the deleted credential's app %s", job, c.App.ObjectID)
	}
	f.Run(job)
	if _, ok, err := f.fake.Directory.FindApp(ctx, credential.UniqueAppName(c.ID)); err != nil || ok {
		t.Fatalf("the app is still registered (%v)", err)
	}
	if rep := f.reconcile(); rep.Indexed != 0 {
		t.Fatalf("report %+v: the clean-up left its row", rep)
	}
}
