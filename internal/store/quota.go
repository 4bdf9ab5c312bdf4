package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Limits caps what one organization may hold. A zero field is no cap (the rows are
// counted all the same).
type Limits struct {
	Credentials        int
	Workspaces         int
	WorkloadIdentities int
}

// Option configures a Store.
type Option func(*Store)

// WithLimits caps every organization's credentials, workspaces and workload identities.
func WithLimits(l Limits) Option { return func(s *Store) { s.limits = l } }

const counterPrefix = "q:"

// counter is one of an organization's counter rows: its row key, the row keys it counts,
// and the quota a full one refuses.
type counter struct {
	key    string
	counts string
	quota  credential.Quota
}

var (
	credentialCounter = counter{key: counterPrefix + "credentials", counts: credentialPrefix, quota: credential.QuotaCredentials}
	workspaceCounter  = counter{key: counterPrefix + "workspaces", counts: workspacePrefix, quota: credential.QuotaWorkspaces}
	workloadCounter   = counter{key: counterPrefix + "workload-identities", counts: workloadPrefix, quota: credential.QuotaWorkloadIdentities}
)

func (c counter) limit(l Limits) int {
	switch c {
	case workspaceCounter:
		return l.Workspaces
	case workloadCounter:
		return l.WorkloadIdentities
	}
	return l.Credentials
}

// counterEntity is the stored shape of a counter row. Seq counts the counter's moves (absent
// before it was recorded): a move's Seq is unique and ordered, since every move is
// conditional on the ETag, so a log written in the same transaction is keyed by it (the
// registry log of workload identities).
type counterEntity struct {
	PartitionKey string
	RowKey       string
	Count        int
	Seq          int64 `json:",omitempty"`
}

// tally is a counter row as read: its count, its sequence and its ETag.
type tally struct {
	orgID string
	c     counter
	count int
	seq   int64
	etag  string
}

// action is the transaction action that moves the counter by delta (+1 for an insert of a
// counted row, -1 for a delete), conditional on the ETag it was read with: a transaction
// that carries it fails when any other write of a counted row landed since the read, so
// two racing creates cannot both take the last place.
func (t tally) action(delta int) (aztables.TransactionAction, error) {
	ent := counterEntity{PartitionKey: t.orgID, RowKey: t.c.key, Count: max(0, t.count+delta), Seq: t.next()}
	return action(aztables.TransactionTypeUpdateReplace, ent, t.etag)
}

// next is the Seq of the counter's next move.
func (t tally) next() int64 { return t.seq + 1 }

// full reports whether another counted row would go beyond limit (0: no limit).
func (t tally) full(limit int) bool { return limit > 0 && t.count >= limit }

// readCounter reads an organization's counter row. An organization whose rows were written
// before counters existed has none: it is initialised from one count of the rows it
// counts, inserted (not replaced) so that of two racing initialisations one wins and the
// other reads the winner's. Every write of a counted row carries the counter's action, so
// no counted row can come or go between the count and the insert without failing it.
func (s *Store) readCounter(ctx context.Context, orgID string, c counter) (tally, error) {
	for range 2 {
		resp, err := s.table.GetEntity(ctx, orgID, c.key, nil)
		if err == nil {
			var ent counterEntity
			if err := json.Unmarshal(resp.Value, &ent); err != nil {
				return tally{}, fmt.Errorf("decode counter %s of %s: %w", c.key, orgID, err)
			}
			return tally{orgID: orgID, c: c, count: ent.Count, seq: ent.Seq, etag: string(resp.ETag)}, nil
		}
		if err := translate(err, "read counter "+c.key); !errors.Is(err, credential.ErrNotFound) {
			return tally{}, err
		}
		n, err := s.countRows(ctx, orgID, c.counts)
		if err != nil {
			return tally{}, err
		}
		b, err := json.Marshal(counterEntity{PartitionKey: orgID, RowKey: c.key, Count: n})
		if err != nil {
			return tally{}, err
		}
		added, err := s.table.AddEntity(ctx, b, nil)
		if err == nil {
			return tally{orgID: orgID, c: c, count: n, etag: string(added.ETag)}, nil
		}
		// Another request initialised it first (or this one did, and the SDK's retry of a
		// lost answer met it): read it.
		if err := translate(err, "initialise counter "+c.key); !errors.Is(err, errAlreadyExists) {
			return tally{}, err
		}
	}
	return tally{}, fmt.Errorf("counter %s of %s: %w", c.key, orgID, &credential.ConflictError{
		Message: "the organization's counters changed under concurrent requests; retry"})
}

// countRows counts an organization's rows whose keys start with prefix, tombstones aside.
func (s *Store) countRows(ctx context.Context, orgID, prefix string) (int, error) {
	// A deleted credential's row is its tombstone (DeletedAt set), which holds no place.
	filter, sel := rangeFilter(orgID, prefix), "RowKey,DeletedAt"
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	n := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, translate(err, "count "+prefix+" rows of "+orgID)
		}
		for _, raw := range page.Entities {
			var row struct{ DeletedAt string }
			if err := json.Unmarshal(raw, &row); err != nil {
				return 0, fmt.Errorf("count %s rows of %s: %w", prefix, orgID, err)
			}
			if row.DeletedAt == "" {
				n++
			}
		}
	}
	return n, nil
}

// release is the action a delete of one counted row adds to its transaction: it frees
// the row's place under the organization's limit.
func (s *Store) release(ctx context.Context, orgID string, c counter) (aztables.TransactionAction, error) {
	s.gate.forget(orgID + "/" + c.key)
	t, err := s.readCounter(ctx, orgID, c)
	if err != nil {
		return aztables.TransactionAction{}, err
	}
	return t.action(-1)
}

// countedInsert writes a new counted row: write submits the insert's transaction with
// take, the counter's move, first among its actions (seq is the move's Seq), and returns
// the rows' ETags from the transaction's answer when it has them (nil otherwise). The
// counter as this insert left it is remembered (its count, Seq and ETag), so the next
// insert under it on this instance, which waits at the gate, needs no read of it: when
// another instance or a delete moved it meanwhile, the transaction fails on its ETag and
// the insert reads it and tries again, as it does after any conflict. At the limit it writes nothing and returns
// a *QuotaError, or errAlreadyExists when exists (if given) finds the row: an existing row
// is never refused as over the limit. landed recognises a row that an attempt whose answer
// was lost wrote (and counted, once); errAlreadyExists is left to the caller to name. A
// conflict of write, when the counter moved meanwhile, is another instance's write of a
// counted row: it reads the counter again and tries again.
func (s *Store) countedInsert(ctx context.Context, orgID string, c counter, write func(take aztables.TransactionAction, seq int64) ([]string, error),
	landed, exists func() bool) error {
	key := orgID + "/" + c.key
	leave, err := s.gate.enter(ctx, key)
	if err != nil {
		return err
	}
	defer leave()
	for attempt := 1; ; attempt++ {
		count, known := s.gate.counter(key)
		if !known || attempt > 1 {
			if count, err = s.readCounter(ctx, orgID, c); err != nil {
				return err
			}
		}
		if known && attempt == 1 && count.full(c.limit(s.limits)) {
			// At the limit as remembered: read it, a delete may have freed a place.
			if count, err = s.readCounter(ctx, orgID, c); err != nil {
				return err
			}
		}
		if limit := c.limit(s.limits); count.full(limit) {
			if exists != nil && exists() {
				return errAlreadyExists
			}
			return &credential.QuotaError{Quota: c.quota, Limit: limit}
		}
		take, err := count.action(+1)
		if err != nil {
			return err
		}
		etags, err := write(take, count.next())
		if err == nil {
			if len(etags) > 0 && etags[0] != "" {
				s.gate.remember(key, tally{orgID: orgID, c: c, count: count.count + 1, seq: count.next(), etag: etags[0]})
			} else {
				s.gate.forget(key)
			}
			return nil
		}
		s.gate.forget(key)
		if !errors.Is(err, credential.ErrConflict) && !errors.Is(err, errAlreadyExists) {
			return err
		}
		if landed() {
			return nil
		}
		if errors.Is(err, errAlreadyExists) {
			return err
		}
		if now, rerr := s.readCounter(ctx, orgID, c); rerr != nil || now.etag == count.etag {
			return err // a conflict of the other conditions of the write
		}
		if attempt == counterAttempts {
			return fmt.Errorf("%s of %s: %w", c.key, orgID, errCounterBusy)
		}
	}
}

// counterAttempts bounds how often an insert reads its counter again after another
// instance's write moved it (inserts of one instance queue at its gate instead).
const counterAttempts = 50

// errCounterBusy ends an insert that lost the race for its counter counterAttempts times.
var errCounterBusy = &credential.ConflictError{Message: "too many concurrent changes to the organization; retry"}

// gate serialises this process's inserts under one counter: they would only race each
// other for its ETag, one winning per round and the rest reading again. Other instances
// still race; the conditional write keeps that correct.
type gate struct {
	mu       sync.Mutex
	slots    map[string]*slot
	counters map[string]tally // each counter as this instance's last insert left it
}

// maxRememberedCounters bounds the counters a gate remembers.
const maxRememberedCounters = 10000

// counter is the counter under key as this instance's last insert under it left it.
func (g *gate) counter(key string) (tally, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.counters[key]
	return t, ok
}

// remember keeps t as the counter under key; forget drops it (a delete moved it, or an
// insert's answer did not say where it is).
func (g *gate) remember(key string, t tally) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.counters == nil || len(g.counters) >= maxRememberedCounters {
		g.counters = map[string]tally{} // a bound, not a policy: the next insert of each reads it
	}
	g.counters[key] = t
}

func (g *gate) forget(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.counters, key)
}

type slot struct {
	held  chan struct{} // holds one token while someone is inside
	users int           // inside or waiting
}

// enter waits for key's turn; call the returned function to leave.
func (g *gate) enter(ctx context.Context, key string) (leave func(), err error) {
	g.mu.Lock()
	if g.slots == nil {
		g.slots = map[string]*slot{}
	}
	sl := g.slots[key]
	if sl == nil {
		sl = &slot{held: make(chan struct{}, 1)}
		g.slots[key] = sl
	}
	sl.users++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		if sl.users--; sl.users == 0 {
			delete(g.slots, key)
		}
		g.mu.Unlock()
	}
	select {
	case sl.held <- struct{}{}:
		return func() { <-sl.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
