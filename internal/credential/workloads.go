package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// WorkloadIdentity is a customer's Azure managed identity registered with an
// organization: a workload that carries it may call the API for that organization with
// the identity's own Entra token instead of a platform user's token. The pair (TenantID,
// ClientID) is what the identity's tokens carry (tid and azp) and is unique within an
// organization; several organizations may register the same identity.
type WorkloadIdentity struct {
	OrgID       string
	ID          string
	DisplayName string
	// TenantID and ClientID are lower-case GUIDs, as Entra writes them into tokens.
	TenantID  string
	ClientID  string
	CreatedAt time.Time
	// ETag is the store's concurrency token of the registration as it was read.
	ETag string
}

// WorkloadIdentityCause is what happened to a registration.
type WorkloadIdentityCause string

// The two events of the registry.
const (
	WorkloadIdentityRegistered WorkloadIdentityCause = "registered"
	WorkloadIdentityRemoved    WorkloadIdentityCause = "removed"
)

// WorkloadIdentityEvent is one entry of an organization's append-only registry log: a
// registration or a removal, with who made it.
type WorkloadIdentityEvent struct {
	Time               time.Time
	Cause              WorkloadIdentityCause
	WorkloadIdentityID string
	DisplayName        string
	TenantID           string
	ClientID           string
	RequestID          string
	Actor              Actor
}

// WorkloadIdentityInput is the body of a registration.
type WorkloadIdentityInput struct {
	DisplayName string
	ClientID    string
	TenantID    string
}

// WorkloadIdentityConflict is what a store answers when the organization already has a
// registration of the pair: both stores word it the same.
func WorkloadIdentityConflict(tenantID, clientID string) *ConflictError {
	return &ConflictError{Message: fmt.Sprintf(
		"a workload identity with client id %s in tenant %s is already registered in this organization", clientID, tenantID)}
}

// WorkloadIdentities is an organization's registry of workload identities: it registers
// and removes them, lists them and their events, and admits a workload identity's token to
// an organization (Lookup).
//
// Lookup answers from a per-instance cache, keyed by organization, tenant and client id,
// so a busy workload's calls cost no storage round trip. A registration or removal on this
// instance replaces its entry at once; on another instance an entry lives at most the
// cache TTL (Config.WorkloadIdentityCacheTTL), which is therefore how long a removed
// identity may still be admitted there. A "not registered" answer is kept at most
// MaxNegativeLookupTTL (never longer than the TTL), so a new registration is seen
// everywhere within that.
type WorkloadIdentities struct {
	store    WorkloadIdentityStore
	apiAppID string
	cache    *lookupCache
	log      *slog.Logger
	now      func() time.Time
	newID    func() string
}

// MaxNegativeLookupTTL bounds how long an instance keeps a "not registered" answer.
const MaxNegativeLookupTTL = 10 * time.Second

// NewWorkloadIdentities returns the registry on its store. cfg.APIAppID may be empty
// (workload identities off): the registry still works, and InstallCommand is empty.
func NewWorkloadIdentities(cfg Config, store WorkloadIdentityStore, log *slog.Logger, opts ...Option) (*WorkloadIdentities, error) {
	if err := required("workload identities", map[string]any{"store": store, "log": log}); err != nil {
		return nil, err
	}
	if cfg.WorkloadIdentityCacheTTL < 0 {
		return nil, fmt.Errorf("workload identities: negative cache TTL %v", cfg.WorkloadIdentityCacheTTL)
	}
	o := newOptions(opts)
	return &WorkloadIdentities{store: store, apiAppID: strings.ToLower(cfg.APIAppID),
		cache: newLookupCache(cfg.WorkloadIdentityCacheTTL), log: log, now: o.now, newID: o.newID}, nil
}

// InstallCommand is the one step a customer takes in their tenant before any of its
// managed identities can get a token for the API: installing the API's service principal
// there. Empty when workload identities are off.
func (w *WorkloadIdentities) InstallCommand() string {
	if w.apiAppID == "" {
		return ""
	}
	return "az ad sp create --id " + w.apiAppID
}

// Register adds a workload identity to the organization and records the registration.
// Only a platform user may: a workload identity registering another gets a
// *ForbiddenError.
func (w *WorkloadIdentities) Register(ctx context.Context, orgID string, in WorkloadIdentityInput, requestID string) (*WorkloadIdentity, error) {
	if err := userOnly(ctx, "register"); err != nil {
		return nil, err
	}
	if err := validateName("display_name", in.DisplayName); err != nil {
		return nil, err
	}
	if err := ValidateUUID("client_id", in.ClientID); err != nil {
		return nil, err
	}
	if err := ValidateUUID("tenant_id", in.TenantID); err != nil {
		return nil, err
	}
	now := w.now().UTC()
	wi := &WorkloadIdentity{OrgID: orgID, ID: w.newID(), DisplayName: in.DisplayName,
		TenantID: strings.ToLower(in.TenantID), ClientID: strings.ToLower(in.ClientID), CreatedAt: now}
	ev := wi.event(WorkloadIdentityRegistered, now, requestID, ActorOf(ctx))
	err := w.store.InsertWorkloadIdentity(ctx, wi, ev)
	// Even a failed insert may have landed (its answer lost): the entry goes either way.
	w.cache.forget(orgID, wi.TenantID, wi.ClientID)
	if err != nil {
		return nil, fmt.Errorf("register workload identity %s: %w", wi.ClientID, err)
	}
	w.log.InfoContext(ctx, "workload identity registered", "org", orgID, "workload_identity", wi.ID,
		"tenant_id", wi.TenantID, "client_id", wi.ClientID, "actor", ActorOf(ctx), "request_id", requestID)
	return wi, nil
}

// Remove deletes a registration and records the removal; from then on the identity is
// refused at once on this instance and within the cache TTL on others. Only a platform
// user may. A registration already removed (or another organization's) is ErrNotFound.
func (w *WorkloadIdentities) Remove(ctx context.Context, orgID, id, requestID string) error {
	if err := userOnly(ctx, "remove"); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		wi, err := w.store.GetWorkloadIdentity(ctx, orgID, id)
		if err != nil {
			return err
		}
		ev := wi.event(WorkloadIdentityRemoved, w.now().UTC(), requestID, ActorOf(ctx))
		err = w.store.DeleteWorkloadIdentity(ctx, wi, ev)
		w.cache.forget(orgID, wi.TenantID, wi.ClientID)
		switch {
		case err == nil:
			w.log.InfoContext(ctx, "workload identity removed", "org", orgID, "workload_identity", wi.ID,
				"tenant_id", wi.TenantID, "client_id", wi.ClientID, "actor", ActorOf(ctx), "request_id", requestID)
			return nil
		case errors.Is(err, ErrConflict) && attempt < maxDeleteAttempts:
			continue // changed since the read: read it again (it is most likely gone)
		}
		return fmt.Errorf("remove workload identity %s: %w", id, err)
	}
}

// userOnly refuses a workload identity's request to change the registry: only a platform
// user may register or remove workload identities.
func userOnly(ctx context.Context, action string) error {
	if ActorOf(ctx).Kind == ActorWorkloadIdentity {
		return &ForbiddenError{Message: fmt.Sprintf("a workload identity cannot %s workload identities: "+
			"registering or removing them needs a platform user's token", action)}
	}
	return nil
}

func (wi *WorkloadIdentity) event(cause WorkloadIdentityCause, at time.Time, requestID string, by Actor) WorkloadIdentityEvent {
	return WorkloadIdentityEvent{Time: at, Cause: cause, WorkloadIdentityID: wi.ID, DisplayName: wi.DisplayName,
		TenantID: wi.TenantID, ClientID: wi.ClientID, RequestID: requestID, Actor: by}
}

// List reads the organization's workload identities, oldest first.
func (w *WorkloadIdentities) List(ctx context.Context, orgID string) ([]*WorkloadIdentity, error) {
	return w.store.ListWorkloadIdentities(ctx, orgID)
}

// Events reads the organization's registry log, oldest first.
func (w *WorkloadIdentities) Events(ctx context.Context, orgID string) ([]WorkloadIdentityEvent, error) {
	return w.store.WorkloadIdentityEvents(ctx, orgID)
}

// Lookup is the registry's half of admitting a workload identity's token: the
// registration of (tenantID, clientID) in orgID, or ErrNotFound when the organization has
// not registered that identity. Both answers are cached (see WorkloadIdentities); a
// storage failure is not.
func (w *WorkloadIdentities) Lookup(ctx context.Context, orgID, tenantID, clientID string) (*WorkloadIdentity, error) {
	key := lookupKey{org: orgID, tenant: strings.ToLower(tenantID), client: strings.ToLower(clientID)}
	now := w.now()
	if wi, found, ok := w.cache.get(key, now); ok {
		if !found {
			return nil, errNotRegistered(key)
		}
		out := wi
		return &out, nil
	}
	epoch := w.cache.epoch()
	wi, err := w.store.FindWorkloadIdentity(ctx, orgID, key.tenant, key.client)
	switch {
	case errors.Is(err, ErrNotFound):
		w.cache.put(key, nil, now, epoch)
		return nil, errNotRegistered(key)
	case err != nil:
		return nil, fmt.Errorf("look up workload identity %s: %w", key.client, err)
	}
	w.cache.put(key, wi, now, epoch)
	return wi, nil
}

func errNotRegistered(k lookupKey) error {
	return &NotFoundError{What: "workload identity", ID: "client id " + k.client + " in tenant " + k.tenant}
}

// lookupCache keeps Lookup's answers, found or not, per organization, tenant and client
// id, bounded in size.
type lookupCache struct {
	ttl, negativeTTL time.Duration
	max              int

	mu      sync.Mutex
	entries map[lookupKey]lookupEntry
	// forgets counts the calls of forget: an answer read before one is not kept, since it
	// may be the very registration this instance just removed.
	forgets uint64
}

type lookupKey struct{ org, tenant, client string }

type lookupEntry struct {
	wi      WorkloadIdentity
	found   bool
	expires time.Time
}

// maxCachedLookups bounds the cache; past it, new answers are not kept.
const maxCachedLookups = 100_000

func newLookupCache(ttl time.Duration) *lookupCache {
	return &lookupCache{ttl: ttl, negativeTTL: min(ttl, MaxNegativeLookupTTL), max: maxCachedLookups,
		entries: map[lookupKey]lookupEntry{}}
}

// get returns the cached answer for k: the registration and whether there is one; ok is
// false when nothing (alive) is cached.
func (c *lookupCache) get(k lookupKey, now time.Time) (wi WorkloadIdentity, found, ok bool) {
	if c.ttl <= 0 {
		return WorkloadIdentity{}, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return WorkloadIdentity{}, false, false
	}
	return e.wi, e.found, true
}

// epoch is taken before a store read whose answer goes to put.
func (c *lookupCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgets
}

// put keeps the answer for k, wi or "not registered" when wi is nil, read at epoch: an
// answer read before a forget since is dropped.
func (c *lookupCache) put(k lookupKey, wi *WorkloadIdentity, now time.Time, epoch uint64) {
	if c.ttl <= 0 {
		return
	}
	e := lookupEntry{expires: now.Add(c.negativeTTL)}
	if wi != nil {
		e = lookupEntry{wi: *wi, found: true, expires: now.Add(c.ttl)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != epoch {
		return
	}
	if _, held := c.entries[k]; !held && len(c.entries) >= c.max {
		for old, oe := range c.entries { // drop what has expired; if nothing has, keep none new
			if !now.Before(oe.expires) {
				delete(c.entries, old)
			}
		}
		if len(c.entries) >= c.max {
			return
		}
	}
	c.entries[k] = e
}

// forget drops the answer for one identity of one organization.
func (c *lookupCache) forget(org, tenant, client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	delete(c.entries, lookupKey{org: org, tenant: tenant, client: client})
}
