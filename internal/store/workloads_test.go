package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

const wiTenant = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"

func registration(org string) (*credential.WorkloadIdentity, credential.WorkloadIdentityEvent) {
	w := &credential.WorkloadIdentity{OrgID: org, ID: uuid.NewString(), DisplayName: "job", TenantID: wiTenant, ClientID: uuid.NewString(), CreatedAt: t0}
	return w, credential.WorkloadIdentityEvent{Time: t0, Cause: credential.WorkloadIdentityRegistered, WorkloadIdentityID: w.ID,
		TenantID: w.TenantID, ClientID: w.ClientID, Actor: credential.Actor{Kind: credential.ActorUser, ID: "user-1"}}
}

// TestEventsWithoutActor: a transition event written before actors were recorded has no
// actor columns and reads with the zero Actor; one written now carries its actor in
// columns of its own, and none when it has none.
func TestEventsWithoutActor(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	old := map[string]any{"PartitionKey": "org-a", "RowKey": eventKey(c.ID, 2), "CredentialID": c.ID, "Time": formatTime(t0),
		"From": "draft", "To": "sp_pending", "Cause": "submit_tenant", "RequestID": "r-old", "Generation": 1}
	b, _ := json.Marshal(old)
	if _, err := s.table.AddEntity(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, "org-a", c.ID)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	for _, ev := range evs {
		if !ev.Actor.IsZero() {
			t.Errorf("event %s reads with actor %+v, want none", ev.Cause, ev.Actor)
		}
	}
	// The creation event above had no actor: no actor column was written.
	resp, err := s.table.GetEntity(ctx, "org-a", eventKey(c.ID, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Value, &raw); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"ActorKind", "ActorID", "ActorClientID", "ActorTenantID"} {
		if _, ok := raw[col]; ok {
			t.Errorf("an event without an actor has column %s", col)
		}
	}
}

// TestWorkloadRowsApartFromWorkspaces: the registry's rows (wi:, wid:, wie:) share the
// partition with workspaces (w:) but never meet their queries or their count, nor the
// credentials'.
func TestWorkloadRowsApartFromWorkspaces(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 3 {
		w, ev := registration("org-a")
		if err := s.InsertWorkloadIdentity(ctx, w, ev); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: fmt.Sprintf("ws%d", i), CredentialID: "x",
			CreatedAt: t0, UpdatedAt: t0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := rows(t, s, "org-a", workspacePrefix); n != 3 {
		t.Errorf("%d workspace rows, want 3", n)
	}
	if n := rows(t, s, "org-a", workloadPrefix); n != 3 {
		t.Errorf("%d workload identity rows, want 3", n)
	}
	if got := counted(t, s, "org-a", workloadCounter); got != 3 {
		t.Errorf("workload identity counter %d, want 3", got)
	}
	links, err := s.UnlockedLinks(ctx, "org-a", "x", 100)
	if err != nil || len(links) != 3 {
		t.Errorf("unlocked links %d, %v; want the 3 workspaces", len(links), err)
	}
	if list, err := s.List(ctx, "org-a"); err != nil || len(list) != 0 {
		t.Errorf("credentials %v, %v; want none", list, err)
	}
	evs, err := s.WorkloadIdentityEvents(ctx, "org-a")
	if err != nil || len(evs) != 3 {
		t.Errorf("registry log %d, %v; want 3", len(evs), err)
	}
}

// TestWorkloadQuotaRace: registrations from several instances race for the last place;
// only the counter's ETag decides, and every winner's event has a key of its own.
func TestWorkloadQuotaRace(t *testing.T) {
	const limit, racers = 4, 12
	s := newStore(t)
	s.limits = Limits{WorkloadIdentities: limit}
	ctx := context.Background()
	for range limit - 1 {
		w, ev := registration("org-a")
		if err := s.InsertWorkloadIdentity(ctx, w, ev); err != nil {
			t.Fatal(err)
		}
	}
	wins, refused, others := race(racers, func(int) error {
		w, ev := registration("org-a")
		return peer(s).InsertWorkloadIdentity(ctx, w, ev)
	}, credential.ErrQuotaExceeded)
	if wins != 1 || refused != racers-1 || len(others) > 0 {
		t.Fatalf("%d won, %d refused, other errors %v; want 1 and %d", wins, refused, others, racers-1)
	}
	if got, n := counted(t, s, "org-a", workloadCounter), rows(t, s, "org-a", workloadPrefix); got != limit || n != limit {
		t.Errorf("counter %d, %d rows; want %d", got, n, limit)
	}
	if evs, err := s.WorkloadIdentityEvents(ctx, "org-a"); err != nil || len(evs) != limit {
		t.Errorf("registry log %d, %v; want %d", len(evs), err, limit)
	}
}
