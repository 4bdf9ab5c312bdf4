package credential_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// newGuardFixture is the fixture with a one-second guard delay.
func newGuardFixture(t *testing.T) *fixture {
	return newFixture(t, credential.Config{CreateGuardDelay: time.Second}, nil)
}

func guardOf(id string) credential.Job {
	return credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: id}
}

// failCreateHalfway makes the directory refuse the federated credential, the step after
// the app exists: a create that dies half-way.
func (f *fixture) failCreateHalfway() {
	f.fake.Directory.Inject("AddFederatedCredential", credentialtest.Fault{Times: -1, Err: credential.ErrUnavailable})
}

// TestCreateSchedulesItsGuard: every create queues its guard before it makes the app, and
// the guard of a create that finished changes nothing.
func TestCreateSchedulesItsGuard(t *testing.T) {
	f := newGuardFixture(t)
	c := f.Create("g1")
	job := f.Single(credential.JobAppCleanup)
	if job != guardOf(c.ID) {
		t.Fatalf("guard job %+v, want %+v", job, guardOf(c.ID))
	}
	if h := f.fake.Scheduler.History(); h[0].Job != job || h[0].Delay != time.Second {
		t.Fatalf("first job %+v after %v, want the guard after the guard delay", h[0].Job, h[0].Delay)
	}
	f.fake.Clock.Advance(time.Second)
	f.Run(job)
	if d := f.fake.Directory.Deleted(); len(d) != 0 {
		t.Fatalf("the guard of a finished create deleted %v", d)
	}
	if got := f.Get(c.ID); got.App != c.App {
		t.Fatalf("app %+v after the guard, want %+v", got.App, c.App)
	}
}

// TestCreateIsOneAppPerCredential: the app is keyed by the credential's unique name, so a
// create's Graph call repeated after a lost answer finds the same app.
func TestCreateIsOneAppPerCredential(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	c := f.Create("g2")
	again, err := f.fake.Directory.CreateApp(context.Background(), credential.AppSpec{DisplayName: credential.AppNamePrefix + "g2", UniqueName: credential.UniqueAppName(c.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if again != c.App {
		t.Fatalf("repeated create made %+v, want the credential's app %+v", again, c.App)
	}
}

// TestGuardDeletesWhatACreateLeft: a create that died between making the app and
// recording it (here the federated credential failed, then the app's deletion, the
// clean-up job is lost, and in one case the row's deletion failed too) ends with neither
// app nor row once the guard runs, and the name is free again.
func TestGuardDeletesWhatACreateLeft(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keepRow bool
	}{
		{name: "row removed by the failed create", keepRow: false},
		{name: "row left behind too", keepRow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t)
			f.failCreateHalfway()
			f.fake.Directory.Inject("DeleteApp", credentialtest.Fault{Times: -1, Err: errors.New("graph is down")})
			if tc.keepRow {
				f.fake.Store.Inject("Delete", credentialtest.Fault{Times: -1, Err: errors.New("storage is down")})
			}
			ctx := context.Background()
			_, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "g3", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
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
			if n := f.fake.Directory.Apps(); n != 1 {
				t.Fatalf("%d apps after the failed create, want the one left behind", n)
			}
			_, err = f.fake.Store.Get(ctx, "org", guard.CredentialID)
			if kept := err == nil; kept != tc.keepRow {
				t.Fatalf("row kept after the failed create: %v (%v), want %v", kept, err, tc.keepRow)
			}
			f.fake.Directory.Inject("DeleteApp", credentialtest.Fault{})
			f.fake.Store.Inject("Delete", credentialtest.Fault{})
			f.fake.Clock.Advance(time.Second)
			f.Run(guard)
			if n := f.fake.Directory.Apps(); n != 0 {
				t.Fatalf("%d apps after the guard, want none", n)
			}
			if _, err := f.fake.Store.Get(ctx, "org", guard.CredentialID); !errors.Is(err, credential.ErrNotFound) {
				t.Fatalf("row after the guard: %v, want ErrNotFound", err)
			}
			// The name is free again.
			f.fake.Directory.Inject("AddFederatedCredential", credentialtest.Fault{})
			f.Create("g3")
		})
	}
}

// TestGuardWaitsForAYoungRow: a row younger than the delay (another instance's clock
// ahead of this one's) is looked at again later, not judged now.
func TestGuardWaitsForAYoungRow(t *testing.T) {
	f := newGuardFixture(t)
	ctx := context.Background()
	now := f.fake.Clock.Now()
	c := &credential.Credential{OrgID: "org", ID: "young", Name: "g4", StorageType: "azure_federated",
		State: credential.StateDraft, CreatedAt: now, UpdatedAt: now}
	c.BasePath, _ = credential.ParseBasePath("az://bloblake/lakedata")
	if err := f.fake.Store.Insert(ctx, c, credential.EventRecord{Time: now, To: credential.StateDraft, Cause: credential.EventCreated}); err != nil {
		t.Fatal(err)
	}
	f.fake.Clock.Advance(500 * time.Millisecond)
	f.Run(guardOf("young"))
	if job := f.Single(credential.JobAppCleanup); job != guardOf("young") {
		t.Fatalf("rescheduled %+v, want the guard again", job)
	}
	if h := f.fake.Scheduler.History(); h[len(h)-1].Delay != 500*time.Millisecond {
		t.Fatalf("rescheduled after %v, want when the row is old enough (500ms)", h[len(h)-1].Delay)
	}
	if _, err := f.fake.Store.Get(ctx, "org", "young"); err != nil {
		t.Fatalf("young row: %v, want it kept", err)
	}
}

// TestFailedCreateUndoneAfterAConflict: the row of a create that failed half-way is
// removed even when its first deletes meet a concurrent change (another request moved
// the row or the organization's credential count since it was read), so neither its
// name nor its place under the credential limit waits for the guard.
func TestFailedCreateUndoneAfterAConflict(t *testing.T) {
	f := newGuardFixture(t)
	f.failCreateHalfway()
	f.fake.Store.Inject("Delete", credentialtest.Fault{Times: 2,
		Err: &credential.ConflictError{Message: "the credential was changed by another request; read it again and retry"}})
	ctx := context.Background()
	if _, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "half", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r"); err == nil {
		t.Fatal("the create passed")
	}
	if cs, err := f.fake.Store.List(ctx, "org"); err != nil || len(cs) != 0 {
		t.Fatalf("rows left: %v, %v", cs, err)
	}
	if n := f.fake.Store.FaultsLeft("Delete"); n != 0 {
		t.Fatalf("%d conflicts not met", n)
	}
}
