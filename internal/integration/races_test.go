package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// The races of the wizard's requests against the pollers on one credential, run against
// Azurite through the real store and queues. The Entra and Azure edges (the service
// principal lookup and the access probe) are a gate that holds a poll or probe mid-flight
// until the test lets it go, so each interleaving is reached on purpose, not by luck.

// raceIterations is how often each race runs.
const raceIterations = 50

// answer is what the gate says to a lookup or a probe.
type answer struct {
	find   credentialtest.Found
	report credential.ProbeReport
}

// gate is the Finder and Prober of the race tests. After arm, its next call blocks until
// open and then answers held; every other call answers then at once.
type gate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
	held    answer
	then    answer
}

func (g *gate) arm(held, then answer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.held, g.then = true, held, then
	g.entered, g.release = make(chan struct{}), make(chan struct{})
}

func (g *gate) answerThen(then answer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.then = then
}

// wait returns once the held call has arrived.
func (g *gate) wait(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	entered := g.entered
	g.mu.Unlock()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the poll or probe never reached the gate")
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.release)
}

func (g *gate) pass() answer {
	g.mu.Lock()
	if !g.armed {
		a := g.then
		g.mu.Unlock()
		return a
	}
	g.armed = false
	entered, release, a := g.entered, g.release, g.held
	g.mu.Unlock()
	close(entered)
	<-release
	return a
}

func (g *gate) FindServicePrincipal(ctx context.Context, tenantID, appID string) (string, error) {
	a := g.pass()
	return a.find.ObjectID, a.find.Err
}

func (g *gate) Probe(ctx context.Context, t credential.ProbeTarget) credential.ProbeReport {
	return g.pass().report
}

var (
	raceFound  = answer{find: credentialtest.Found{ObjectID: "sp-object"}, report: credentialtest.Report("pass", "pass", "pass", "pass")}
	raceNotYet = answer{find: credentialtest.Found{Err: credentialtest.Provider(credential.ErrSPNotFound, "AADSTS700016")},
		report: credentialtest.Report("403", "403", "403", "skip")}
)

// newRaceFixture is a fixture whose service principal lookup and access probe are a
// gate, and whose scheduler leaves out the windows' backstops: the tests count the chains.
func newRaceFixture(t *testing.T) (*fixture, *gate) {
	t.Helper()
	g := &gate{then: raceFound}
	f := newFixture(t, credential.Config{}, options{}, func(p *credentialtest.Ports, f *fixture) {
		p.Finder, p.Prober, p.Scheduler = g, g, credentialtest.WithoutBackstops(f.queues)
	})
	f.Finder = nil // the gate answers
	return f, g
}

// settleQueue runs the jobs of kind until its queue is empty and returns how many messages
// each generation had. Every job must end without an error.
func (f *fixture) settleQueue(kind credential.JobKind) map[int64]int {
	f.t.Helper()
	seen := map[int64]int{}
	q := azureQueue{t: f.t, qs: f.queues}
	deadline := time.Now().Add(20 * time.Second)
	for q.Pending(kind) > 0 {
		if time.Now().After(deadline) {
			f.t.Fatalf("the %s queue did not empty: a poll chain goes on (generations so far %v)", kind, seen)
		}
		n := q.deliver(kind, 32, func(job credential.Job) {
			seen[job.Generation]++
			f.Run(job)
		})
		if n == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return seen
}

// transitions are the credential's transitions as "from>to@generation".
func (f *fixture) transitions(id string) []string {
	f.t.Helper()
	evs, err := f.store.Events(context.Background(), "org", id)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.From)+">"+string(e.To)+"@"+strconv.FormatInt(e.Generation, 10))
	}
	return out
}

// lostRace says whether err is what the loser of a race may get: 409, for a stale row
// ("changed by another request") or a state that no longer allows the request.
func lostRace(err error) bool {
	var te *credential.TransitionError
	return errors.Is(err, credential.ErrConflict) && (errors.As(err, &te) || strings.Contains(err.Error(), "changed by another request"))
}

// runAsync runs job in the context.Background(); the returned channel gets Run's error.
func runAsync(f *fixture, job credential.Job) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.Domain.Runner.Run(context.Background(), job) }()
	return done
}

// TestRaceStorageResubmitWhileProbing: the customer resubmits the storage details while
// a probe is mid-flight. The new window wins; the old probe's outcome (connected, or
// "not yet" with its follow-up) changes nothing, and its chain ends there: the queue holds
// only the new window's first job.
func TestRaceStorageResubmitWhileProbing(t *testing.T) {
	f, g := newRaceFixture(t)
	for i := range raceIterations {
		g.answerThen(raceFound)
		id, job := f.AtStorage()
		held := []answer{raceNotYet, raceFound}[i%2]
		g.arm(held, raceFound)
		done := runAsync(f, job)
		g.wait(t)
		c, err := f.Domain.Onboarding.SubmitStorage(context.Background(), "org", id, credentialtest.Storage, "resubmit")
		if err != nil || c.Generation != job.Generation+1 {
			t.Fatalf("iteration %d: resubmit during the probe: %v (generation %d)", i, err, c.Generation)
		}
		g.open()
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: the overtaken probe failed instead of ending: %v", i, err)
		}
		c = f.Get(id)
		if c.State != credential.StateAccessPending || c.Generation != job.Generation+1 || c.Progress.Attempts != 0 ||
			c.Progress.Status != credential.StatusProbing || len(c.Progress.Checks) != 0 || c.LastError != (credential.Problem{}) {
			t.Fatalf("iteration %d: the old probe wrote into the new window: %s gen %d attempts %d status %s checks %v",
				i, c.State, c.Generation, c.Progress.Attempts, c.Progress.Status, c.Progress.Checks)
		}
		if n := f.Queue.Pending(credential.JobAccessProbe); n != 1 {
			t.Fatalf("iteration %d: %d probe messages after the restart of the window, want only the new window's first", i, n)
		}
		if seen := f.settleQueue(credential.JobAccessProbe); !cmp.Equal(seen, map[int64]int{job.Generation + 1: 1}) {
			t.Fatalf("iteration %d: messages per generation %v", i, seen)
		}
		want := []string{">draft@0", "draft>sp_pending@1", "sp_pending>sp_verified@1", "sp_verified>access_pending@2",
			"access_pending>access_pending@3", "access_pending>verified@3"}
		if diff := cmp.Diff(want, f.transitions(id)); diff != "" {
			t.Fatalf("iteration %d: events (-want +got):\n%s", i, diff)
		}
	}
}

// TestRaceStorageResubmitAgainstProbe lets the probe's outcome and the resubmit go at the
// same moment. Either may win; the row is then wholly the winner's, the loser gets 409,
// and at most the one follow-up scheduled before the resubmit exists for the old window,
// which changes nothing when it runs.
func TestRaceStorageResubmitAgainstProbe(t *testing.T) {
	f, g := newRaceFixture(t)
	outcomes := map[string]int{}
	for i := range raceIterations {
		g.answerThen(raceFound)
		id, job := f.AtStorage()
		held := []answer{raceNotYet, raceFound}[i%2]
		g.arm(held, raceFound)
		done := runAsync(f, job)
		g.wait(t)
		go g.open()
		_, serr := f.Domain.Onboarding.SubmitStorage(context.Background(), "org", id, credentialtest.Storage, "resubmit")
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: probe: %v", i, err)
		}
		c := f.Get(id)
		switch {
		case serr == nil:
			outcomes["resubmit won"]++
			if c.State != credential.StateAccessPending || c.Generation != job.Generation+1 || c.Progress.Attempts != 0 || len(c.Progress.Checks) != 0 {
				t.Fatalf("iteration %d: resubmit won but the row is %s gen %d attempts %d checks %v", i, c.State, c.Generation, c.Progress.Attempts, c.Progress.Checks)
			}
		case lostRace(serr):
			outcomes["probe won"]++
			if c.Generation != job.Generation || c.Progress.Attempts != 1 || len(c.Progress.Checks) != 4 {
				t.Fatalf("iteration %d: probe won but the row is %s gen %d attempts %d checks %v", i, c.State, c.Generation, c.Progress.Attempts, c.Progress.Checks)
			}
		default:
			t.Fatalf("iteration %d: resubmit failed with %v, want success or 409", i, serr)
		}
		seen := f.settleQueue(credential.JobAccessProbe)
		if seen[job.Generation] > 1 || seen[job.Generation+1] > 1 {
			t.Fatalf("iteration %d: a poll chain went on: messages per generation %v", i, seen)
		}
		if c := f.Get(id); c.State != credential.StateVerified {
			t.Fatalf("iteration %d: ended in %s", i, c.State)
		}
		assertNoDoubleTransition(t, f.transitions(id))
	}
	t.Logf("outcomes of %d races: %v", raceIterations, outcomes)
}

// assertNoDoubleTransition checks that events form one chain (each from is the previous
// to) and that no transition of a generation is recorded twice.
func assertNoDoubleTransition(t *testing.T, evs []string) {
	t.Helper()
	seen := map[string]bool{}
	prev := ""
	for _, e := range evs {
		if seen[e] {
			t.Fatalf("transition %s recorded twice: %v", e, evs)
		}
		seen[e] = true
		from, rest, _ := strings.Cut(e, ">")
		if from != prev {
			t.Fatalf("events do not chain at %s: %v", e, evs)
		}
		prev, _, _ = strings.Cut(rest, "@")
	}
}

// TestRaceDeleteWhilePolling: the credential is deleted while its service principal poll
// or access probe is mid-flight. The job then finds nothing to write: it ends without an
// error (no retry, no poison) and schedules nothing.
func TestRaceDeleteWhilePolling(t *testing.T) {
	f, g := newRaceFixture(t)
	for i := range raceIterations {
		kind := []credential.JobKind{credential.JobSPPoll, credential.JobAccessProbe}[i%2]
		g.answerThen(raceFound)
		var id string
		var job credential.Job
		if kind == credential.JobSPPoll {
			id, job = f.Submitted()
		} else {
			id, job = f.AtStorage()
		}
		held := []answer{raceNotYet, raceNotYet, raceFound, raceFound}[i%4]
		g.arm(held, raceNotYet)
		done := runAsync(f, job)
		g.wait(t)
		if err := f.Domain.Onboarding.Delete(context.Background(), "org", id); err != nil {
			t.Fatalf("iteration %d: delete during the %s: %v", i, kind, err)
		}
		g.open()
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: the %s of a deleted credential failed (it would be retried and poisoned): %v", i, kind, err)
		}
		if _, err := f.store.Get(context.Background(), "org", id); !errors.Is(err, credential.ErrNotFound) {
			t.Fatalf("iteration %d: the deleted credential is back: %v", i, err)
		}
		if n := f.Queue.Pending(kind); n != 0 {
			t.Fatalf("iteration %d: the %s of a deleted credential scheduled %d follow-ups", i, kind, n)
		}
		if cleanup := f.Single(credential.JobAppCleanup); cleanup.CredentialID != id {
			t.Fatalf("iteration %d: clean-up job %+v", i, cleanup)
		}
	}
}

// TestRaceDeleteAgainstPoll lets the poll's outcome and the delete go at the same moment:
// the delete wins (the poll's job ends quietly, its follow-up if any changes nothing) or
// gets 409 and the credential is whole.
func TestRaceDeleteAgainstPoll(t *testing.T) {
	f, g := newRaceFixture(t)
	outcomes := map[string]int{}
	for i := range raceIterations {
		g.answerThen(raceFound)
		id, job := f.Submitted()
		g.arm([]answer{raceNotYet, raceFound}[i%2], raceNotYet)
		done := runAsync(f, job)
		g.wait(t)
		go g.open()
		derr := f.Domain.Onboarding.Delete(context.Background(), "org", id)
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: poll: %v", i, err)
		}
		_, gerr := f.store.Get(context.Background(), "org", id)
		switch {
		case derr == nil:
			outcomes["delete won"]++
			if !errors.Is(gerr, credential.ErrNotFound) {
				t.Fatalf("iteration %d: deleted, yet read back: %v", i, gerr)
			}
		case lostRace(derr):
			outcomes["poll won"]++
			if c := f.Get(id); c.Progress.Attempts != 1 {
				t.Fatalf("iteration %d: poll won but the row has %d attempts", i, c.Progress.Attempts)
			}
			if err := f.Domain.Onboarding.Delete(context.Background(), "org", id); err != nil {
				t.Fatalf("iteration %d: delete after the race: %v", i, err)
			}
		default:
			t.Fatalf("iteration %d: delete failed with %v, want success or 409", i, derr)
		}
		if seen := f.settleQueue(credential.JobSPPoll); seen[job.Generation] > 1 {
			t.Fatalf("iteration %d: the deleted credential's poll chain went on: %v", i, seen)
		}
		f.cleanUps(id)
	}
	t.Logf("outcomes of %d races: %v", raceIterations, outcomes)
}

// cleanUps runs the app clean-up jobs of the deleted credential id: one per delete
// request, the refused ones included (a delete schedules its clean-up before it removes
// the row, and the job deletes nothing while the row holds the app).
func (f *fixture) cleanUps(id string) {
	f.t.Helper()
	jobs := f.Queue.Take(credential.JobAppCleanup)
	if len(jobs) == 0 || len(jobs) > 2 {
		f.t.Fatalf("%d app clean-up jobs after deleting %s, want one per delete request", len(jobs), id)
	}
	for _, j := range jobs {
		if j.CredentialID != id {
			f.t.Fatalf("clean-up job %+v, want one for %s", j, id)
		}
		f.Run(j)
	}
}

// TestRaceSetDefaultWhileDeleting: setting the org default and deleting the credential at
// once. At least one wins; never does the default point at a deleted credential, and the
// loser gets 409 (or 404 once the credential is gone).
func TestRaceSetDefaultWhileDeleting(t *testing.T) {
	f, _ := newRaceFixture(t)
	outcomes := map[string]int{}
	for i := range raceIterations {
		id, job := f.AtStorage()
		f.Run(job)
		if c := f.Get(id); c.State != credential.StateVerified {
			t.Fatalf("setup: %s", c.State)
		}
		var setErr, delErr error
		var wg sync.WaitGroup
		go1 := make(chan struct{})
		// The delete makes more storage calls before its write than the set: give it a
		// head start of 0 to 27 ms so that both orders of the writes happen.
		lead := time.Duration(i%10) * 3 * time.Millisecond
		wg.Go(func() {
			<-go1
			time.Sleep(lead)
			_, setErr = f.Domain.Onboarding.SetOrgDefault(context.Background(), "org", id)
		})
		wg.Go(func() { <-go1; delErr = f.Domain.Onboarding.Delete(context.Background(), "org", id) })
		close(go1)
		wg.Wait()
		def, err := f.store.OrgDefault(context.Background(), "org")
		if err != nil {
			t.Fatal(err)
		}
		_, gerr := f.store.Get(context.Background(), "org", id)
		exists := gerr == nil
		if gerr != nil && !errors.Is(gerr, credential.ErrNotFound) {
			t.Fatal(gerr)
		}
		for name, err := range map[string]error{"set default": setErr, "delete": delErr} {
			if err != nil && !lostRace(err) && !errors.Is(err, credential.ErrNotFound) {
				t.Fatalf("iteration %d: %s failed with %v, want 409 or 404", i, name, err)
			}
		}
		switch {
		case setErr != nil && delErr != nil:
			t.Fatalf("iteration %d: both lost: set %v, delete %v", i, setErr, delErr)
		case delErr == nil:
			outcomes["delete won"]++
			if setErr == nil {
				outcomes["set first, then delete"]++
			}
			if exists || def == id {
				t.Fatalf("iteration %d: deleted, yet the row exists (%v) or the default points at it (%q)", i, exists, def)
			}
		default:
			outcomes["set won, delete 409"]++
			if !exists || def != id {
				t.Fatalf("iteration %d: the default was set and the delete refused, yet row %v default %q", i, exists, def)
			}
			if err := f.Domain.Onboarding.Delete(context.Background(), "org", id); err != nil {
				t.Fatal(err)
			}
			if def, _ := f.store.OrgDefault(context.Background(), "org"); def != "" {
				t.Fatalf("iteration %d: the default %q outlived its credential", i, def)
			}
		}
		f.cleanUps(id)
	}
	t.Logf("outcomes of %d races: %v", raceIterations, outcomes)
}

// TestRaceTenantResubmitWhilePolling: the tenant is submitted again while a service
// principal poll is mid-flight. The old poll's outcome changes nothing and schedules
// nothing; the new window alone runs on.
func TestRaceTenantResubmitWhilePolling(t *testing.T) {
	f, g := newRaceFixture(t)
	for i := range raceIterations {
		g.answerThen(raceFound)
		id, job := f.Submitted()
		g.arm([]answer{raceNotYet, raceFound}[i%2], raceFound)
		done := runAsync(f, job)
		g.wait(t)
		c, err := f.Domain.Onboarding.SubmitTenant(context.Background(), "org", id, credentialtest.Tenant, "resubmit")
		if err != nil || c.Generation != job.Generation+1 {
			t.Fatalf("iteration %d: resubmit during the poll: %v", i, err)
		}
		g.open()
		if err := <-done; err != nil {
			t.Fatalf("iteration %d: the overtaken poll failed instead of ending: %v", i, err)
		}
		c = f.Get(id)
		if c.State != credential.StateSPPending || c.Generation != job.Generation+1 || c.Progress.Attempts != 0 || c.SPObjectID != "" {
			t.Fatalf("iteration %d: the old poll wrote into the new window: %s gen %d attempts %d sp %q", i, c.State, c.Generation, c.Progress.Attempts, c.SPObjectID)
		}
		if n := f.Queue.Pending(credential.JobSPPoll); n != 1 {
			t.Fatalf("iteration %d: %d poll messages after the restart of the window, want only the new window's first", i, n)
		}
		if seen := f.settleQueue(credential.JobSPPoll); !cmp.Equal(seen, map[int64]int{job.Generation + 1: 1}) {
			t.Fatalf("iteration %d: messages per generation %v", i, seen)
		}
		want := []string{">draft@0", "draft>sp_pending@1", "sp_pending>sp_pending@2", "sp_pending>sp_verified@2"}
		if diff := cmp.Diff(want, f.transitions(id)); diff != "" {
			t.Fatalf("iteration %d: events (-want +got):\n%s", i, diff)
		}
	}
}
