package credential_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

const (
	apiAppID  = "bf01b0aa-723e-4500-96ee-1bc388018396"
	miTenant  = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	miClient  = "7ab7e149-fa92-4d13-b4f5-3968577a83a7"
	cacheTTL  = 30 * time.Second
	otherTent = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
)

var (
	platformUser = credential.Actor{Kind: credential.ActorUser, ID: "user-1"}
	asUser       = credential.WithActor(context.Background(), platformUser)
)

// registry is the registry of one instance, and a second instance's on the same store and
// clock.
type registry struct {
	t     *testing.T
	fake  *credentialtest.Fakes
	this  *credential.WorkloadIdentities
	other *credential.WorkloadIdentities
}

func newRegistry(t *testing.T, ttl time.Duration) *registry {
	t.Helper()
	fake := credentialtest.NewFakes()
	cfg := credential.Config{APIAppID: strings.ToUpper(apiAppID), WorkloadIdentityCacheTTL: ttl}
	build := func() *credential.WorkloadIdentities {
		w, err := credential.NewWorkloadIdentities(cfg, fake.Store, slog.New(slog.DiscardHandler), credential.WithClock(fake.Clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	return &registry{t: t, fake: fake, this: build(), other: build()}
}

func (r *registry) register(on *credential.WorkloadIdentities, org, tenant, client string) *credential.WorkloadIdentity {
	r.t.Helper()
	w, err := on.Register(asUser, org, credential.WorkloadIdentityInput{DisplayName: "lake-job", ClientID: client, TenantID: tenant}, "req-reg")
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

// admitted looks the pair up on an instance: true when registered, false when not; it
// fails the test on any other error.
func (r *registry) admitted(on *credential.WorkloadIdentities, org, tenant, client string) bool {
	r.t.Helper()
	w, err := on.Lookup(context.Background(), org, tenant, client)
	switch {
	case errors.Is(err, credential.ErrNotFound):
		return false
	case err != nil:
		r.t.Fatal(err)
	}
	if w.OrgID != org || w.TenantID != tenant || w.ClientID != client {
		r.t.Fatalf("lookup of %s/%s/%s answered %+v", org, tenant, client, w)
	}
	return true
}

func (r *registry) reads() int { return r.fake.Store.Calls("FindWorkloadIdentity") }

// TestRegisterWorkloadIdentity: a registration validates its input (the display name like
// a credential name, the ids as UUIDs), stores the ids lower-cased, answers the customer's
// install command, and records who registered it.
func TestRegisterWorkloadIdentity(t *testing.T) {
	r := newRegistry(t, cacheTTL)
	for _, tc := range []struct {
		in           credential.WorkloadIdentityInput
		field, error string
	}{
		{credential.WorkloadIdentityInput{ClientID: miClient, TenantID: miTenant}, "display_name", "display_name is required"},
		{credential.WorkloadIdentityInput{DisplayName: "lake job", ClientID: miClient, TenantID: miTenant}, "display_name",
			`display_name "lake job" contains invalid character " "`},
		{credential.WorkloadIdentityInput{DisplayName: strings.Repeat("a", 65), ClientID: miClient, TenantID: miTenant}, "display_name",
			"display_name must be at most 64 characters"},
		{credential.WorkloadIdentityInput{DisplayName: "j", TenantID: miTenant}, "client_id", "client_id is required"},
		{credential.WorkloadIdentityInput{DisplayName: "j", ClientID: "lake-job", TenantID: miTenant}, "client_id",
			`client_id "lake-job" is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`},
		{credential.WorkloadIdentityInput{DisplayName: "j", ClientID: miClient, TenantID: "contoso.onmicrosoft.com"}, "tenant_id",
			`tenant_id "contoso.onmicrosoft.com" is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`},
	} {
		_, err := r.this.Register(asUser, "org", tc.in, "req")
		var ve *credential.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || ve.Message != tc.error {
			t.Errorf("register %+v: %v, want %s: %s", tc.in, err, tc.field, tc.error)
		}
	}
	if snap := r.fake.Store.Snapshot(); len(snap) != 0 {
		t.Fatalf("refused registrations wrote %v", snap)
	}

	w, err := r.this.Register(asUser, "org", credential.WorkloadIdentityInput{DisplayName: "lake-job",
		ClientID: strings.ToUpper(miClient), TenantID: strings.ToUpper(miTenant)}, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	want := &credential.WorkloadIdentity{OrgID: "org", ID: w.ID, DisplayName: "lake-job", TenantID: miTenant, ClientID: miClient,
		CreatedAt: credentialtest.T0}
	if diff := cmp.Diff(want, w); diff != "" || w.ID == "" {
		t.Fatalf("registration (-want +got):\n%s", diff)
	}
	if got := r.this.InstallCommand(); got != "az ad sp create --id "+apiAppID {
		t.Errorf("install command %q", got)
	}
	// The same pair again, in any spelling, is the conflict the store names.
	_, err = r.this.Register(asUser, "org", credential.WorkloadIdentityInput{DisplayName: "again", ClientID: miClient, TenantID: miTenant}, "req-2")
	var ce *credential.ConflictError
	if !errors.As(err, &ce) || ce.Message != credential.WorkloadIdentityConflict(miTenant, miClient).Message {
		t.Fatalf("a second registration: %v", err)
	}
	// Another organization may register the same identity.
	r.register(r.this, "org-b", miTenant, miClient)

	evs, err := r.this.Events(context.Background(), "org")
	if err != nil {
		t.Fatal(err)
	}
	wantEvs := []credential.WorkloadIdentityEvent{{Time: credentialtest.T0, Cause: credential.WorkloadIdentityRegistered,
		WorkloadIdentityID: w.ID, DisplayName: "lake-job", TenantID: miTenant, ClientID: miClient, RequestID: "req-1", Actor: platformUser}}
	if diff := cmp.Diff(wantEvs, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	list, err := r.this.List(context.Background(), "org")
	if err != nil || len(list) != 1 || list[0].ID != w.ID {
		t.Fatalf("list %+v, %v", list, err)
	}

	off, err := credential.NewWorkloadIdentities(credential.Config{}, r.fake.Store, slog.New(slog.DiscardHandler))
	if err != nil || off.InstallCommand() != "" {
		t.Errorf("without an API app id: %v, install command %q", err, off.InstallCommand())
	}
	if _, err := credential.NewWorkloadIdentities(credential.Config{WorkloadIdentityCacheTTL: -time.Second}, r.fake.Store, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a negative cache TTL was taken")
	}
}

// TestWorkloadIdentityCannotChangeTheRegistry: a workload identity's request to register or
// remove one is forbidden, and writes nothing; a user's goes through.
func TestWorkloadIdentityCannotChangeTheRegistry(t *testing.T) {
	r := newRegistry(t, cacheTTL)
	w := r.register(r.this, "org", miTenant, miClient)
	before := r.fake.Store.Snapshot()
	asWorkload := credential.WithActor(context.Background(), credential.Actor{Kind: credential.ActorWorkloadIdentity, ID: w.ID,
		ClientID: miClient, TenantID: miTenant})
	_, err := r.this.Register(asWorkload, "org", credential.WorkloadIdentityInput{DisplayName: "another", ClientID: "0a6f4c1e-8b0a-4e59-9d0e-3c6f1b1e2d3c",
		TenantID: miTenant}, "req")
	var fe *credential.ForbiddenError
	if !errors.As(err, &fe) || !errors.Is(err, credential.ErrForbidden) || !strings.Contains(fe.Message, "platform user") {
		t.Errorf("a workload identity registers: %v, want a *ForbiddenError", err)
	}
	if err := r.this.Remove(asWorkload, "org", w.ID, "req"); !errors.Is(err, credential.ErrForbidden) {
		t.Errorf("a workload identity removes: %v, want ErrForbidden", err)
	}
	if diff := cmp.Diff(before, r.fake.Store.Snapshot()); diff != "" {
		t.Errorf("the refused requests wrote (-before +after):\n%s", diff)
	}
}

// TestRemoveWorkloadIdentity: a removal deletes the registration and records who removed
// it; a second one, or one from another organization, is not found.
func TestRemoveWorkloadIdentity(t *testing.T) {
	r := newRegistry(t, cacheTTL)
	w := r.register(r.this, "org", miTenant, miClient)
	if err := r.this.Remove(asUser, "org-b", w.ID, "req"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("another organization removes it: %v, want ErrNotFound", err)
	}
	r.fake.Clock.Advance(time.Minute)
	if err := r.this.Remove(asUser, "org", w.ID, "req-rm"); err != nil {
		t.Fatal(err)
	}
	if err := r.this.Remove(asUser, "org", w.ID, "req-rm"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("a second removal: %v, want ErrNotFound", err)
	}
	evs, err := r.this.Events(context.Background(), "org")
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	want := credential.WorkloadIdentityEvent{Time: credentialtest.T0.Add(time.Minute), Cause: credential.WorkloadIdentityRemoved,
		WorkloadIdentityID: w.ID, DisplayName: "lake-job", TenantID: miTenant, ClientID: miClient, RequestID: "req-rm", Actor: platformUser}
	if diff := cmp.Diff(want, evs[1]); diff != "" {
		t.Fatalf("removal event (-want +got):\n%s", diff)
	}
	if list, _ := r.this.List(context.Background(), "org"); len(list) != 0 {
		t.Fatalf("list after the removal: %+v", list)
	}
}

// TestLookupCache: lookups are served from the instance's cache, found or not, without a
// store read; a change on this instance is seen at once; a removal on another instance is
// seen when the entry's TTL ends (the bound on how long a removed identity is admitted),
// a registration there when the shorter negative TTL ends. A storage failure is not cached.
func TestLookupCache(t *testing.T) {
	r := newRegistry(t, cacheTTL)
	clock := r.fake.Clock

	// Unknown: refused, the answer kept.
	if r.admitted(r.this, "org", miTenant, miClient) || r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("an unregistered identity was admitted")
	}
	if n := r.reads(); n != 1 {
		t.Fatalf("%d store reads for two lookups of an unregistered identity, want 1", n)
	}
	// Registered here: admitted at once.
	w := r.register(r.this, "org", miTenant, miClient)
	if !r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("not admitted right after its registration on this instance")
	}
	for range 5 {
		r.admitted(r.this, "org", miTenant, miClient)
	}
	if n := r.reads(); n != 2 {
		t.Fatalf("%d store reads, want 2: a warm lookup reads nothing", n)
	}
	// The same client id of another tenant, and another organization, are other entries.
	if r.admitted(r.this, "org", otherTent, miClient) || r.admitted(r.this, "org-b", miTenant, miClient) {
		t.Fatal("admitted for another tenant or organization")
	}

	// Removed on the other instance: still admitted here until the TTL ends, not after.
	if !r.admitted(r.other, "org", miTenant, miClient) {
		t.Fatal("the other instance does not admit it")
	}
	if err := r.other.Remove(asUser, "org", w.ID, "req"); err != nil {
		t.Fatal(err)
	}
	if r.admitted(r.other, "org", miTenant, miClient) {
		t.Fatal("the instance that removed it still admits it")
	}
	clock.Advance(cacheTTL - time.Nanosecond)
	if !r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("refused before the TTL ended: the entry was not kept for its TTL")
	}
	clock.Advance(time.Nanosecond)
	if r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatalf("still admitted %v after its removal on another instance", cacheTTL)
	}

	// Registered on the other instance: seen here when the negative entry ends.
	r.register(r.other, "org", miTenant, miClient)
	if r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("a fresh negative answer was not kept")
	}
	clock.Advance(credential.MaxNegativeLookupTTL)
	if !r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatalf("not admitted %v after its registration on another instance", credential.MaxNegativeLookupTTL)
	}

	// A storage failure is the caller's to see, and is not kept.
	clock.Advance(cacheTTL)
	r.fake.Store.Inject("FindWorkloadIdentity", credentialtest.Fault{Times: 1, Err: credential.ErrUnavailable})
	if _, err := r.this.Lookup(context.Background(), "org", miTenant, miClient); !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("lookup while the store fails: %v, want ErrUnavailable", err)
	}
	if !r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("the failure was cached")
	}
}

// TestLookupWithoutCache: a TTL of zero keeps nothing: every lookup reads the store.
func TestLookupWithoutCache(t *testing.T) {
	r := newRegistry(t, 0)
	r.register(r.this, "org", miTenant, miClient)
	for range 3 {
		if !r.admitted(r.this, "org", miTenant, miClient) || r.admitted(r.this, "org", otherTent, miClient) {
			t.Fatal("wrong answer")
		}
	}
	if n := r.reads(); n != 6 {
		t.Fatalf("%d store reads for 6 lookups without a cache", n)
	}
}

// TestLookupRacingARemoval: a lookup whose read began before this instance removed the
// identity does not put the stale answer back into the cache.
func TestLookupRacingARemoval(t *testing.T) {
	r := newRegistry(t, cacheTTL)
	w := r.register(r.this, "org", miTenant, miClient)
	// The lookup's read lands, then the removal runs before the lookup keeps its answer.
	r.fake.Store.After("FindWorkloadIdentity", func() {
		if err := r.this.Remove(asUser, "org", w.ID, "req"); err != nil {
			t.Error(err)
		}
	})
	if !r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("the lookup that read before the removal should still answer what it read")
	}
	if r.admitted(r.this, "org", miTenant, miClient) {
		t.Fatal("the answer read before the removal was kept: the removed identity is still admitted on the instance that removed it")
	}
}
