package store

import (
	"context"
	"errors"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// TestInsertNeedsNoReadBack: a credential's insert learns its row's ETag (and its
// counter's) from the transaction's answer: after the organization's first, an insert is
// one transaction, with no read of the row or the counter, and the ETag it holds is the
// row's.
func TestInsertNeedsNoReadBack(t *testing.T) {
	s, p := newProxiedStore(t)
	ctx := context.Background()
	insert(t, s, sample("org-a", "first")) // initialises the counter
	before := p.Stats()
	c := sample("org-a", "second")
	insert(t, s, c)
	ops := p.Stats().Sub(before).Services[faultproxy.ServiceTable].Operations
	if ops["POST batch"] != 1 || ops["GET entity"] != 0 || len(ops) != 1 {
		t.Errorf("an insert made %v, want one POST batch", ops)
	}
	got, err := s.Get(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.ETag == "" || c.ETag != got.ETag {
		t.Errorf("insert held ETag %q, the row has %q", c.ETag, got.ETag)
	}
	c.TenantID = "t"
	if err := s.Update(ctx, c, nil); err != nil {
		t.Fatalf("update with the insert's ETag: %v", err)
	}
}

// TestRememberedCounterMovedElsewhere: a counter another instance (or a delete) moved
// since this instance's last insert makes the next insert read it again: the count and
// the limit stay exact.
func TestRememberedCounterMovedElsewhere(t *testing.T) {
	a, _ := newProxiedStore(t)
	b := &Store{table: a.table, limits: Limits{Credentials: 3}}
	a.limits = Limits{Credentials: 3}
	ctx := context.Background()
	insert(t, a, sample("org-a", "one"))
	insert(t, b, sample("org-a", "two")) // a's remembered counter is stale now
	insert(t, a, sample("org-a", "three"))
	err := a.Insert(ctx, sample("org-a", "four"), credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
	var qe *credential.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("the fourth insert: %v, want the limit of 3", err)
	}
	// A delete frees a place; this instance's next insert sees it.
	list, err := a.List(ctx, "org-a")
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	if err := b.Delete(ctx, list[0]); err != nil {
		t.Fatal(err)
	}
	insert(t, a, sample("org-a", "four"))
	cnt, err := a.readCounter(ctx, "org-a", credentialCounter)
	if err != nil || cnt.count != 3 {
		t.Fatalf("counter %d, %v; want 3", cnt.count, err)
	}
}
