package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

// leasePartition holds named leases, one row each: who holds it, and until when.
const leasePartition = "~leases"

type leaseEntity struct {
	PartitionKey string
	RowKey       string
	Holder       string
	Until        string
}

// TryLease takes the lease name for holder until now+ttl when nobody holds it, when its
// holder's time ran out, or when holder holds it already (a renewal); it reports whether
// holder has it. The write is conditional on the row as read (or an insert when there is
// none), so of instances trying at once one wins. Instances standalone use it to run a
// timer's work once per period, as the Functions host runs a timer function on one
// instance.
func (s *Store) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	b, err := json.Marshal(leaseEntity{PartitionKey: leasePartition, RowKey: name, Holder: holder, Until: formatTime(now.Add(ttl))})
	if err != nil {
		return false, err
	}
	resp, err := s.table.GetEntity(ctx, leasePartition, name, nil)
	if err = translate(err, "read lease "+name); errors.Is(err, credential.ErrNotFound) {
		_, err := s.table.AddEntity(ctx, b, nil)
		return s.leaseWon(translate(err, "take lease "+name))
	}
	if err != nil {
		return false, err
	}
	var cur leaseEntity
	if err := json.Unmarshal(resp.Value, &cur); err != nil {
		return false, err
	}
	until, err := parseTime(cur.Until)
	if err != nil {
		return false, err
	}
	if cur.Holder != holder && now.Before(until) {
		return false, nil
	}
	etag := resp.ETag
	_, err = s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	return s.leaseWon(translate(err, "take lease "+name))
}

// leaseWon reads the outcome of a conditional lease write: another writer first is no error.
func (s *Store) leaseWon(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, credential.ErrConflict), errors.Is(err, errAlreadyExists):
		return false, nil
	}
	return false, err
}
