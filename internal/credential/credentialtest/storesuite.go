package credentialtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

// StoreUnderTest is a store the contract suite runs against.
type StoreUnderTest struct {
	Store interface {
		credential.Store
		credential.WorkspaceStore
		credential.HealthStore
		credential.WindowIndex
		credential.WorkloadIdentityStore
	}
	// LoseAnswer makes the next call named call (CallInsert, CallUpdate, ...) land and
	// lose its answer, so that the store's retry of it meets its own write.
	LoseAnswer func(call string)
	// LoseAnswerThen does what LoseAnswer does, and runs meanwhile between the write and
	// the store's retry of it.
	LoseAnswerThen func(call string, meanwhile func())
}

// TestStoreWriteIDs runs the part of TestStore that loses answers: for a store with more
// than one way to lose one, to run it once more with the other.
func TestStoreWriteIDs(t *testing.T, newStore func(t *testing.T, limits Limits) StoreUnderTest) {
	testWriteIDs(t, contract{t: t, newStore: newStore})
}

// TestStore is the contract of the domain's store, run against every implementation:
// newStore opens a new, empty one with the given per-organization limits for each test.
// It covers what the domain relies on: round trips, not found across organizations,
// unique names, conditional writes (stale ETags, the ETags transactions answer or clear, the
// credential check of default and workspace writes), write ids (a write whose answer was
// lost stands, once), the order of lists and logs, tombstones, workspaces and pins, the
// limits, the org default (set and cleared) and its mark on the credentials' reads, health, the events' actors, the registry of
// workload identities (storesuite_workloads.go) and the open-window index.
func TestStore(t *testing.T, newStore func(t *testing.T, limits Limits) StoreUnderTest) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s contract)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"DuplicateName", testDuplicateName},
		{"StaleETag", testStaleETag},
		{"TransactionETags", testTransactionETags},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"WriteIDs", testWriteIDs},
		{"Order", testOrder},
		{"Tombstone", testTombstone},
		{"OrgDefault", testOrgDefault},
		{"ClearOrgDefault", testClearOrgDefault},
		{"OrgDefaultMark", testOrgDefaultMark},
		{"Workspaces", testWorkspaces},
		{"LinksOfTheDeleted", testLinksOfTheDeleted},
		{"OpenWindows", testOpenWindows},
		{"Limits", testLimits},
		{"Health", testHealth},
		{"EventActors", testEventActors},
		{"WorkloadIdentities", testWorkloadIdentities},
		{"WorkloadIdentityLimit", testWorkloadIdentityLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.test(t, contract{t: t, newStore: newStore})
		})
	}
}

// contract is one test of the suite.
type contract struct {
	t        *testing.T
	newStore func(t *testing.T, limits Limits) StoreUnderTest
}

// on is the contract for the (sub)test t.
func (c contract) on(t *testing.T) contract { return contract{t: t, newStore: c.newStore} }

func (c contract) open(l Limits) StoreUnderTest { return c.newStore(c.t, l) }

func (c contract) store() StoreUnderTest { return c.open(Limits{}) }

func sample(org, name string) *credential.Credential {
	bp, _ := credential.ParseBasePath("az://bloblake/lakedata/tables")
	return &credential.Credential{OrgID: org, ID: uuid.NewString(), Name: name, StorageType: credential.StorageTypeAzureFederated,
		BasePath: bp, State: credential.StateDraft, CreatedAt: T0, UpdatedAt: T0}
}

var created = credential.EventRecord{Time: T0, To: credential.StateDraft, Cause: credential.EventCreated, RequestID: "req-create"}

func (c contract) insert(s StoreUnderTest, cr *credential.Credential) *credential.Credential {
	c.t.Helper()
	if err := s.Store.Insert(context.Background(), cr, created); err != nil {
		c.t.Fatalf("insert %s: %v", cr.Name, err)
	}
	return cr
}

func (c contract) get(s StoreUnderTest, org, id string) *credential.Credential {
	c.t.Helper()
	got, err := s.Store.Get(context.Background(), org, id)
	if err != nil {
		c.t.Fatalf("get %s: %v", id, err)
	}
	return got
}

// verified inserts a credential of org and moves it to verified with one plain update.
func (c contract) verified(s StoreUnderTest, org, name string) *credential.Credential {
	c.t.Helper()
	cr := c.insert(s, sample(org, name))
	cr.State, cr.VerifiedAt = credential.StateVerified, T0
	if err := s.Store.Update(context.Background(), cr, nil); err != nil {
		c.t.Fatal(err)
	}
	return cr
}

func (c contract) causes(s StoreUnderTest, org, id string) []credential.Event {
	c.t.Helper()
	return causes(c.t, s.Store, org, id)
}

var ignoreStoreFields = cmpopts.IgnoreFields(credential.Credential{}, "ETag", "IsOrgDefault")

func submitted(from credential.State) *credential.EventRecord {
	return &credential.EventRecord{Time: T0, From: from, To: credential.StateSPPending, Cause: credential.EventSubmitTenant, Generation: 1}
}

func testRoundTrip(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	if cr.ETag == "" || cr.Revision != 1 {
		t.Fatalf("after the insert: ETag %q, revision %d", cr.ETag, cr.Revision)
	}
	cr.App = credential.App{ObjectID: "obj-1", AppID: "app-1"}
	cr.TenantID = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"
	cr.SPObjectID = "sp-1"
	cr.Storage = credential.StorageTarget{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "rg", Account: "bloblake", Container: "lakedata"}
	cr.Generation = 3
	cr.VerifiedAt = T0.Add(time.Minute)
	cr.Progress = credential.Progress{Kind: credential.WindowAccessProbe, Attempts: 2, StartedAt: T0, Deadline: T0.Add(5 * time.Minute),
		GraceUntil: T0.Add(2 * time.Minute), Status: credential.StatusWaitingForRolePropagation,
		Checks: []credential.Check{{Name: "user_delegation_key", Result: "pass"}, {Name: "write", Result: "fail", ProviderCode: "AuthorizationPermissionMismatch"}}}
	cr.LastError = credential.Problem{Message: "waiting", Code: "waiting_for_role_propagation", Hint: "no_role", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-1"}
	before := cr.ETag
	if err := s.Store.Update(ctx, cr, nil); err != nil {
		t.Fatal(err)
	}
	if cr.ETag == "" || cr.ETag == before || cr.Revision != 2 {
		t.Fatalf("a plain update holds ETag %q (was %q), revision %d; want a new ETag and revision 2", cr.ETag, before, cr.Revision)
	}
	got := c.get(s, "org-a", cr.ID)
	if diff := cmp.Diff(cr, got, ignoreStoreFields); diff != "" {
		t.Fatalf("round trip (-wrote +read):\n%s", diff)
	}
	if got.ETag != cr.ETag || got.IsOrgDefault {
		t.Fatalf("read ETag %q (held %q), org default %v", got.ETag, cr.ETag, got.IsOrgDefault)
	}
	list, err := s.Store.List(ctx, "org-a")
	if err != nil || len(list) != 1 || list[0].ID != cr.ID || list[0].ETag != cr.ETag {
		t.Fatalf("list = %v, %v", list, err)
	}
	evs, err := s.Store.Events(ctx, "org-a", cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]credential.EventRecord{created}, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// A second Get of an unchanged row holds the same ETag, and a zone's time reads in UTC.
	cr.UpdatedAt = T0.In(time.FixedZone("CET", 3600))
	if err := s.Store.Update(ctx, cr, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.get(s, "org-a", cr.ID); !got.UpdatedAt.Equal(T0) || got.UpdatedAt.Location() != time.UTC || got.ETag != c.get(s, "org-a", cr.ID).ETag {
		t.Fatalf("read again: updated %v, ETag %q", got.UpdatedAt, got.ETag)
	}
}

func testNotFound(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	for _, tc := range []struct{ org, id string }{{"org-a", uuid.NewString()}, {"org-b", cr.ID}} {
		if _, err := s.Store.Get(ctx, tc.org, tc.id); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("Get(%s, %s) = %v, want ErrNotFound", tc.org, tc.id, err)
		}
		if _, err := s.Store.Tombstone(ctx, tc.org, tc.id); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("Tombstone(%s, %s) = %v, want ErrNotFound", tc.org, tc.id, err)
		}
		if _, err := s.Store.GetWorkspace(ctx, tc.org, "ws"); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("GetWorkspace(%s, ws) = %v, want ErrNotFound", tc.org, err)
		}
	}
	if list, err := s.Store.List(ctx, "org-b"); err != nil || len(list) != 0 {
		t.Errorf("another org lists %v, %v", list, err)
	}
	if evs, err := s.Store.Events(ctx, "org-b", cr.ID); err != nil || len(evs) != 0 {
		t.Errorf("another org's events %v, %v", evs, err)
	}
	if def, err := s.Store.OrgDefault(ctx, "org-b"); err != nil || def != "" {
		t.Errorf("the default of an org without one: %q, %v", def, err)
	}
	// An update of a credential that never existed is not found.
	ghost := sample("org-a", "ghost")
	ghost.ETag = cr.ETag
	if err := s.Store.Update(ctx, ghost, nil); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("update of a credential never stored: %v, want ErrNotFound", err)
	}
}

func testDuplicateName(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	c.insert(s, sample("org-a", "prod"))
	dup := sample("org-a", "PROD")
	err := s.Store.Insert(ctx, dup, created)
	var ce *credential.ConflictError
	if !errors.As(err, &ce) || ce.Message != `a credential named "PROD" already exists in this organization` {
		t.Fatalf("duplicate insert = %v", err)
	}
	if _, err := s.Store.Get(ctx, "org-a", dup.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused duplicate left a row: %v", err)
	}
	c.insert(s, sample("org-b", "prod")) // the same name in another organization
}

func testStaleETag(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	first, second := c.get(s, "org-a", cr.ID), c.get(s, "org-a", cr.ID)
	first.State = credential.StateSPPending
	if err := s.Store.Update(ctx, first, submitted(credential.StateDraft)); err != nil {
		t.Fatal(err)
	}
	second.TenantID = "loser"
	if err := s.Store.Update(ctx, second, submitted(credential.StateDraft)); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	if err := s.Store.Update(ctx, second, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale plain update = %v, want ErrConflict", err)
	}
	if second.Revision != 1 {
		t.Fatalf("revision after failed updates = %d, want 1", second.Revision)
	}
	if err := s.Store.Delete(ctx, second); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale delete = %v, want ErrConflict", err)
	}
	if err := s.Store.UpdateHealth(ctx, second, &credential.HealthEvent{Time: T0, From: credential.HealthOK, To: credential.HealthDegraded}); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale health update = %v, want ErrConflict", err)
	}
	got := c.get(s, "org-a", cr.ID)
	if got.TenantID != "" || got.State != credential.StateSPPending {
		t.Fatalf("loser's write landed: %+v", got)
	}
	if diff := cmp.Diff([]credential.Event{credential.EventCreated, credential.EventSubmitTenant}, c.causes(s, "org-a", cr.ID)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

// testTransactionETags: a write with an event holds the row's new ETag, as the
// transaction's answer names it, so the next write needs no read; the org default and a
// workspace write that checks its credential answer none for the credential: the caller
// reads again before it writes again, and a write without an ETag is refused.
func testTransactionETags(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	cr.State = credential.StateSPPending
	if err := s.Store.Update(ctx, cr, submitted(credential.StateDraft)); err != nil {
		t.Fatal(err)
	}
	if got := c.get(s, "org-a", cr.ID); cr.ETag == "" || cr.ETag != got.ETag || cr.Revision != 2 {
		t.Fatalf("after an update with an event: ETag %q (the row's %q), revision %d; want the row's ETag and 2", cr.ETag, got.ETag, cr.Revision)
	}
	cr.Progress.Attempts++
	if err := s.Store.Update(ctx, cr, nil); err != nil {
		t.Fatalf("a write from the ETag the transaction answered: %v", err)
	}
	fresh := c.get(s, "org-a", cr.ID)
	if fresh.Revision != 3 || fresh.ETag == "" || fresh.Progress.Attempts != 1 {
		t.Fatalf("read again: revision %d, ETag %q, attempts %d", fresh.Revision, fresh.ETag, fresh.Progress.Attempts)
	}
	if err := s.Store.SetOrgDefault(ctx, fresh); err != nil || fresh.ETag != "" {
		t.Fatalf("set default: %v, ETag %q after it", err, fresh.ETag)
	}
	fresh = c.get(s, "org-a", cr.ID)
	if err := s.Store.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: "ws", CredentialID: cr.ID, CreatedAt: T0, UpdatedAt: T0}, fresh); err != nil || fresh.ETag != "" {
		t.Fatalf("insert workspace: %v, the credential's ETag %q after it", err, fresh.ETag)
	}
	if err := s.Store.Update(ctx, fresh, nil); err == nil || errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a write without an ETag: %v, want an error that is no conflict", err)
	}
}

// testConcurrentUpdates: many writers holding the same read; exactly one wins.
func testConcurrentUpdates(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	const writers = 8
	errs := make([]error, writers)
	reads := make([]*credential.Credential, writers)
	for i := range reads {
		reads[i] = c.get(s, "org-a", cr.ID)
	}
	var wg sync.WaitGroup
	for i, read := range reads {
		wg.Go(func() {
			read.State = credential.StateSPPending
			errs[i] = s.Store.Update(ctx, read, submitted(credential.StateDraft))
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, credential.ErrConflict):
			t.Errorf("loser got %v, want ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won, want exactly 1", wins)
	}
	if n := len(c.causes(s, "org-a", cr.ID)); n != 2 {
		t.Fatalf("want 2 events, got %d", n)
	}
}

// testWriteIDs: a write whose answer was lost is retried and meets itself; the store
// recognises its own write and reports success, with the write done once.
func testWriteIDs(t *testing.T, c contract) {
	ctx := context.Background()
	t.Run("insert", func(t *testing.T) {
		c := c.on(t)
		s := c.open(Limits{Credentials: 3})
		c.insert(s, sample("org-a", "first"))
		last := sample("org-a", "last")
		s.LoseAnswer(CallInsert)
		c.insert(s, last)
		got := c.get(s, "org-a", last.ID)
		if got.ETag != last.ETag || got.Revision != 1 {
			t.Errorf("after the insert: ETag %q (held %q), revision %d", got.ETag, last.ETag, got.Revision)
		}
		if diff := cmp.Diff([]credential.Event{credential.EventCreated}, c.causes(s, "org-a", last.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		// A real duplicate name is still refused.
		if err := s.Store.Insert(ctx, sample("org-a", "LAST"), created); !errors.Is(err, credential.ErrConflict) {
			t.Errorf("a real duplicate: %v, want ErrConflict", err)
		}
		// Counted once: the third credential takes the last place, and its insert's own
		// retry (another lost answer) is not refused as over the limit.
		s.LoseAnswer(CallInsert)
		c.insert(s, sample("org-a", "third"))
		if err := s.Store.Insert(ctx, sample("org-a", "over"), created); !errors.Is(err, credential.ErrQuotaExceeded) {
			t.Errorf("a fourth credential: %v, want the limit", err)
		}
	})
	t.Run("update", func(t *testing.T) {
		c := c.on(t)
		s := c.store()
		cr := c.insert(s, sample("org-a", "prod"))
		cr.App = credential.App{ObjectID: "obj", AppID: "app"}
		s.LoseAnswer(CallUpdate)
		if err := s.Store.Update(ctx, cr, nil); err != nil {
			t.Fatalf("update: %v", err)
		}
		got := c.get(s, "org-a", cr.ID)
		if got.ETag != cr.ETag || got.App.AppID != "app" || got.Revision != 2 || cr.Revision != 2 {
			t.Errorf("stored %+v, held ETag %q revision %d", got, cr.ETag, cr.Revision)
		}
		cr.Name = "prod" // the ETag held is good for the next write
		if err := s.Store.Update(ctx, cr, nil); err != nil {
			t.Errorf("next update: %v", err)
		}
	})
	t.Run("update with event, the row moved on before the retry", func(t *testing.T) {
		// The write landed, its answer was lost, and another writer moved the row on before
		// the store tried again: the row no longer carries the write's id, its event does.
		// The write stands, and the ETag held is none (the row is not the one written).
		c := c.on(t)
		s := c.store()
		cr := c.insert(s, sample("org-a", "prod"))
		cr.State, cr.TenantID = credential.StateSPPending, "t"
		s.LoseAnswerThen(CallUpdateWithEvent, func() {
			moved := c.get(s, "org-a", cr.ID)
			moved.Progress.Attempts = 7
			if err := s.Store.Update(ctx, moved, nil); err != nil {
				t.Errorf("the other writer: %v", err)
			}
		})
		if err := s.Store.Update(ctx, cr, submitted(credential.StateDraft)); err != nil {
			t.Fatalf("update whose row moved on after it landed: %v", err)
		}
		if cr.ETag != "" || cr.Revision != 2 {
			t.Errorf("held ETag %q, revision %d; want none and 2", cr.ETag, cr.Revision)
		}
		if diff := cmp.Diff([]credential.Event{credential.EventCreated, credential.EventSubmitTenant}, c.causes(s, "org-a", cr.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if got := c.get(s, "org-a", cr.ID); got.Revision != 3 || got.TenantID != "t" || got.Progress.Attempts != 7 {
			t.Errorf("stored revision %d, tenant %q, attempts %d; want the other writer's row on top of the write", got.Revision, got.TenantID, got.Progress.Attempts)
		}
		// A write that did not land is still a conflict: the row moved on, and no event
		// carries its id.
		stale := *cr
		stale.ETag = `W/"stale"`
		stale.State = credential.StateSPVerified
		if err := s.Store.Update(ctx, &stale, &credential.EventRecord{Time: T0, From: credential.StateSPPending, To: credential.StateSPVerified,
			Cause: credential.EventSPFound, Generation: stale.Generation}); !errors.Is(err, credential.ErrConflict) {
			t.Errorf("a stale write with an event: %v, want a conflict", err)
		}
	})
	t.Run("update with event", func(t *testing.T) {
		c := c.on(t)
		s := c.store()
		cr := c.insert(s, sample("org-a", "prod"))
		cr.State, cr.TenantID = credential.StateSPPending, "t"
		s.LoseAnswer(CallUpdateWithEvent)
		if err := s.Store.Update(ctx, cr, submitted(credential.StateDraft)); err != nil {
			t.Fatalf("update: %v", err)
		}
		if diff := cmp.Diff([]credential.Event{credential.EventCreated, credential.EventSubmitTenant}, c.causes(s, "org-a", cr.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if got := c.get(s, "org-a", cr.ID); got.Revision != 2 || got.TenantID != "t" {
			t.Errorf("stored revision %d tenant %q", got.Revision, got.TenantID)
		}
	})
	t.Run("delete", func(t *testing.T) {
		c := c.on(t)
		s := c.open(Limits{Credentials: 2})
		c.insert(s, sample("org-a", "kept"))
		cr := c.insert(s, sample("org-a", "prod"))
		if err := s.Store.SetOrgDefault(ctx, cr); err != nil {
			t.Fatal(err)
		}
		fresh := c.get(s, "org-a", cr.ID)
		s.LoseAnswer(CallDelete)
		if err := s.Store.Delete(ctx, fresh); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := s.Store.Tombstone(ctx, "org-a", cr.ID); err != nil {
			t.Errorf("tombstone: %v", err)
		}
		if def, err := s.Store.OrgDefault(ctx, "org-a"); err != nil || def != "" {
			t.Errorf("org default %q, %v", def, err)
		}
		if err := s.Store.Delete(ctx, fresh); !errors.Is(err, credential.ErrConflict) {
			t.Errorf("a second delete: %v, want ErrConflict", err)
		}
		c.insert(s, sample("org-a", "prod")) // the name is free, and one place
		if err := s.Store.Insert(ctx, sample("org-a", "over"), created); !errors.Is(err, credential.ErrQuotaExceeded) {
			t.Errorf("a third credential: %v, want the limit: the lost delete freed one place", err)
		}
	})
	t.Run("insert workspace", func(t *testing.T) {
		c := c.on(t)
		s := c.open(Limits{Workspaces: 2})
		ws := func(id string) *credential.Workspace {
			return &credential.Workspace{OrgID: "org-a", ID: id, CreatedAt: T0, UpdatedAt: T0}
		}
		s.LoseAnswer(CallInsertWorkspace)
		if err := s.Store.InsertWorkspace(ctx, ws("ws"), nil); err != nil {
			t.Fatalf("insert workspace: %v", err)
		}
		if err := s.Store.InsertWorkspace(ctx, ws("second"), nil); err != nil {
			t.Errorf("a second workspace: %v: the lost insert counted more than once", err)
		}
		if err := s.Store.InsertWorkspace(ctx, ws("third"), nil); !errors.Is(err, credential.ErrQuotaExceeded) {
			t.Errorf("a third workspace: %v, want the limit", err)
		}
	})
	t.Run("insert workload identity", func(t *testing.T) { testWorkloadInsertLost(t, c.on(t)) })
	t.Run("delete workload identity", func(t *testing.T) { testWorkloadDeleteLost(t, c.on(t)) })
}

// testOrder: lists and logs come oldest first; a page of links is the first of them by id.
func testOrder(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	var want []string
	for i, at := range []time.Duration{3, 1, 2, 1} {
		cr := sample("org-a", fmt.Sprintf("c%d", i))
		cr.CreatedAt = T0.Add(at * time.Minute)
		c.insert(s, cr)
		want = append(want, cr.ID)
	}
	list, err := s.Store.List(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b string) int {
		at := func(id string) time.Time {
			for _, cr := range list {
				if cr.ID == id {
					return cr.CreatedAt
				}
			}
			return time.Time{}
		}
		if d := at(a).Compare(at(b)); d != 0 {
			return d
		}
		if a < b {
			return -1
		}
		return 1
	})
	var got []string
	for _, cr := range list {
		got = append(got, cr.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("list order (-oldest first, by id on a tie +got):\n%s", diff)
	}

	cr := c.get(s, "org-a", want[0])
	var wantCauses []credential.Event
	wantCauses = append(wantCauses, credential.EventCreated)
	for i := range 11 { // past revision 10, where text order would differ
		cr.State = credential.StateSPPending
		if err := s.Store.Update(ctx, cr, &credential.EventRecord{Time: T0, From: credential.StateDraft, To: credential.StateSPPending,
			Cause: credential.Event(fmt.Sprintf("e%02d", i))}); err != nil {
			t.Fatal(err)
		}
		wantCauses = append(wantCauses, credential.Event(fmt.Sprintf("e%02d", i)))
		cr = c.get(s, "org-a", cr.ID)
	}
	if diff := cmp.Diff(wantCauses, c.causes(s, "org-a", cr.ID)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	for _, id := range []string{"w3", "w1", "w4", "w2"} {
		if err := s.Store.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: id, CredentialID: "x", CreatedAt: T0, UpdatedAt: T0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Store.UnlockedLinks(ctx, "org-a", "x", 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range page {
		ids = append(ids, w.ID)
	}
	if diff := cmp.Diff([]string{"w1", "w2", "w3"}, ids); diff != "" {
		t.Fatalf("a page of three links (-want +got):\n%s", diff)
	}
}

// testTombstone: a deleted credential's row becomes a tombstone that every read of
// credentials skips (Get, List, the health walk) and that keeps what messages and the
// clean-up need; writes from a stale read are refused.
func testTombstone(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.verified(s, "org-a", "prod")
	cr.App = credential.App{ObjectID: "obj-1", AppID: "app-1"}
	if err := s.Store.Update(ctx, cr, nil); err != nil {
		t.Fatal(err)
	}
	other := c.verified(s, "org-a", "other")
	if _, err := s.Store.Tombstone(ctx, "org-a", cr.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("tombstone of a live credential: %v", err)
	}
	stale, fresh := c.get(s, "org-a", cr.ID), c.get(s, "org-a", cr.ID)
	if err := s.Store.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Get(ctx, "org-a", cr.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	list, err := s.Store.List(ctx, "org-a")
	if err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("list after delete: %v, %v", list, err)
	}
	var walked []string
	if err := s.Store.EachVerified(ctx, func(v *credential.Credential) error { walked = append(walked, v.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{other.ID}) {
		t.Fatalf("the health walk met %v, want only %s", walked, other.ID)
	}
	d, err := s.Store.Tombstone(ctx, "org-a", cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &credential.DeletedCredential{OrgID: "org-a", ID: cr.ID, Name: "prod", BasePath: cr.BasePath, App: cr.App}
	if diff := cmp.Diff(want, d, cmpopts.IgnoreFields(credential.DeletedCredential{}, "DeletedAt")); diff != "" || d.DeletedAt.IsZero() {
		t.Fatalf("tombstone (-want +got):\n%s deleted at %s", diff, d.DeletedAt)
	}
	if _, err := s.Store.Tombstone(ctx, "org-b", cr.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the tombstone from another organization: %v", err)
	}
	if err := s.Store.Delete(ctx, stale); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a second delete from a stale read: %v, want ErrConflict", err)
	}
	if err := s.Store.Update(ctx, stale, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("an update of the deleted credential: %v, want ErrConflict", err)
	}
	if err := s.Store.SetOrgDefault(ctx, stale); err == nil {
		t.Fatal("the default set on the deleted credential")
	}
	if _, err := s.Store.Get(ctx, "org-a", cr.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused writes brought it back: %v", err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-a"); def != "" {
		t.Fatalf("dangling default %q", def)
	}
	// Its events stay; its name is free again.
	if diff := cmp.Diff([]credential.Event{credential.EventCreated}, c.causes(s, "org-a", cr.ID)); diff != "" {
		t.Fatalf("events of the deleted credential (-want +got):\n%s", diff)
	}
	c.insert(s, sample("org-a", "prod"))
}

// testOrgDefault: the default points at one credential; setting it checks the credential
// as read (and moves its ETag on); a delete removes the default pointing at it only.
func testOrgDefault(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	a, b := c.insert(s, sample("org-a", "a")), c.insert(s, sample("org-a", "b"))
	held := c.get(s, "org-a", a.ID)
	if err := s.Store.SetOrgDefault(ctx, a); err != nil {
		t.Fatal(err)
	}
	if def, err := s.Store.OrgDefault(ctx, "org-a"); err != nil || def != a.ID {
		t.Fatalf("org default = %q, %v", def, err)
	}
	// The check was a write of a's row: a writer holding the read before it conflicts.
	held.TenantID = "late"
	if err := s.Store.Update(ctx, held, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a write from before the default was set: %v, want ErrConflict", err)
	}
	if err := s.Store.SetOrgDefault(ctx, held); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a default set from a stale read: %v, want ErrConflict", err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-a"); def != a.ID {
		t.Fatalf("the refused default moved it to %q", def)
	}
	fresh := c.get(s, "org-a", b.ID)
	if err := s.Store.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-a"); def != a.ID {
		t.Fatalf("deleting b moved the default to %q", def)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-b"); def != "" {
		t.Fatalf("another organization's default %q", def)
	}
	fresh = c.get(s, "org-a", a.ID)
	if err := s.Store.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if def, err := s.Store.OrgDefault(ctx, "org-a"); err != nil || def != "" {
		t.Fatalf("org default after its credential's delete = %q, %v", def, err)
	}
}

// testClearOrgDefault: clearing removes the default it names and no other (one set to
// another credential meanwhile stays, with a conflict); none at all is success; another
// organization's default is not touched.
func testClearOrgDefault(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	if err := s.Store.ClearOrgDefault(ctx, "org-a", "no-such-id"); err != nil {
		t.Fatalf("clearing no default: %v", err)
	}
	a, b := c.insert(s, sample("org-a", "a")), c.insert(s, sample("org-a", "b"))
	other := c.insert(s, sample("org-b", "a"))
	for _, cr := range []*credential.Credential{a, other} {
		if err := s.Store.SetOrgDefault(ctx, c.get(s, cr.OrgID, cr.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Store.ClearOrgDefault(ctx, "org-a", b.ID); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("clearing a default that points at another credential: %v, want ErrConflict", err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-a"); def != a.ID {
		t.Fatalf("a refused clear moved the default to %q", def)
	}
	if err := s.Store.ClearOrgDefault(ctx, "org-a", a.ID); err != nil {
		t.Fatal(err)
	}
	if def, err := s.Store.OrgDefault(ctx, "org-a"); err != nil || def != "" {
		t.Fatalf("org default after the clear = %q, %v", def, err)
	}
	if err := s.Store.ClearOrgDefault(ctx, "org-a", a.ID); err != nil {
		t.Fatalf("clearing again: %v", err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-b"); def != other.ID {
		t.Fatalf("another organization's default is %q, want %s", def, other.ID)
	}
	// The credential itself is untouched, and can be the default again.
	if err := s.Store.SetOrgDefault(ctx, c.get(s, "org-a", a.ID)); err != nil {
		t.Fatal(err)
	}
	if def, _ := s.Store.OrgDefault(ctx, "org-a"); def != a.ID {
		t.Fatalf("default set again = %q", def)
	}
}

// testOrgDefaultMark: every read of credentials (Get, List, EachVerified) says which one
// is the organization's default, through every way the default changes (set, re-pointed,
// cleared, its credential deleted) and through the writes of credentials in between; a
// change of the default moves the ETag of the credential it leaves as well, so a writer
// holding that credential's read from before cannot write the old mark back.
func testOrgDefaultMark(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	a, b := c.verified(s, "org-a", "a"), c.verified(s, "org-a", "b")
	other := c.verified(s, "org-b", "a")
	otherIsDefault := false
	want := func(step, def string) {
		t.Helper()
		for _, id := range []string{a.ID, b.ID} {
			if got, err := s.Store.Get(ctx, "org-a", id); err == nil && got.IsOrgDefault != (id == def) {
				t.Errorf("%s: Get(%s).IsOrgDefault = %v, want %v", step, id, got.IsOrgDefault, id == def)
			}
		}
		list, err := s.Store.List(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		for _, cr := range list {
			if cr.IsOrgDefault != (cr.ID == def) {
				t.Errorf("%s: List: %s.IsOrgDefault = %v, want %v", step, cr.Name, cr.IsOrgDefault, cr.ID == def)
			}
		}
		err = s.Store.EachVerified(ctx, func(cr *credential.Credential) error {
			if cr.OrgID == "org-a" && cr.IsOrgDefault != (cr.ID == def) {
				t.Errorf("%s: EachVerified: %s.IsOrgDefault = %v, want %v", step, cr.Name, cr.IsOrgDefault, cr.ID == def)
			}
			if cr.OrgID == "org-b" && cr.IsOrgDefault != otherIsDefault {
				t.Errorf("%s: another organization's credential: IsOrgDefault = %v, want %v", step, cr.IsOrgDefault, otherIsDefault)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want("none set", "")

	if err := s.Store.SetOrgDefault(ctx, c.get(s, "org-a", a.ID)); err != nil {
		t.Fatal(err)
	}
	want("a set", a.ID)
	// A write of the default credential keeps its mark, and so does one of another.
	for _, id := range []string{a.ID, b.ID} {
		cr := c.get(s, "org-a", id)
		cr.TenantID = "t-" + cr.Name
		if err := s.Store.Update(ctx, cr, nil); err != nil {
			t.Fatal(err)
		}
		cr = c.get(s, "org-a", id)
		cr.Health = credential.Health{Status: credential.HealthOK, CheckedAt: T0.Add(time.Minute)}
		if err := s.Store.UpdateHealth(ctx, cr, nil); err != nil {
			t.Fatal(err)
		}
	}
	want("after writes", a.ID)

	// Re-pointed at b: a's row moves on too, so a's read from before cannot write back.
	heldA := c.get(s, "org-a", a.ID)
	if err := s.Store.SetOrgDefault(ctx, c.get(s, "org-a", b.ID)); err != nil {
		t.Fatal(err)
	}
	want("re-pointed at b", b.ID)
	heldA.TenantID = "late"
	if err := s.Store.Update(ctx, heldA, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a write of the former default from before the change: %v, want ErrConflict", err)
	}
	want("after the refused write", b.ID)

	// Cleared: b's row moves on as well.
	heldB := c.get(s, "org-a", b.ID)
	if err := s.Store.ClearOrgDefault(ctx, "org-a", b.ID); err != nil {
		t.Fatal(err)
	}
	want("cleared", "")
	heldB.TenantID = "late"
	if err := s.Store.Update(ctx, heldB, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a write of the cleared default from before the clear: %v, want ErrConflict", err)
	}

	// Set again, then its credential deleted: no credential is marked.
	if err := s.Store.SetOrgDefault(ctx, c.get(s, "org-a", a.ID)); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.SetOrgDefault(ctx, c.get(s, "org-b", other.ID)); err != nil {
		t.Fatal(err)
	}
	otherIsDefault = true
	want("a set again", a.ID)
	if err := s.Store.Delete(ctx, c.get(s, "org-a", a.ID)); err != nil {
		t.Fatal(err)
	}
	want("a deleted", "")
	if got := c.get(s, "org-b", other.ID); !got.IsOrgDefault {
		t.Error("another organization's default lost its mark")
	}
}

var ignoreWorkspaceETag = cmpopts.IgnoreFields(credential.Workspace{}, "ETag")

// testWorkspaces: round trip, duplicates, stale writes, the credential check of a link
// and a pin.
func testWorkspaces(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.insert(s, sample("org-a", "prod"))
	w := &credential.Workspace{OrgID: "org-a", ID: "ws", CredentialID: cr.ID, CreatedAt: T0, UpdatedAt: T0}
	if err := s.Store.InsertWorkspace(ctx, w, cr); err != nil {
		t.Fatal(err)
	}
	if w.ETag != "" {
		t.Fatalf("after the insert the workspace holds ETag %q: a transaction answers none", w.ETag)
	}
	if err := s.Store.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: "ws"}, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("second insert: %v", err)
	}
	got, err := s.Store.GetWorkspace(ctx, "org-a", "ws")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, got, ignoreWorkspaceETag); diff != "" || got.ETag == "" {
		t.Fatalf("round trip (-wrote +read), ETag %q:\n%s", got.ETag, diff)
	}
	stale, _ := s.Store.GetWorkspace(ctx, "org-a", "ws")
	got.FirstTable, got.LockedAt, got.Pin = "t", T0, credential.SourceOrgDefault
	if err := s.Store.UpdateWorkspace(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	if got.ETag != "" {
		t.Fatalf("after the update the workspace holds ETag %q", got.ETag)
	}
	locked, err := s.Store.GetWorkspace(ctx, "org-a", "ws")
	if err != nil || locked.Pin != credential.SourceOrgDefault || !locked.LockedAt.Equal(T0) || locked.FirstTable != "t" || !locked.Locked() {
		t.Fatalf("locked: %+v, %v", locked, err)
	}
	stale.CredentialID = ""
	if err := s.Store.UpdateWorkspace(ctx, stale, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.Store.GetWorkspace(ctx, "org-b", "ws"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("another org's workspace: %v", err)
	}
	// A link checks its credential as read: a stale read conflicts and writes nothing.
	staleCred := c.get(s, "org-a", cr.ID)
	moved := c.get(s, "org-a", cr.ID)
	moved.TenantID = "moved"
	if err := s.Store.Update(ctx, moved, nil); err != nil {
		t.Fatal(err)
	}
	locked.FirstTable = "other"
	if err := s.Store.UpdateWorkspace(ctx, locked, staleCred); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a link checked against a stale credential: %v, want ErrConflict", err)
	}
	if w, _ := s.Store.GetWorkspace(ctx, "org-a", "ws"); w.FirstTable != "t" {
		t.Fatalf("the refused write landed: %+v", w)
	}
	// A link to a credential deleted meanwhile is refused.
	del := c.insert(s, sample("org-a", "gone"))
	staleDel, fresh := c.get(s, "org-a", del.ID), c.get(s, "org-a", del.ID)
	if err := s.Store.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: "ws2", CredentialID: del.ID, CreatedAt: T0, UpdatedAt: T0}, staleDel); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("link to a deleted credential: %v", err)
	}
	if _, err := s.Store.GetWorkspace(ctx, "org-a", "ws2"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused link left a workspace: %v", err)
	}
}

// testLinksOfTheDeleted: a delete touches no workspace. UnlockedLinks then finds the
// unlocked workspaces linked to the deleted credential, a page at a time; locked ones and
// other links are never in it.
func testLinksOfTheDeleted(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	a, b := c.insert(s, sample("org-a", "a")), c.insert(s, sample("org-a", "b"))
	for _, w := range []struct {
		id     string
		link   *credential.Credential
		locked bool
	}{{"w1", a, false}, {"w2", a, false}, {"w3", a, true}, {"w4", b, false}, {"w5", nil, false}} {
		ws := &credential.Workspace{OrgID: "org-a", ID: w.id, CreatedAt: T0, UpdatedAt: T0}
		if w.link != nil {
			ws.CredentialID = w.link.ID
		}
		if w.locked {
			ws.FirstTable, ws.LockedAt, ws.Pin = "t", T0, credential.SourceWorkspace
		}
		if err := s.Store.InsertWorkspace(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Store.Delete(ctx, c.get(s, "org-a", a.ID)); err != nil {
		t.Fatal(err)
	}
	for ws, want := range map[string]string{"w1": a.ID, "w2": a.ID, "w3": a.ID, "w4": b.ID, "w5": ""} {
		w, err := s.Store.GetWorkspace(ctx, "org-a", ws)
		if err != nil || w.CredentialID != want {
			t.Fatalf("%s: link %q, %v; want %q", ws, w.CredentialID, err, want)
		}
	}
	ids := func(ws []*credential.Workspace) []string {
		var out []string
		for _, w := range ws {
			if w.ETag == "" || w.Locked() {
				t.Errorf("%s: ETag %q locked %v", w.ID, w.ETag, w.Locked())
			}
			out = append(out, w.ID)
		}
		return out
	}
	got, err := s.Store.UnlockedLinks(ctx, "org-a", a.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"w1", "w2"}, ids(got)); diff != "" {
		t.Fatalf("unlocked links (-want +got):\n%s", diff)
	}
	got, err = s.Store.UnlockedLinks(ctx, "org-a", a.ID, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("a page of one: %v, %v", ids(got), err)
	}
	got[0].CredentialID = ""
	if err := s.Store.UpdateWorkspace(ctx, got[0], nil); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Store.UnlockedLinks(ctx, "org-a", a.ID, 100); err != nil || len(got) != 1 {
		t.Fatalf("after clearing one: %v, %v", ids(got), err)
	}
	if got, err = s.Store.UnlockedLinks(ctx, "org-b", a.ID, 100); err != nil || len(got) != 0 {
		t.Fatalf("another organization: %v, %v", ids(got), err)
	}
}

// testLimits: at its credential limit an organization's creates are refused with a
// *QuotaError (no conflict); a delete frees a place, a failed one none; at the workspace
// limit an existing workspace is still reported as existing; racing inserts for the last
// place leave one winner; another organization has its own count.
func testLimits(t *testing.T, c contract) {
	const limit = 3
	s := c.open(Limits{Credentials: limit, Workspaces: limit})
	ctx := context.Background()
	var creds []*credential.Credential
	for i := range limit - 1 {
		creds = append(creds, c.insert(s, sample("org-a", fmt.Sprintf("c%d", i))))
	}
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = s.Store.Insert(ctx, sample("org-a", fmt.Sprintf("racer%d", i)), created) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		var qe *credential.QuotaError
		switch {
		case err == nil:
			wins++
		case !errors.As(err, &qe) || qe.Quota != credential.QuotaCredentials || qe.Limit != limit ||
			!errors.Is(err, credential.ErrQuotaExceeded) || errors.Is(err, credential.ErrConflict):
			t.Errorf("a racer for the last place: %v, want a *QuotaError of %d credentials", err, limit)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won the last place, want 1", wins)
	}
	c.insert(s, sample("org-b", "c0")) // another organization has its own count

	// A delete that fails frees nothing; one that lands frees one place.
	stale := c.get(s, "org-a", creds[0].ID)
	moved := c.get(s, "org-a", creds[0].ID)
	moved.TenantID = "moved"
	if err := s.Store.Update(ctx, moved, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Delete(ctx, stale); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	if err := s.Store.Insert(ctx, sample("org-a", "late"), created); !errors.Is(err, credential.ErrQuotaExceeded) {
		t.Fatalf("after a failed delete: %v, want the limit", err)
	}
	if err := s.Store.Delete(ctx, c.get(s, "org-a", creds[1].ID)); err != nil {
		t.Fatal(err)
	}
	c.insert(s, sample("org-a", "late"))
	if err := s.Store.Insert(ctx, sample("org-a", "later"), created); !errors.Is(err, credential.ErrQuotaExceeded) {
		t.Fatalf("one delete freed more than one place: %v", err)
	}

	ws := func(id string) *credential.Workspace {
		return &credential.Workspace{OrgID: "org-a", ID: id, CreatedAt: T0, UpdatedAt: T0}
	}
	for i := range limit {
		if err := s.Store.InsertWorkspace(ctx, ws(fmt.Sprintf("w%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Store.InsertWorkspace(ctx, ws("w0"), nil)
	if !errors.Is(err, credential.ErrConflict) || errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("an existing workspace at the limit: %v, want the conflict of an existing one", err)
	}
	var qe *credential.QuotaError
	if err := s.Store.InsertWorkspace(ctx, ws("new"), nil); !errors.As(err, &qe) || qe.Quota != credential.QuotaWorkspaces || qe.Limit != limit {
		t.Errorf("a new workspace at the limit: %v", err)
	}
	if err := s.Store.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-b", ID: "w0", CreatedAt: T0, UpdatedAt: T0}, nil); err != nil {
		t.Errorf("another organization's first workspace: %v", err)
	}
}

// testHealth: health results round-trip; a result with a status change and its event are
// one write, in a log of their own apart from the transition log; the walk over verified
// credentials crosses organizations, sees only verified ones and stops at an error.
func testHealth(t *testing.T, c contract) {
	s := c.store()
	ctx := context.Background()
	cr := c.verified(s, "org-a", "prod")
	if got := c.get(s, "org-a", cr.ID); !cmp.Equal(got.Health, credential.Health{}) {
		t.Fatalf("health before the first check: %+v", got.Health)
	}
	cr.Health = credential.Health{Status: credential.HealthDegraded, CheckedAt: T0.Add(time.Minute), Since: T0.Add(time.Minute),
		Checks:  []credential.Check{{Name: "user_delegation_key", Result: "fail", ProviderCode: "AuthorizationPermissionMismatch"}, {Name: "write", Result: "skip"}},
		Problem: credential.Problem{Message: "Role is not sufficient", Code: "role_not_sufficient", Hint: "no_role", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-9"}}
	ev := &credential.HealthEvent{Time: T0.Add(time.Minute), From: credential.HealthOK, To: credential.HealthDegraded,
		Code: "role_not_sufficient", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-9", Generation: cr.Generation}
	if err := s.Store.UpdateHealth(ctx, cr, ev); err != nil {
		t.Fatal(err)
	}
	got := c.get(s, "org-a", cr.ID)
	if cr.ETag != got.ETag {
		t.Fatalf("after a health write with an event the credential holds ETag %q, the row's is %q", cr.ETag, got.ETag)
	}
	if diff := cmp.Diff(cr, got, ignoreStoreFields); diff != "" {
		t.Fatalf("round trip (-wrote +read):\n%s", diff)
	}
	// Without an event the write is a plain conditional update; a stale one conflicts.
	stale := *got
	got.Health.CheckedAt = T0.Add(2 * time.Minute)
	if err := s.Store.UpdateHealth(ctx, got, nil); err != nil || got.ETag == "" {
		t.Fatalf("plain health write: %v, ETag %q", err, got.ETag)
	}
	stale.Health.Status = credential.HealthOK
	if err := s.Store.UpdateHealth(ctx, &stale, &credential.HealthEvent{Time: T0, From: credential.HealthDegraded, To: credential.HealthOK}); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale health write = %v, want ErrConflict", err)
	}
	hevs, err := s.Store.HealthEvents(ctx, "org-a", cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]credential.HealthEvent{*ev}, hevs); diff != "" {
		t.Fatalf("health events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]credential.Event{credential.EventCreated}, c.causes(s, "org-a", cr.ID)); diff != "" {
		t.Fatalf("transition log (-want +got):\n%s", diff)
	}

	want := []string{cr.ID}
	for _, org := range []string{"org-b", "org-c"} {
		want = append(want, c.verified(s, org, "one").ID)
		c.insert(s, sample(org, "draft"))
		pending := c.insert(s, sample(org, "pending"))
		pending.State = credential.StateUnverifiedSaved
		if err := s.Store.Update(ctx, pending, nil); err != nil {
			t.Fatal(err)
		}
	}
	var walked []string
	err = s.Store.EachVerified(ctx, func(v *credential.Credential) error {
		if v.State != credential.StateVerified || v.ETag == "" {
			t.Errorf("walk gave %s in %s with ETag %q", v.ID, v.State, v.ETag)
		}
		walked = append(walked, v.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(walked)
	slices.Sort(want)
	if diff := cmp.Diff(want, walked); diff != "" {
		t.Errorf("verified credentials (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Store.EachVerified(ctx, func(*credential.Credential) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("a failing callback: %v after %d calls, want it returned after 1", err, n)
	}
}

// testOpenWindows: the open-window index keeps one row per credential (a new window
// replaces the last, and its noted failure), notes a failure on a row that exists and on
// none that does not, and removes a row only when it is unchanged since it was read.
func testOpenWindows(t *testing.T, c contract) {
	ctx := context.Background()
	s := c.store().Store
	rows := func() []credential.OpenWindow {
		t.Helper()
		var out []credential.OpenWindow
		if err := s.OpenWindows(ctx, func(w credential.OpenWindow) error { out = append(out, w); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(out, func(a, b credential.OpenWindow) int {
			return strings.Compare(a.OrgID+a.CredentialID, b.OrgID+b.CredentialID)
		})
		return out
	}
	if got := rows(); len(got) != 0 {
		t.Fatalf("a new store's index: %+v", got)
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	open := func(org, id string, gen int64) {
		t.Helper()
		if err := s.OpenWindow(ctx, credential.OpenWindow{OrgID: org, CredentialID: id, Generation: gen, OpenedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	open("org-a", "c1", 0)
	open("org-b", "c1", 3)
	open("org-a", "c2", 1)
	got := rows()
	if len(got) != 3 {
		t.Fatalf("rows %+v, want 3", got)
	}
	for _, w := range got {
		if w.ETag == "" || !w.OpenedAt.Equal(at) {
			t.Errorf("row %+v: want its ETag and the time it was opened", w)
		}
	}
	opts := cmpopts.IgnoreFields(credential.OpenWindow{}, "ETag")
	want := []credential.OpenWindow{{OrgID: "org-a", CredentialID: "c1", OpenedAt: at}, {OrgID: "org-a", CredentialID: "c2", Generation: 1, OpenedAt: at},
		{OrgID: "org-b", CredentialID: "c1", Generation: 3, OpenedAt: at}}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}

	f := credential.JobFailure{Kind: credential.JobSPPoll, Generation: 1, Attempt: 4, At: at.Add(time.Minute),
		Problem: credential.Problem{Code: "unexpected_error", Message: "Azure Storage operation failed with an unexpected error (request id r)",
			ProviderError: "ServerBusy", RequestID: "r"}}
	if err := s.NoteFailure(ctx, "org-a", "c2", f); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteFailure(ctx, "org-a", "none", f); err != nil {
		t.Fatalf("a failure of a credential without a row: %v, want nothing noted and no error", err)
	}
	noted := rows()
	if len(noted) != 3 {
		t.Fatalf("rows %+v after the notes, want 3", noted)
	}
	if diff := cmp.Diff(f, noted[1].Failure); diff != "" {
		t.Errorf("noted failure (-want +got):\n%s", diff)
	}
	if noted[1].ETag == got[1].ETag {
		t.Error("noting a failure kept the row's ETag")
	}

	// A row read before the note is not removed; one read after it is.
	if err := s.CloseWindow(ctx, got[1]); err != nil {
		t.Fatalf("close with a stale ETag: %v, want no error", err)
	}
	if n := len(rows()); n != 3 {
		t.Fatalf("a row changed since it was read was removed (%d rows)", n)
	}
	if err := s.CloseWindow(ctx, noted[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWindow(ctx, noted[1]); err != nil {
		t.Fatalf("close of a removed row: %v, want no error", err)
	}

	// Without an ETag the row goes whatever it is (a deleted credential's clean-up closes
	// its own row).
	open("org-a", "gone", 2)
	if err := s.CloseWindow(ctx, credential.OpenWindow{OrgID: "org-a", CredentialID: "gone"}); err != nil {
		t.Fatal(err)
	}
	// A new window replaces the row and what it noted.
	open("org-b", "c1", 4)
	if err := s.CloseWindow(ctx, got[2]); err != nil {
		t.Fatal(err)
	}
	want = []credential.OpenWindow{{OrgID: "org-a", CredentialID: "c1", OpenedAt: at}, {OrgID: "org-b", CredentialID: "c1", Generation: 4, OpenedAt: at}}
	if diff := cmp.Diff(want, rows(), opts); diff != "" {
		t.Fatalf("rows after a new window (-want +got):\n%s", diff)
	}
	// The index is none of the organizations' business.
	if cs, err := s.List(ctx, "org-a"); err != nil || len(cs) != 0 {
		t.Fatalf("org-a lists %d credentials (%v): the index shows in an organization", len(cs), err)
	}
}
