package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
)

// peer is another instance's store on the same table: its own gate, so its inserts race
// this one's at the counter's ETag, as two instances of the backend do.
func peer(s *Store) *Store { return &Store{table: s.table, limits: s.limits} }

// counted reads an organization's counter row directly; -1 when it does not exist.
func counted(t *testing.T, s *Store, org string, c counter) int {
	t.Helper()
	resp, err := s.table.GetEntity(context.Background(), org, c.key, nil)
	if err != nil {
		if errors.Is(translate(err, "read"), credential.ErrNotFound) {
			return -1
		}
		t.Fatal(err)
	}
	var ent counterEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		t.Fatal(err)
	}
	return ent.Count
}

func rows(t *testing.T, s *Store, org, prefix string) int {
	t.Helper()
	n, err := s.countRows(context.Background(), org, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// race runs n calls at once and sorts their outcomes: how many succeeded, and the errors
// that were not the expected refusal.
func race(n int, call func(i int) error, refused error) (wins, refusals int, others []error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, refused):
			refusals++
		default:
			others = append(others, err)
		}
	}
	return wins, refusals, others
}

// TestCredentialQuotaRace: 16 creates race for the last place under the limit, each from
// its own instance (store), so only the counter row's ETag decides: exactly one wins, the
// others get a *QuotaError naming the limit, and the count is right.
func TestCredentialQuotaRace(t *testing.T) {
	const limit, racers = 5, 16
	for _, sameInstance := range []bool{false, true} {
		t.Run(fmt.Sprintf("same instance %v", sameInstance), func(t *testing.T) {
			s := newStore(t)
			s.limits = Limits{Credentials: limit}
			for i := range limit - 1 {
				insert(t, s, sample("org-a", fmt.Sprintf("c%d", i)))
			}
			stores := make([]*Store, racers)
			for i := range stores {
				stores[i] = s
				if !sameInstance {
					stores[i] = peer(s)
				}
			}
			wins, refused, others := race(racers, func(i int) error {
				c := sample("org-a", fmt.Sprintf("racer%d", i))
				return stores[i].Insert(context.Background(), c, credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
			}, credential.ErrQuotaExceeded)
			if wins != 1 || refused != racers-1 || len(others) > 0 {
				t.Fatalf("%d won, %d refused, other errors %v; want 1 and %d", wins, refused, others, racers-1)
			}
			if got := counted(t, s, "org-a", credentialCounter); got != limit {
				t.Errorf("counter %d, want %d", got, limit)
			}
			if got := rows(t, s, "org-a", credentialPrefix); got != limit {
				t.Errorf("%d credential rows, want %d", got, limit)
			}
			err := s.Insert(context.Background(), sample("org-a", "late"), credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
			var qe *credential.QuotaError
			if !errors.As(err, &qe) || qe.Quota != credential.QuotaCredentials || qe.Limit != limit || errors.Is(err, credential.ErrConflict) {
				t.Errorf("at the limit: %v", err)
			}
			// Another organization has its own count.
			insert(t, s, sample("org-b", "c0"))
		})
	}
}

// TestWorkspaceQuotaRace: the same race for workspaces; at the limit an existing workspace
// is still reported as existing, never as over the quota.
func TestWorkspaceQuotaRace(t *testing.T) {
	const limit, racers = 5, 16
	s := newStore(t)
	s.limits = Limits{Workspaces: limit}
	ctx := context.Background()
	ws := func(id string) *credential.Workspace {
		return &credential.Workspace{OrgID: "org-a", ID: id, CreatedAt: t0, UpdatedAt: t0}
	}
	for i := range limit - 1 {
		if err := s.InsertWorkspace(ctx, ws(fmt.Sprintf("w%d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	wins, refused, others := race(racers, func(i int) error {
		return peer(s).InsertWorkspace(ctx, ws(fmt.Sprintf("racer%d", i)), nil)
	}, credential.ErrQuotaExceeded)
	if wins != 1 || refused != racers-1 || len(others) > 0 {
		t.Fatalf("%d won, %d refused, other errors %v; want 1 and %d", wins, refused, others, racers-1)
	}
	if got, rows := counted(t, s, "org-a", workspaceCounter), rows(t, s, "org-a", workspacePrefix); got != limit || rows != limit {
		t.Errorf("counter %d, %d workspace rows; want %d", got, rows, limit)
	}
	err := s.InsertWorkspace(ctx, ws("w0"), nil)
	if !errors.Is(err, credential.ErrConflict) || errors.Is(err, credential.ErrQuotaExceeded) {
		t.Errorf("an existing workspace at the limit: %v, want the conflict of an existing one", err)
	}
	var qe *credential.QuotaError
	if err := s.InsertWorkspace(ctx, ws("new"), nil); !errors.As(err, &qe) || qe.Quota != credential.QuotaWorkspaces || qe.Limit != limit {
		t.Errorf("a new workspace at the limit: %v", err)
	}
}

// TestCounterInitialisedFromRows: an organization whose rows were written before counters
// existed gets its counter from one count of its rows; creates that race to initialise it,
// each from its own instance, leave it equal to the rows. A delete initialises it too.
func TestCounterInitialisedFromRows(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 3 {
		insert(t, s, sample("org-a", fmt.Sprintf("old%d", i)))
		insert(t, s, sample("org-b", fmt.Sprintf("old%d", i)))
	}
	forget := func(org string) {
		t.Helper()
		if _, err := s.table.DeleteEntity(ctx, org, credentialCounter.key, nil); err != nil {
			t.Fatal(err)
		}
	}
	forget("org-a")
	forget("org-b")
	wins, _, others := race(8, func(i int) error {
		c := sample("org-a", fmt.Sprintf("new%d", i))
		return peer(s).Insert(ctx, c, credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
	}, credential.ErrQuotaExceeded)
	if wins != 8 || len(others) > 0 {
		t.Fatalf("%d of 8 inserts won; errors %v", wins, others)
	}
	if got := counted(t, s, "org-a", credentialCounter); got != 11 {
		t.Errorf("counter %d, want 11 (3 old rows and 8 new)", got)
	}
	list, _ := s.List(ctx, "org-b")
	if err := s.Delete(ctx, list[0]); err != nil {
		t.Fatal(err)
	}
	if got := counted(t, s, "org-b", credentialCounter); got != 2 {
		t.Errorf("counter after a delete initialised it: %d, want 2", got)
	}
}

func TestGateSerialisesPerKey(t *testing.T) {
	var g gate
	ctx := context.Background()
	leaveA, err := g.enter(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free.
	leaveB, err := g.enter(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	leaveB()
	// The same key waits: a cancelled wait gives up and leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.enter(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("entering a held key with a cancelled context: %v", err)
	}
	entered := make(chan func(), 1)
	go func() {
		leave, err := g.enter(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		entered <- leave
	}()
	for waiting := false; !waiting; {
		g.mu.Lock()
		waiting = g.slots["a"].users == 2
		g.mu.Unlock()
		runtime.Gosched()
	}
	select {
	case <-entered:
		t.Fatal("entered a key that was held")
	default:
	}
	leaveA()
	(<-entered)()
	if len(g.slots) != 0 {
		t.Fatalf("slots left behind: %v", g.slots)
	}
}
