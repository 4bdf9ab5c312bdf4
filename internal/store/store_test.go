package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/testenv"
)

// newStore opens a store on a fresh table of the test Azurite, removed after the test.
func newStore(t *testing.T) *Store {
	t.Helper()
	env := testenv.Azurite(t)
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "cred")
	ctx := context.Background()
	s, err := Open(ctx, svc, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return s
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sample(org, name string) *credential.Credential {
	bp, _ := credential.ParseBasePath("az://bloblake/lakedata/tables")
	return &credential.Credential{
		OrgID: org, ID: uuid.NewString(), Name: name, StorageType: credential.StorageTypeAzureFederated,
		BasePath: bp, State: credential.StateDraft, CreatedAt: t0, UpdatedAt: t0,
	}
}

func insert(t *testing.T, s *Store, c *credential.Credential) {
	t.Helper()
	if err := s.Insert(context.Background(), c, credential.EventRecord{Time: c.CreatedAt, To: credential.StateDraft, Cause: credential.EventCreated, RequestID: "req-create"}); err != nil {
		t.Fatalf("insert %s: %v", c.Name, err)
	}
}

var ignoreStoreFields = cmpopts.IgnoreFields(credential.Credential{}, "ETag", "IsOrgDefault")

func TestRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	if c.ETag == "" {
		t.Fatal("insert left no ETag")
	}
	c.App = credential.App{ObjectID: "obj-1", AppID: "app-1"}
	c.TenantID = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"
	c.SPObjectID = "sp-1"
	c.Storage = credential.StorageTarget{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "rg", Account: "bloblake", Container: "lakedata"}
	c.Generation = 3
	c.VerifiedAt = t0.Add(time.Minute)
	c.Progress = credential.Progress{Kind: credential.WindowAccessProbe, Attempts: 2, StartedAt: t0, Deadline: t0.Add(5 * time.Minute),
		GraceUntil: t0.Add(2 * time.Minute), Status: credential.StatusWaitingForRolePropagation,
		Checks: []credential.Check{{Name: "user_delegation_key", Result: "pass"}, {Name: "write", Result: "fail", ProviderCode: "AuthorizationPermissionMismatch"}}}
	c.LastError = credential.Problem{Message: "waiting", Code: "waiting_for_role_propagation", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-1"}
	if err := s.Update(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got, ignoreStoreFields); diff != "" {
		t.Fatalf("round trip (-wrote +read):\n%s", diff)
	}
	list, err := s.List(ctx, "org-a")
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("list = %v, %v", list, err)
	}
	evs, err := s.Events(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []credential.EventRecord{{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated, RequestID: "req-create"}}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestNotFound(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	for _, tc := range []struct{ org, id string }{{"org-a", uuid.NewString()}, {"org-b", c.ID}} {
		if _, err := s.Get(ctx, tc.org, tc.id); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("Get(%s, %s) = %v, want ErrNotFound", tc.org, tc.id, err)
		}
	}
	if list, err := s.List(ctx, "org-b"); err != nil || len(list) != 0 {
		t.Errorf("another org lists %v, %v", list, err)
	}
}

func TestDuplicateName(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	insert(t, s, sample("org-a", "prod"))
	dup := sample("org-a", "PROD")
	err := s.Insert(ctx, dup, credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
	var ce *credential.ConflictError
	if !errors.As(err, &ce) || ce.Message != `a credential named "PROD" already exists in this organization` {
		t.Fatalf("duplicate insert = %v", err)
	}
	if _, err := s.Get(ctx, "org-a", dup.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused duplicate left a row: %v", err)
	}
	// The same name in another organization is fine.
	insert(t, s, sample("org-b", "prod"))
}

func TestStaleETag(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	first, _ := s.Get(ctx, "org-a", c.ID)
	second, _ := s.Get(ctx, "org-a", c.ID)
	ev := func(to credential.State) *credential.EventRecord {
		return &credential.EventRecord{Time: t0, From: credential.StateDraft, To: to, Cause: credential.EventSubmitTenant}
	}
	first.State = credential.StateSPPending
	if err := s.Update(ctx, first, ev(credential.StateSPPending)); err != nil {
		t.Fatal(err)
	}
	second.TenantID = "loser"
	err := s.Update(ctx, second, ev(credential.StateSPPending))
	if !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	if err := s.Update(ctx, second, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale plain update = %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, second); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale delete = %v, want ErrConflict", err)
	}
	got, _ := s.Get(ctx, "org-a", c.ID)
	if got.TenantID != "" || got.State != credential.StateSPPending {
		t.Fatalf("loser's write landed: %+v", got)
	}
	evs, _ := s.Events(ctx, "org-a", c.ID)
	if len(evs) != 2 {
		t.Fatalf("want 2 events (created, winner), got %d: %+v", len(evs), evs)
	}
}

// TestConcurrentUpdates: many writers holding the same read; exactly one wins.
func TestConcurrentUpdates(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	reads := make([]*credential.Credential, writers)
	for i := range reads {
		read, err := s.Get(ctx, "org-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		reads[i] = read
	}
	for i, read := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read.State = credential.StateSPPending
			errs[i] = s.Update(ctx, read, &credential.EventRecord{Time: t0, From: credential.StateDraft, To: credential.StateSPPending, Cause: credential.EventSubmitTenant})
		}()
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
	evs, _ := s.Events(ctx, "org-a", c.ID)
	if len(evs) != 2 {
		t.Fatalf("want 2 events, got %d", len(evs))
	}
}

func TestDeleteFreesNameAndDefault(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	if err := s.SetOrgDefault(ctx, c); err != nil {
		t.Fatal(err)
	}
	if def, err := s.OrgDefault(ctx, "org-a"); err != nil || def != c.ID {
		t.Fatalf("org default = %q, %v", def, err)
	}
	fresh, _ := s.Get(ctx, "org-a", c.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if def, err := s.OrgDefault(ctx, "org-a"); err != nil || def != "" {
		t.Fatalf("org default after delete = %q, %v", def, err)
	}
	if _, err := s.Get(ctx, "org-a", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("deleted credential still readable: %v", err)
	}
	insert(t, s, sample("org-a", "prod")) // the name is free again
}

// TestDeleteLeavesATombstone: a deleted credential's row becomes a tombstone that every
// read of credentials skips (Get, List, the health sweep's walk) and that keeps what
// messages and the clean-up need; a second delete from a stale read is refused.
func TestDeleteLeavesATombstone(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := verified(t, s, "org-a", "prod")
	c.App = credential.App{ObjectID: "obj-1", AppID: "app-1"}
	if err := s.Update(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	other := verified(t, s, "org-a", "other")
	if _, err := s.Tombstone(ctx, "org-a", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("tombstone of a live credential: %v", err)
	}
	stale, _ := s.Get(ctx, "org-a", c.ID)
	fresh, _ := s.Get(ctx, "org-a", c.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "org-a", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	list, err := s.List(ctx, "org-a")
	if err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("list after delete: %v, %v", list, err)
	}
	var walked []string
	if err := s.EachVerified(ctx, func(v *credential.Credential) error { walked = append(walked, v.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{other.ID}) {
		t.Fatalf("the health walk met %v, want only %s", walked, other.ID)
	}
	d, err := s.Tombstone(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &credential.DeletedCredential{OrgID: "org-a", ID: c.ID, Name: "prod", BasePath: c.BasePath, App: c.App}
	if diff := cmp.Diff(want, d, cmpopts.IgnoreFields(credential.DeletedCredential{}, "DeletedAt")); diff != "" || d.DeletedAt.IsZero() {
		t.Fatalf("tombstone (-want +got):\n%s deleted at %s", diff, d.DeletedAt)
	}
	if _, err := s.Tombstone(ctx, "org-a", uuid.NewString()); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("tombstone of a credential that never existed: %v", err)
	}
	if err := s.Delete(ctx, stale); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("a second delete from a stale read: %v, want ErrConflict", err)
	}
	if err := s.Update(ctx, stale, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("an update of the deleted credential: %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "org-a", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused writes brought it back: %v", err)
	}
}

func TestDeleteKeepsOtherDefault(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := sample("org-a", "a"), sample("org-a", "b")
	insert(t, s, a)
	insert(t, s, b)
	if err := s.SetOrgDefault(ctx, a); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.Get(ctx, "org-a", b.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if def, _ := s.OrgDefault(ctx, "org-a"); def != a.ID {
		t.Fatalf("deleting b moved the default to %q", def)
	}
}

// TestSetDefaultRacesDelete: a default set from a stale read of a deleted credential is
// refused, so no default ever points at a missing credential.
func TestSetDefaultRacesDelete(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	stale, _ := s.Get(ctx, "org-a", c.ID)
	fresh, _ := s.Get(ctx, "org-a", c.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrgDefault(ctx, stale); err == nil {
		t.Fatal("default set on a deleted credential")
	}
	if def, _ := s.OrgDefault(ctx, "org-a"); def != "" {
		t.Fatalf("dangling default %q", def)
	}
}

func TestInnerBatchError(t *testing.T) {
	body := "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n--changesetresponse_2\r\n" +
		"Content-Type: application/http\r\n\r\nHTTP/1.1 412 Precondition Failed\r\nContent-ID: 1\r\n\r\n" +
		`{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"x"}}}` + "\r\n--changesetresponse_2--\r\n--batchresponse_1--\r\n"
	got, ok := innerBatchError([]byte(body))
	if !ok || got.Status != 412 || got.Code != "UpdateConditionNotSatisfied" {
		t.Fatalf("innerBatchError = %+v, %v", got, ok)
	}
	if _, ok := innerBatchError([]byte("HTTP/1.1 204 No Content\r\n\r\n")); ok {
		t.Fatal("a successful batch read as an error")
	}
}
