package credentialtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

// The contract's part on actors and the registry of workload identities.

// Sample ids of workload identities: two tenants, and client ids of managed identities.
const (
	wiTenantA = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	wiTenantB = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
)

var (
	byUser     = credential.Actor{Kind: credential.ActorUser, ID: "user-1"}
	byWorkload = credential.Actor{Kind: credential.ActorWorkloadIdentity, ID: "5f1c8f55-45a4-4f0e-9a55-b3f5c5f6c1a2",
		ClientID: "7ab7e149-fa92-4d13-b4f5-3968577a83a7", TenantID: wiTenantA}
)

// workload is a new registration of clientID in tenantID for org, made at at.
func workload(org, tenantID, clientID string, at time.Time) *credential.WorkloadIdentity {
	return &credential.WorkloadIdentity{OrgID: org, ID: uuid.NewString(), DisplayName: "job-" + clientID[:8],
		TenantID: tenantID, ClientID: clientID, CreatedAt: at}
}

// wiEvent is the event of cause for w, made by by.
func wiEvent(w *credential.WorkloadIdentity, cause credential.WorkloadIdentityCause, by credential.Actor) credential.WorkloadIdentityEvent {
	return credential.WorkloadIdentityEvent{Time: w.CreatedAt, Cause: cause, WorkloadIdentityID: w.ID, DisplayName: w.DisplayName,
		TenantID: w.TenantID, ClientID: w.ClientID, RequestID: "req-" + string(cause), Actor: by}
}

func (c contract) register(s StoreUnderTest, w *credential.WorkloadIdentity) *credential.WorkloadIdentity {
	c.t.Helper()
	if err := s.Store.InsertWorkloadIdentity(context.Background(), w, wiEvent(w, credential.WorkloadIdentityRegistered, byUser)); err != nil {
		c.t.Fatalf("register %s: %v", w.ClientID, err)
	}
	return w
}

func (c contract) find(s StoreUnderTest, org, tenantID, clientID string) *credential.WorkloadIdentity {
	c.t.Helper()
	w, err := s.Store.FindWorkloadIdentity(context.Background(), org, tenantID, clientID)
	if err != nil {
		c.t.Fatalf("find %s in %s: %v", clientID, org, err)
	}
	return w
}

var ignoreWorkloadETag = cmpopts.IgnoreFields(credential.WorkloadIdentity{}, "ETag")

// testEventActors: an event's actor round-trips, a user's or a workload identity's, and an
// event without one reads back without one.
func testEventActors(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	ev := submitted(credential.StateDraft)
	ev.Actor = byWorkload
	cr.State = credential.StateSPPending
	if err := s.Store.Update(ctx, cr, ev); err != nil {
		t.Fatal(err)
	}
	cr = c.get(s, "org-a", cr.ID)
	byUserEv := &credential.EventRecord{Time: T0.Add(time.Second), From: credential.StateSPPending, To: credential.StateSPPending,
		Cause: credential.EventSubmitTenant, Generation: 2, Actor: byUser}
	if err := s.Store.Update(ctx, cr, byUserEv); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Store.Events(ctx, "org-a", cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]credential.EventRecord{created, *ev, *byUserEv}, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if !evs[0].Actor.IsZero() {
		t.Fatalf("an event without an actor reads back with %+v", evs[0].Actor)
	}
}

// testWorkloadIdentities: a registration round-trips and is found by its tenant and client
// id (and only so) and by its id, in its organization only; a pair is unique within an
// organization, not across them; lists come oldest first; a delete removes it (from a
// stale read it conflicts, twice it is not found); the log holds every registration and
// removal with its actor, oldest first.
func testWorkloadIdentities(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	client1, client2, client3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	a := c.register(s, workload("org-a", wiTenantA, client1, T0.Add(2*time.Minute)))
	if a.ETag != "" {
		t.Fatalf("after the insert the registration holds ETag %q: a transaction answers none", a.ETag)
	}
	found := c.find(s, "org-a", wiTenantA, client1)
	if diff := cmp.Diff(a, found, ignoreWorkloadETag); diff != "" || found.ETag == "" {
		t.Fatalf("round trip (-wrote +read), ETag %q:\n%s", found.ETag, diff)
	}
	byID, err := s.Store.GetWorkloadIdentity(ctx, "org-a", a.ID)
	if err != nil || byID.ETag != found.ETag {
		t.Fatalf("get by id: %+v, %v; want ETag %q", byID, err, found.ETag)
	}
	if diff := cmp.Diff(a, byID, ignoreWorkloadETag); diff != "" {
		t.Fatalf("get by id (-wrote +read):\n%s", diff)
	}
	for _, miss := range []struct{ org, tenant, client string }{
		{"org-b", wiTenantA, client1}, // another organization
		{"org-a", wiTenantB, client1}, // the same client id in another tenant
		{"org-a", wiTenantA, client2}, // another client
	} {
		if _, err := s.Store.FindWorkloadIdentity(ctx, miss.org, miss.tenant, miss.client); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("find %+v: %v, want ErrNotFound", miss, err)
		}
	}
	if _, err := s.Store.GetWorkloadIdentity(ctx, "org-b", a.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("get another organization's: %v, want ErrNotFound", err)
	}

	// The pair again in org-a is a conflict and writes nothing; org-b may register it.
	dup := workload("org-a", wiTenantA, client1, T0)
	err = s.Store.InsertWorkloadIdentity(ctx, dup, wiEvent(dup, credential.WorkloadIdentityRegistered, byUser))
	var ce *credential.ConflictError
	if !errors.As(err, &ce) || ce.Message != credential.WorkloadIdentityConflict(wiTenantA, client1).Message {
		t.Fatalf("a second registration of the pair: %v", err)
	}
	if _, err := s.Store.GetWorkloadIdentity(ctx, "org-a", dup.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused registration left a row: %v", err)
	}
	other := c.register(s, workload("org-b", wiTenantA, client1, T0))

	b := c.register(s, workload("org-a", wiTenantB, client1, T0)) // the same client id, another tenant
	d := c.register(s, workload("org-a", wiTenantA, client3, T0.Add(time.Minute)))
	list, err := s.Store.ListWorkloadIdentities(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range list {
		if w.ETag == "" {
			t.Errorf("listed %s without an ETag", w.ID)
		}
		ids = append(ids, w.ID)
	}
	if diff := cmp.Diff([]string{b.ID, d.ID, a.ID}, ids); diff != "" {
		t.Fatalf("list (-oldest first +got):\n%s", diff)
	}

	// A delete from a stale read conflicts: the pair was removed and registered again.
	stale := c.find(s, "org-a", wiTenantA, client3)
	fresh := c.find(s, "org-a", wiTenantA, client3)
	if err := s.Store.DeleteWorkloadIdentity(ctx, fresh, wiEvent(fresh, credential.WorkloadIdentityRemoved, byUser)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.GetWorkloadIdentity(ctx, "org-a", d.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.Store.DeleteWorkloadIdentity(ctx, stale, wiEvent(stale, credential.WorkloadIdentityRemoved, byUser)); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("a second delete: %v, want ErrNotFound", err)
	}
	again := c.register(s, workload("org-a", wiTenantA, client3, T0.Add(3*time.Minute)))
	if err := s.Store.DeleteWorkloadIdentity(ctx, stale, wiEvent(stale, credential.WorkloadIdentityRemoved, byUser)); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a delete from before the pair was registered again: %v, want ErrConflict", err)
	}
	if got := c.find(s, "org-a", wiTenantA, client3); got.ID != again.ID {
		t.Fatalf("the refused delete removed the new registration: %+v", got)
	}
	if w := c.find(s, "org-b", wiTenantA, client1); w.ID != other.ID {
		t.Fatalf("org-b's registration: %+v", w)
	}

	// The log: every registration and removal of org-a, oldest first, with its actor.
	removal := wiEvent(fresh, credential.WorkloadIdentityRemoved, byUser)
	want := []credential.WorkloadIdentityEvent{
		wiEvent(a, credential.WorkloadIdentityRegistered, byUser), wiEvent(b, credential.WorkloadIdentityRegistered, byUser),
		wiEvent(d, credential.WorkloadIdentityRegistered, byUser), removal,
		wiEvent(again, credential.WorkloadIdentityRegistered, byUser),
	}
	evs, err := s.Store.WorkloadIdentityEvents(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Fatalf("org-a's registry log (-want +got):\n%s", diff)
	}
	// Many events keep their order (past ten, where text order of numbers would differ),
	// and an actor of either kind round-trips.
	for i := range 11 {
		w := workload("org-c", wiTenantB, uuid.NewString(), T0.In(time.FixedZone("CET", 3600)))
		ev := wiEvent(w, credential.WorkloadIdentityRegistered, byWorkload)
		ev.RequestID = fmt.Sprintf("r%02d", i)
		if err := s.Store.InsertWorkloadIdentity(ctx, w, ev); err != nil {
			t.Fatal(err)
		}
	}
	evs, err = s.Store.WorkloadIdentityEvents(ctx, "org-c")
	if err != nil || len(evs) != 11 {
		t.Fatalf("org-c's log: %d events, %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.RequestID != fmt.Sprintf("r%02d", i) || ev.Actor != byWorkload || !ev.Time.Equal(T0) || ev.Time.Location() != time.UTC {
			t.Fatalf("org-c's event %d: %+v", i, ev)
		}
	}
	if evs, err := s.Store.WorkloadIdentityEvents(ctx, "org-d"); err != nil || len(evs) != 0 {
		t.Fatalf("an organization without a registry: %v, %v", evs, err)
	}
}

// testWorkloadIdentityLimit: at its limit an organization's new registrations are refused
// with a *QuotaError, an existing pair still as the conflict it is; racing registrations
// for the last place leave one winner; a removal frees one place; another organization
// has its own count.
func testWorkloadIdentityLimit(t *testing.T, c contract) {
	const limit = 3
	s := c.open(Limits{WorkloadIdentities: limit})
	ctx := context.Background()
	first := c.register(s, workload("org-a", wiTenantA, uuid.NewString(), T0))
	c.register(s, workload("org-a", wiTenantA, uuid.NewString(), T0))
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			w := workload("org-a", wiTenantB, uuid.NewString(), T0)
			errs[i] = s.Store.InsertWorkloadIdentity(ctx, w, wiEvent(w, credential.WorkloadIdentityRegistered, byUser))
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		var qe *credential.QuotaError
		switch {
		case err == nil:
			wins++
		case !errors.As(err, &qe) || qe.Quota != credential.QuotaWorkloadIdentities || qe.Limit != limit || errors.Is(err, credential.ErrConflict):
			t.Errorf("a racer for the last place: %v, want a *QuotaError of %d workload identities", err, limit)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won the last place, want 1", wins)
	}
	dup := workload("org-a", first.TenantID, first.ClientID, T0)
	if err := s.Store.InsertWorkloadIdentity(ctx, dup, wiEvent(dup, credential.WorkloadIdentityRegistered, byUser)); !errors.Is(err, credential.ErrConflict) ||
		errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("an existing pair at the limit: %v, want the conflict", err)
	}
	c.register(s, workload("org-b", wiTenantA, first.ClientID, T0)) // another organization has its own count

	held := c.find(s, "org-a", first.TenantID, first.ClientID)
	if err := s.Store.DeleteWorkloadIdentity(ctx, held, wiEvent(held, credential.WorkloadIdentityRemoved, byUser)); err != nil {
		t.Fatal(err)
	}
	c.register(s, workload("org-a", wiTenantA, uuid.NewString(), T0))
	over := workload("org-a", wiTenantA, uuid.NewString(), T0)
	if err := s.Store.InsertWorkloadIdentity(ctx, over, wiEvent(over, credential.WorkloadIdentityRegistered, byUser)); !errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("one removal freed more than one place: %v", err)
	}
}

// testWorkloadInsertLost: a registration whose answer was lost stands, counted once.
func testWorkloadInsertLost(t *testing.T, c contract) {
	s := c.open(Limits{WorkloadIdentities: 2})
	ctx := context.Background()
	w := workload("org-a", wiTenantA, uuid.NewString(), T0)
	s.LoseAnswer(CallInsertWorkloadIdentity)
	c.register(s, w)
	if got := c.find(s, "org-a", w.TenantID, w.ClientID); got.ID != w.ID {
		t.Errorf("stored %+v", got)
	}
	if evs, err := s.Store.WorkloadIdentityEvents(ctx, "org-a"); err != nil || len(evs) != 1 {
		t.Errorf("events %+v, %v; want the one registration", evs, err)
	}
	dup := workload("org-a", w.TenantID, w.ClientID, T0)
	if err := s.Store.InsertWorkloadIdentity(ctx, dup, wiEvent(dup, credential.WorkloadIdentityRegistered, byUser)); !errors.Is(err, credential.ErrConflict) {
		t.Errorf("a real second registration of the pair: %v, want ErrConflict", err)
	}
	c.register(s, workload("org-a", wiTenantB, uuid.NewString(), T0))
	over := workload("org-a", wiTenantB, uuid.NewString(), T0)
	if err := s.Store.InsertWorkloadIdentity(ctx, over, wiEvent(over, credential.WorkloadIdentityRegistered, byUser)); !errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("a third registration: %v, want the limit", err)
	}
}

// testWorkloadDeleteLost: a removal whose answer was lost stands, with one event, and
// frees one place.
func testWorkloadDeleteLost(t *testing.T, c contract) {
	s := c.open(Limits{WorkloadIdentities: 2})
	ctx := context.Background()
	c.register(s, workload("org-a", wiTenantA, uuid.NewString(), T0))
	w := c.register(s, workload("org-a", wiTenantB, uuid.NewString(), T0))
	held := c.find(s, "org-a", w.TenantID, w.ClientID)
	s.LoseAnswer(CallDeleteWorkloadIdentity)
	if err := s.Store.DeleteWorkloadIdentity(ctx, held, wiEvent(held, credential.WorkloadIdentityRemoved, byUser)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Store.GetWorkloadIdentity(ctx, "org-a", w.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("get after the delete: %v", err)
	}
	evs, err := s.Store.WorkloadIdentityEvents(ctx, "org-a")
	if err != nil || len(evs) != 3 || evs[2].Cause != credential.WorkloadIdentityRemoved {
		t.Errorf("events %+v, %v; want two registrations and one removal", evs, err)
	}
	c.register(s, workload("org-a", wiTenantB, uuid.NewString(), T0))
	over := workload("org-a", wiTenantB, uuid.NewString(), T0)
	if err := s.Store.InsertWorkloadIdentity(ctx, over, wiEvent(over, credential.WorkloadIdentityRegistered, byUser)); !errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("after the lost delete and one registration: %v, want the limit: the delete freed one place", err)
	}
}
