package blob

// This file is SAS issuance (docs/CONTRACT.md, "SAS issuance"): user delegation SAS tokens for one
// container, signed with a user delegation key obtained as the credential's service
// principal (or as the platform's managed identity for the environment default), and the
// cache that makes a SAS one HMAC instead of a round trip to Storage. No account key is
// involved anywhere: Get User Delegation Key takes a bearer token.
//
// See https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas and
// https://learn.microsoft.com/rest/api/storageservices/get-user-delegation-key.

import (
	lrulist "container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"golang.org/x/sync/singleflight"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/credential"
)

// Defaults and limits of SignerOptions.
const (
	// DefaultKeyLifetime is how long a fetched user delegation key is valid. A key is
	// reused for about this long less one SAS lifetime.
	DefaultKeyLifetime = 24 * time.Hour
	// MaxKeyLifetime is Azure's limit: a user delegation key expires at most seven days
	// after it is requested.
	MaxKeyLifetime = 7 * 24 * time.Hour
	// DefaultMaxKeys bounds the key cache: one entry per (account, identity) pair, a few
	// hundred bytes each. The least recently used entry goes first.
	DefaultMaxKeys = 4096
	// KeyReuseMargin is how much longer than a SAS its key must live to sign it: a cached
	// key signs a SAS only while keyExpiry >= sasExpiry + KeyReuseMargin, so a SAS never
	// outlives its key, even with some clock skew between us and Storage.
	KeyReuseMargin = 5 * time.Minute
	// keyBackdate starts a new key in the past, for clocks that run behind ours; it
	// matches the SAS's own backdating.
	keyBackdate = credential.SASClockSkew
	// fetchTimeout bounds one Get User Delegation Key, retries and token included. The
	// fetch runs on behalf of every request waiting for it, so it does not end with the
	// first one's context.
	fetchTimeout = 15 * time.Second
)

// CodeAccountNotFound is the ProviderError.Code of a storage account whose blob endpoint
// does not resolve, which is how Azure answers for an account name nobody owns. Storage
// itself never answers with this code (nothing answers at all); the name matches the
// probe's outcome storage_account_not_found.
const CodeAccountNotFound = "StorageAccountNotFound"

// sasPermissions are the permissions of every container SAS: read, add, create, write,
// delete, list ("racwdl").
var sasPermissions = (&sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}).String()

// SignerOptions configure a Signer. The zero value signs for Azure's public cloud with
// cached 24-hour keys.
type SignerOptions struct {
	// EndpointTemplate is the account's blob endpoint with %s for the account name, as in
	// Options; DefaultEndpointTemplate when empty. The account must be the first label of
	// the host (see ValidateSignerEndpointTemplate).
	EndpointTemplate string
	// Transport sends the requests; azcore's default when nil.
	Transport policy.Transporter
	// Now is the clock for key validity and reuse; time.Now when nil.
	Now func() time.Time
	// KeyLifetime is how long a fetched user delegation key is valid; DefaultKeyLifetime
	// when zero, at most MaxKeyLifetime, and longer than one SAS lifetime plus
	// KeyReuseMargin (or the key would sign no second SAS).
	KeyLifetime time.Duration
	// NoCache fetches a new key for every SAS, for benchmarks and diagnosis. The zero
	// value caches.
	NoCache bool
	// MaxKeys bounds the key cache; DefaultMaxKeys when zero.
	MaxKeys int
}

// Signer issues user delegation SAS tokens for one container, signed with a cached user
// delegation key of the credential's service principal (through a CredentialSource) or of
// the platform's own identity. Only HTTPS is allowed by the tokens (spr=https). It is safe
// for concurrent use.
type Signer struct {
	creds    CredentialSource
	platform azcore.TokenCredential
	template string
	client   service.ClientOptions
	now      func() time.Time
	lifetime time.Duration
	noCache  bool

	flights singleflight.Group
	cache   *keyCache
}

var _ credential.Signer = (*Signer)(nil)

// NewSigner validates opts and returns a Signer. creds gives a customer service
// principal's credential per (tenant, app); platform is the backend's managed identity,
// which signs for the environment default (nil: the environment default cannot be
// signed).
func NewSigner(creds CredentialSource, platform azcore.TokenCredential, opts SignerOptions) (*Signer, error) {
	if creds == nil {
		return nil, errors.New("blob signer: no credential source")
	}
	s := &Signer{creds: creds, platform: platform, template: opts.EndpointTemplate, now: opts.Now,
		lifetime: opts.KeyLifetime, noCache: opts.NoCache}
	if s.template == "" {
		s.template = DefaultEndpointTemplate
	}
	if err := ValidateSignerEndpointTemplate(s.template); err != nil {
		return nil, fmt.Errorf("blob signer: %w", err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime == 0 {
		s.lifetime = DefaultKeyLifetime
	}
	if floor := credential.SASLifetime + KeyReuseMargin; s.lifetime <= floor || s.lifetime > MaxKeyLifetime {
		return nil, fmt.Errorf("blob signer: key lifetime %s: want more than %s and at most %s", s.lifetime, floor, MaxKeyLifetime)
	}
	maxKeys := opts.MaxKeys
	if maxKeys < 0 {
		return nil, fmt.Errorf("blob signer: MaxKeys %d is negative", maxKeys)
	}
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	s.cache = newKeyCache(maxKeys)
	// A request for a SAS is waiting: ride out a blip, then say Storage is unavailable and
	// let the caller come back.
	s.client = clientOptions(opts.Transport, 5*time.Second)
	return s, nil
}

// ValidateSignerEndpointTemplate checks template as ValidateEndpointTemplate does and,
// further, that the account name is the whole first label of the host, as in
// https://%s.blob.core.windows.net/. azblob's GetUserDelegationCredential takes the
// account name it signs with from the first label of the host: with a path-style endpoint
// (https://127.0.0.1:10000/%s) it would sign as account "127" and every SAS would be
// refused.
func ValidateSignerEndpointTemplate(template string) error {
	if err := ValidateEndpointTemplate(template); err != nil {
		return err
	}
	const probe = "accountname0"
	u, err := url.Parse(fmt.Sprintf(template, probe))
	if err != nil {
		return fmt.Errorf("blob endpoint template %q: %w", template, err)
	}
	if first, _, _ := strings.Cut(u.Host, "."); first != probe || strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("blob endpoint template %q: the account name must be the first label of the host, "+
			"as in %s (a user delegation SAS is signed with the account name taken from there)", template, DefaultEndpointTemplate)
	}
	return nil
}

// AccountURL is the account's blob endpoint without the trailing slash.
func (s *Signer) AccountURL(account string) string {
	return strings.TrimRight(fmt.Sprintf(s.template, account), "/")
}

// ContainerSAS signs a user delegation SAS for r.Container with read, add, create, write,
// delete and list, valid from r.Start to r.Expiry over HTTPS only. The key comes from the
// cache when one for (r.Account, r.Identity) outlives the SAS by KeyReuseMargin; otherwise
// it is fetched, once for every request waiting for it.
//
// Errors wrap a *credential.ProviderError where the provider said something: the storage
// error code, status and x-ms-request-id (Kind credential.ErrUnavailable for 408, 429,
// 5xx and timeouts); Code CodeAccountNotFound when the account's name does not resolve; or
// Entra's code when the token was refused (the cause stays wrapped).
func (s *Signer) ContainerSAS(ctx context.Context, r credential.SASRequest) (credential.SAS, error) {
	now := s.now()
	id, err := s.validate(r, now)
	if err != nil {
		return credential.SAS{}, err
	}
	key, err := s.key(ctx, id, r, now)
	if err != nil {
		return credential.SAS{}, fmt.Errorf("user delegation key for %s as %s: %w", r.Account, id.who(), err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPS,
		StartTime:     r.Start,
		ExpiryTime:    r.Expiry,
		Permissions:   sasPermissions,
		ContainerName: r.Container,
	}.SignWithUserDelegation(key.cred)
	if err != nil {
		return credential.SAS{}, fmt.Errorf("sign SAS for %s/%s: %w", r.Account, r.Container, err)
	}
	return credential.SAS{AccountURL: s.AccountURL(r.Account), Token: credential.Secret(qp.Encode())}, nil
}

// Invalidate drops the cached key of (account, id), and the next fetch for it asks the
// CredentialSource for a fresh credential. For when a SAS signed with it was refused.
func (s *Signer) Invalidate(account string, id credential.SignerIdentity) {
	s.cache.drop(cacheKeyOf(account, id))
}

// validate checks a request and returns its cache key.
func (s *Signer) validate(r credential.SASRequest, now time.Time) (cacheKey, error) {
	if err := credential.ValidateStorageAccount("account", r.Account); err != nil {
		return cacheKey{}, fmt.Errorf("sign SAS: %w", err)
	}
	if err := credential.ValidateContainer("container", r.Container); err != nil {
		return cacheKey{}, fmt.Errorf("sign SAS: %w", err)
	}
	id := r.Identity
	switch {
	case id.Platform && (id.TenantID != "" || id.AppID != ""):
		return cacheKey{}, errors.New("sign SAS: the platform identity has no tenant or app id")
	case id.Platform && s.platform == nil:
		return cacheKey{}, errors.New("sign SAS: no platform identity is configured")
	case !id.Platform && (id.TenantID == "" || id.AppID == ""):
		return cacheKey{}, fmt.Errorf("sign SAS: tenant id %q and app id %q are both required", id.TenantID, id.AppID)
	}
	switch {
	case !r.Expiry.After(now):
		return cacheKey{}, fmt.Errorf("sign SAS: expiry %s is not after now (%s)", r.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case !r.Start.IsZero() && !r.Start.Before(r.Expiry):
		return cacheKey{}, errors.New("sign SAS: start is not before expiry")
	case r.Expiry.Add(KeyReuseMargin).After(now.Add(MaxKeyLifetime)):
		return cacheKey{}, fmt.Errorf("sign SAS: expiry %s is beyond what a user delegation key can cover (%s from now)", r.Expiry.UTC().Format(time.RFC3339), MaxKeyLifetime-KeyReuseMargin)
	}
	return cacheKeyOf(r.Account, id), nil
}

// key returns a user delegation key that covers r: a cached one, or one fetched once for
// every request waiting for it. A waiter whose context ends stops waiting; the fetch goes
// on for the others and for the cache.
func (s *Signer) key(ctx context.Context, id cacheKey, r credential.SASRequest, now time.Time) (*delegationKey, error) {
	if s.noCache {
		_, gen, fresh := s.cache.lookup(id, r)
		k, err := s.fetch(ctx, id, r, now, fresh)
		s.cache.settle(id, gen, k, err, false)
		return k, err
	}
	// A shared fetch was started for another request's expiry; one that does not cover
	// this request's is followed by a fetch of its own (at most once more).
	for range 2 {
		k, gen, fresh := s.cache.lookup(id, r)
		if k != nil {
			return k, nil
		}
		ch := s.flights.DoChan(id.String()+"#"+strconv.FormatUint(gen, 10), func() (any, error) {
			k, err := s.fetch(context.WithoutCancel(ctx), id, r, now, fresh)
			s.cache.settle(id, gen, k, err, true)
			return k, err
		})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case res := <-ch:
			if res.Err != nil {
				return nil, res.Err
			}
			if k := res.Val.(*delegationKey); k.covers(r) {
				return k, nil
			}
		}
	}
	return nil, errors.New("no user delegation key covers the SAS's validity")
}

// fetch gets a new user delegation key, valid from a little before r.Start (or now) to
// KeyLifetime from now, and at least KeyReuseMargin past r.Expiry. fresh asks the
// CredentialSource for a credential whose token is not from a cache.
func (s *Signer) fetch(ctx context.Context, id cacheKey, r credential.SASRequest, now time.Time, fresh bool) (*delegationKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	cred := s.platform
	if !id.platform {
		var err error
		if cred, err = s.creds.For(id.tenantID, id.appID, fresh); err != nil {
			return nil, classify(ctx, fmt.Errorf("storage credential: %w", err))
		}
	}
	client, err := service.NewClient(s.AccountURL(id.account)+"/", cred, &s.client)
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	// Whole seconds, as they are sent: the key is valid exactly as long as recorded.
	start := now.Add(-keyBackdate)
	if !r.Start.IsZero() && r.Start.Before(start) {
		start = r.Start
	}
	start = start.UTC().Truncate(time.Second)
	need := r.Expiry.Add(KeyReuseMargin)
	expiry := now.Add(s.lifetime)
	if need.After(expiry) {
		expiry = need
	}
	if expiry = expiry.UTC().Truncate(time.Second); expiry.Before(need) {
		expiry = expiry.Add(time.Second)
	}
	st, ex := start.Format(sas.TimeFormat), expiry.Format(sas.TimeFormat)
	udc, err := client.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &st, Expiry: &ex}, nil)
	if err != nil {
		return nil, classify(ctx, err)
	}
	return &delegationKey{cred: udc, start: start, expiry: expiry}, nil
}

// classify turns a failed fetch into the domain's *credential.ProviderError where the
// provider said something, keeping err wrapped.
func classify(ctx context.Context, err error) error {
	var re *azcore.ResponseError
	var pe *credential.ProviderError
	switch {
	case errors.As(err, &re):
		pe := &credential.ProviderError{Code: re.ErrorCode, Status: re.StatusCode, Err: err}
		if re.RawResponse != nil {
			pe.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
		}
		if transientStatus(re.StatusCode) {
			pe.Kind = credential.ErrUnavailable
		}
		return pe
	case isAccountNotFound(err):
		return &credential.ProviderError{Code: CodeAccountNotFound, Err: err}
	case errors.As(err, &pe):
		return err // the credential source's own classification
	}
	if pe, ok := identity.ProviderError(err); ok {
		return pe // Entra refused the storage token
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isNetworkFailure(err) {
		return &credential.ProviderError{Kind: credential.ErrUnavailable, Err: err}
	}
	return err
}

// transientStatus: worth asking again later.
func transientStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// isNetworkFailure: a timeout or a connection that failed (a name that does not resolve
// is not one: see isAccountNotFound).
func isNetworkFailure(err error) bool {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && !isAccountNotFound(err)
}

// isRefusal reports whether Storage refused the token itself (401) or its principal (403):
// a fresh token may tell otherwise once a role has propagated.
func isRefusal(err error) bool {
	var pe *credential.ProviderError
	return errors.As(err, &pe) && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden)
}

// cacheKey is one (account, identity) pair: keys are per account and per principal.
type cacheKey struct {
	account         string
	tenantID, appID string
	platform        bool
}

func cacheKeyOf(account string, id credential.SignerIdentity) cacheKey {
	return cacheKey{account: strings.ToLower(account), tenantID: strings.ToLower(id.TenantID),
		appID: strings.ToLower(id.AppID), platform: id.Platform}
}

func (k cacheKey) String() string {
	if k.platform {
		return k.account + "|platform"
	}
	return k.account + "|" + k.tenantID + "|" + k.appID
}

// who names the identity in error messages.
func (k cacheKey) who() string {
	if k.platform {
		return "the platform identity"
	}
	return "app " + k.appID + " in tenant " + k.tenantID
}

// delegationKey is a user delegation key and its validity, in whole seconds.
type delegationKey struct {
	cred          *service.UserDelegationCredential
	start, expiry time.Time
}

// covers reports whether the key may sign r: it is valid from r's start and lives
// KeyReuseMargin longer than r.
func (k *delegationKey) covers(r credential.SASRequest) bool {
	if !r.Start.IsZero() && r.Start.Before(k.start) {
		return false
	}
	return !k.expiry.Before(r.Expiry.Add(KeyReuseMargin))
}

// String keeps the key out of any output.
func (k *delegationKey) String() string { return "REDACTED" }

// keyCache holds one entry per (account, identity), least recently used out.
type keyCache struct {
	max int

	mu      sync.Mutex
	lru     *lrulist.List // of *cacheEntry, most recently used first
	entries map[cacheKey]*lrulist.Element
}

type cacheEntry struct {
	id  cacheKey
	key *delegationKey // nil: none to reuse
	// fresh: the next fetch asks for a fresh credential (after a 401 or 403, or
	// Invalidate); cleared by a fetch that succeeds.
	fresh bool
	// gen counts the drops: a fetch started before a drop does not store its key.
	gen uint64
}

func newKeyCache(capacity int) *keyCache {
	return &keyCache{max: capacity, lru: lrulist.New(), entries: map[cacheKey]*lrulist.Element{}}
}

// lookup returns the cached key of id when it covers r, else nil with the entry's
// generation and whether the next fetch must be fresh.
func (c *keyCache) lookup(id cacheKey, r credential.SASRequest) (key *delegationKey, gen uint64, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil, 0, false
	}
	e := el.Value.(*cacheEntry)
	if e.key != nil && e.key.covers(r) {
		c.lru.MoveToFront(el)
		return e.key, e.gen, false
	}
	return nil, e.gen, e.fresh
}

// settle records the outcome of a fetch started at generation gen: a key is kept (when
// keep and no drop happened since), a 401 or 403 drops the entry and makes the next fetch
// fresh, any other error changes nothing.
func (c *keyCache) settle(id cacheKey, gen uint64, k *delegationKey, err error, keep bool) {
	switch {
	case err != nil && isRefusal(err):
		c.drop(id)
	case err != nil:
	default:
		c.mu.Lock()
		defer c.mu.Unlock()
		e, ok := c.entry(id)
		if ok && e.gen != gen {
			return // dropped while the fetch ran: its credential may be stale
		}
		e.fresh = false
		if keep {
			e.key = k
		}
	}
}

// drop forgets id's key and makes its next fetch fresh.
func (c *keyCache) drop(id cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, _ := c.entry(id)
	e.key, e.fresh = nil, true
	e.gen++
}

// entry returns id's entry, most recently used now, creating it (and evicting the least
// recently used beyond max) when missing; ok reports whether it existed. c.mu is held.
func (c *keyCache) entry(id cacheKey) (e *cacheEntry, ok bool) {
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry), true
	}
	e = &cacheEntry{id: id}
	c.entries[id] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).id)
	}
	return e, false
}

// len is the number of entries, for tests.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
