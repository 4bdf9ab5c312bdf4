package credential_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/store"
)

// failingDirectory is the scripted directory whose federated credential step fails, and
// whose app deletion fails too when failDelete is set: a create that dies half-way.
type failingDirectory struct {
	*scripted
	failDelete bool
}

func (d *failingDirectory) AddFederatedCredential(context.Context, string, credential.FederatedCredential) error {
	return credential.ErrUnavailable
}

func (d *failingDirectory) DeleteApp(ctx context.Context, objectID string) error {
	if d.failDelete {
		return errors.New("graph is down")
	}
	return d.scripted.DeleteApp(ctx, objectID)
}

// flakyStore is the Azurite store whose deletes fail when failDelete is set.
type flakyStore struct {
	*store.Store
	failDelete bool
}

func (s *flakyStore) Delete(ctx context.Context, c *credential.Credential) error {
	if s.failDelete {
		return errors.New("storage is down")
	}
	return s.Store.Delete(ctx, c)
}

// guardService is the fixture's service with a one-second guard delay, on dir and st
// (the fixture's store when nil).
func (f *fixture) guardService(dir credential.Directory, st credential.Store) *credentialtest.Domain {
	f.t.Helper()
	if st == nil {
		st = f.store
	}
	return f.wire(credential.Config{SPPollInterval: time.Second, AccessProbeInterval: time.Second, CreateGuardDelay: time.Second},
		func(p *credentialtest.Ports) { p.Store, p.Directory, p.Scheduler = st, dir, f.queues })
}

func guardOf(id string) credential.Job {
	return credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: id}
}

// TestCreateSchedulesItsGuard: every create queues its guard before it makes the app, and
// the guard of a create that finished changes nothing.
func TestCreateSchedulesItsGuard(t *testing.T) {
	f := newFixture(t)
	f.svc = f.guardService(f.fake, nil)
	c, err := f.svc.Onboarding.Create(context.Background(), "org", credential.CreateInput{Name: "g1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	job := f.single(credential.JobAppCleanup)
	if job != guardOf(c.ID) {
		t.Fatalf("guard job %+v, want %+v", job, guardOf(c.ID))
	}
	f.now = f.now.Add(time.Second)
	f.run(job)
	if len(f.fake.deleted) != 0 {
		t.Fatalf("the guard of a finished create deleted %v", f.fake.deleted)
	}
	if got := f.get(c.ID); got.App != c.App {
		t.Fatalf("app %+v after the guard, want %+v", got.App, c.App)
	}
}

// TestCreateIsOneAppPerCredential: the app is keyed by the credential's unique name, so a
// create's Graph call repeated after a lost answer finds the same app.
func TestCreateIsOneAppPerCredential(t *testing.T) {
	f := newFixture(t)
	c, err := f.svc.Onboarding.Create(context.Background(), "org", credential.CreateInput{Name: "g2", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.fake.CreateApp(context.Background(), credential.AppNamePrefix+"g2", credential.UniqueAppName(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if again != c.App {
		t.Fatalf("repeated create made %+v, want the credential's app %+v", again, c.App)
	}
}

// TestGuardDeletesWhatACreateLeft: a create that died between making the app and
// recording it (here the federated credential failed, then the app's deletion, the
// clean-up job is lost, and in one case the row's deletion failed too) ends with neither app nor row once the guard runs, and the name
// is free again.
func TestGuardDeletesWhatACreateLeft(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keepRow bool
	}{
		{name: "row removed by the failed create", keepRow: false},
		{name: "row left behind too", keepRow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			dir := &failingDirectory{scripted: f.fake, failDelete: true}
			st := &flakyStore{Store: f.store, failDelete: tc.keepRow}
			f.svc = f.guardService(dir, st)
			ctx := context.Background()
			_, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "g3", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
			if !errors.Is(err, credential.ErrUnavailable) {
				t.Fatalf("create: %v, want ErrUnavailable", err)
			}
			// The queue holds the clean-up of the app the create could not delete; suppose it
			// is lost as well, and only the guard is left.
			queued := f.jobs(credential.JobAppCleanup)
			if len(queued) == 0 {
				t.Fatal("nothing queued for the failed create")
			}
			guard := guardOf(queued[0].CredentialID)
			if len(f.fake.apps) != 1 {
				t.Fatalf("apps after the failed create: %v, want the one left behind", f.fake.apps)
			}
			_, err = f.store.Get(ctx, "org", guard.CredentialID)
			if kept := err == nil; kept != tc.keepRow {
				t.Fatalf("row kept after the failed create: %v (%v), want %v", kept, err, tc.keepRow)
			}
			dir.failDelete, st.failDelete = false, false
			f.now = f.now.Add(time.Second)
			f.run(guard)
			if len(f.fake.apps) != 0 {
				t.Fatalf("apps after the guard: %v, want none", f.fake.apps)
			}
			if _, err := f.store.Get(ctx, "org", guard.CredentialID); !errors.Is(err, credential.ErrNotFound) {
				t.Fatalf("row after the guard: %v, want ErrNotFound", err)
			}
			// The name is free again.
			if _, err := f.guardService(f.fake, nil).Onboarding.Create(ctx, "org", credential.CreateInput{Name: "g3", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r"); err != nil {
				t.Fatalf("create with the freed name: %v", err)
			}
		})
	}
}

// TestGuardWaitsForAYoungRow: a row younger than the delay (another instance's clock
// ahead of this one's) is looked at again later, not judged now.
func TestGuardWaitsForAYoungRow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := &credential.Credential{OrgID: "org", ID: "young", Name: "g4", StorageType: "azure_federated",
		State: credential.StateDraft, CreatedAt: f.now, UpdatedAt: f.now}
	c.BasePath, _ = credential.ParseBasePath("az://bloblake/lakedata")
	if err := f.store.Insert(ctx, c, credential.EventRecord{Time: f.now, To: credential.StateDraft, Cause: credential.EventCreated}); err != nil {
		t.Fatal(err)
	}
	f.svc = f.guardService(f.fake, nil)
	f.now = f.now.Add(500 * time.Millisecond)
	f.run(guardOf("young"))
	if job := f.single(credential.JobAppCleanup); job != guardOf("young") {
		t.Fatalf("rescheduled %+v, want the guard again", job)
	}
	if _, err := f.store.Get(ctx, "org", "young"); err != nil {
		t.Fatalf("young row: %v, want it kept", err)
	}
}

// conflictingStore is the Azurite store whose first delete loses a race: another request
// moved the row or the organization's credential count since it was read.
type conflictingStore struct {
	*store.Store
	conflicts int
}

func (s *conflictingStore) Delete(ctx context.Context, c *credential.Credential) error {
	if s.conflicts > 0 {
		s.conflicts--
		return &credential.ConflictError{Message: "the credential was changed by another request; read it again and retry"}
	}
	return s.Store.Delete(ctx, c)
}

// TestFailedCreateUndoneAfterAConflict: the row of a create that failed half-way is
// removed even when its first delete meets a concurrent change, so neither its name nor
// its place under the credential limit waits for the guard.
func TestFailedCreateUndoneAfterAConflict(t *testing.T) {
	f := newFixture(t)
	st := &conflictingStore{Store: f.store, conflicts: 2}
	svc := f.guardService(&failingDirectory{scripted: f.fake}, st)
	ctx := context.Background()
	_, err := svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "half", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err == nil {
		t.Fatal("the create passed")
	}
	if cs, err := f.store.List(ctx, "org"); err != nil || len(cs) != 0 {
		t.Fatalf("rows left: %v, %v", cs, err)
	}
	if st.conflicts != 0 {
		t.Fatalf("%d conflicts not met", st.conflicts)
	}
}
