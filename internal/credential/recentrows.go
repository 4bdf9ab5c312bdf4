package credential

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// RecentRows remembers, in one process, the credential rows it last read or wrote, with
// their ETags, so that a submit or a window's job can start its write from the row it has
// instead of reading it again. It saves the read of most steps of an onboarding: a
// submit finds the row the wizard's last detail read or the previous step left, a job the
// row its submit or its previous attempt wrote.
//
// A remembered row may be stale: another instance, the reconciler or the health sweep may
// have written it since. That is safe by two rules, which its users keep:
//   - a write that starts from a remembered row is conditional on its ETag, so a stale one
//     fails with ErrConflict (or ErrNotFound) and changes nothing;
//   - any outcome reached from a remembered row that writes nothing (a refusal, a job
//     found stale) is decided again on a fresh read, as is one whose write failed.
//
// One outcome is taken on a remembered row without a write: a job the row shows already
// behind its window is dropped (passed), since a row's generation, and within it its count
// of attempts, only grow.
//
// So what a caller sees, and what the rows hold, is what a fresh read would have given;
// a stale entry costs the wasted attempt and the read it was to save. Entries live at
// most their time to live and the table holds at most its size, oldest use evicted first.
type RecentRows struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[rowKey]*list.Element
	order   list.List // of *recentRow, most recently used first
	hits    int64
	misses  int64
}

type rowKey struct{ org, id string }

type recentRow struct {
	key   rowKey
	row   *Credential
	until time.Time
}

// RecentRows' defaults: rows are small (about a kilobyte), so the bound is on their
// number; a window's jobs and the wizard's reads refresh a row every few seconds while
// its onboarding moves, and one left alone longer is not worth keeping.
const (
	DefaultRecentRows   = 4096
	DefaultRecentRowTTL = 5 * time.Minute
)

// NewRecentRows returns a table of at most max rows (DefaultRecentRows when 0), each kept
// for at most ttl (DefaultRecentRowTTL when 0), on the clock now (time.Now when nil).
func NewRecentRows(max int, ttl time.Duration, now func() time.Time) *RecentRows {
	if max <= 0 {
		max = DefaultRecentRows
	}
	if ttl <= 0 {
		ttl = DefaultRecentRowTTL
	}
	if now == nil {
		now = time.Now
	}
	return &RecentRows{max: max, ttl: ttl, now: now, entries: map[rowKey]*list.Element{}}
}

// Stats says how many lookups found a row and how many did not.
func (r *RecentRows) Stats() (hits, misses int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits, r.misses
}

// Len is the number of rows remembered.
func (r *RecentRows) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

// lookup returns a copy of the remembered row of (orgID, id), if one is young enough.
func (r *RecentRows) lookup(orgID, id string) (*Credential, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[rowKey{orgID, id}]
	if !ok {
		r.misses++
		return nil, false
	}
	row := e.Value.(*recentRow)
	if !r.now().Before(row.until) {
		r.remove(e)
		r.misses++
		return nil, false
	}
	r.order.MoveToFront(e)
	r.hits++
	return cloneCredential(row.row), true
}

// remember keeps a copy of c as its row now is; a row whose ETag is not known (a write
// whose answer named none) is forgotten instead.
func (r *RecentRows) remember(c *Credential) {
	if c == nil {
		return
	}
	if c.ETag == "" {
		r.forget(c.OrgID, c.ID)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rowKey{c.OrgID, c.ID}
	entry := &recentRow{key: k, row: cloneCredential(c), until: r.now().Add(r.ttl)}
	if e, ok := r.entries[k]; ok {
		e.Value = entry
		r.order.MoveToFront(e)
		return
	}
	r.entries[k] = r.order.PushFront(entry)
	for r.order.Len() > r.max {
		r.remove(r.order.Back())
	}
}

// forget drops the row of (orgID, id).
func (r *RecentRows) forget(orgID, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[rowKey{orgID, id}]; ok {
		r.remove(e)
	}
}

func (r *RecentRows) remove(e *list.Element) {
	delete(r.entries, e.Value.(*recentRow).key)
	r.order.Remove(e)
}

// cloneCredential copies c deeply enough that neither copy's writes reach the other.
func cloneCredential(c *Credential) *Credential {
	out := *c
	out.Progress.Checks = slices.Clone(c.Progress.Checks)
	out.Health.Checks = slices.Clone(c.Health.Checks)
	return &out
}

// rememberingStore is a Store that keeps RecentRows up to date with every row it reads
// and writes, and forgets the rows a delete or an org-default change moved.
type rememberingStore struct {
	Store
	rows *RecentRows
}

// remembering wraps store with rows; store itself when rows is nil.
func remembering(store Store, rows *RecentRows) Store {
	if rows == nil {
		return store
	}
	return rememberingStore{Store: store, rows: rows}
}

func (s rememberingStore) Insert(ctx context.Context, c *Credential, ev EventRecord) error {
	err := s.Store.Insert(ctx, c, ev)
	if err == nil {
		s.rows.remember(c)
	}
	return err
}

func (s rememberingStore) Get(ctx context.Context, orgID, id string) (*Credential, error) {
	c, err := s.Store.Get(ctx, orgID, id)
	switch {
	case err == nil:
		s.rows.remember(c)
	case errors.Is(err, ErrNotFound):
		s.rows.forget(orgID, id)
	}
	return c, err
}

func (s rememberingStore) Update(ctx context.Context, c *Credential, ev *EventRecord) error {
	err := s.Store.Update(ctx, c, ev)
	if err == nil {
		s.rows.remember(c)
	} else {
		// Whatever the row is now, it is not what this process has: a conflict says so, and
		// a write whose answer was lost may have landed.
		s.rows.forget(c.OrgID, c.ID)
	}
	return err
}

func (s rememberingStore) Delete(ctx context.Context, c *Credential) error {
	s.rows.forget(c.OrgID, c.ID)
	return s.Store.Delete(ctx, c)
}

// The org-default changes write the rows they mark, which moves their ETags.

func (s rememberingStore) SetOrgDefault(ctx context.Context, c *Credential) error {
	s.rows.forget(c.OrgID, c.ID)
	return s.Store.SetOrgDefault(ctx, c)
}

func (s rememberingStore) ClearOrgDefault(ctx context.Context, orgID, id string) error {
	s.rows.forget(orgID, id)
	return s.Store.ClearOrgDefault(ctx, orgID, id)
}

// recent returns the credential's remembered row, or reads it when there is none; cached
// says which. The rules of RecentRows apply to a cached row.
func recent(ctx context.Context, store Store, rows *RecentRows, orgID, id string) (c *Credential, cached bool, err error) {
	if rows != nil {
		if c, ok := rows.lookup(orgID, id); ok {
			return c, true, nil
		}
	}
	c, err = store.Get(ctx, orgID, id)
	return c, false, err
}
