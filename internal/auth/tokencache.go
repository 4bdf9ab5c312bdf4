package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenCacheSize is how many verified tokens an [Authenticator] remembers: enough for
// every token in use on a busy instance, and small (about 200 bytes a token).
const DefaultTokenCacheSize = 4096

// tokenCacheShards spreads the cache over locks, so concurrent requests seldom wait on
// each other.
const tokenCacheShards = 16

// validity is when a verified token may be used again without verifying it: from
// (its nbf and iat, less the leeway) until its exp. The leeway stretches only the start: a
// token past its exp is verified again, which then applies the leeway itself.
type validity struct {
	from, until time.Time
}

func validityOf(c *jwt.RegisteredClaims, leeway time.Duration) validity {
	var v validity
	for _, t := range []*jwt.NumericDate{c.NotBefore, c.IssuedAt} {
		if t != nil && t.Add(-leeway).After(v.from) {
			v.from = t.Add(-leeway)
		}
	}
	if c.ExpiresAt != nil {
		v.until = c.ExpiresAt.Time
	}
	return v
}

// verifierKind says which verifier vouched for a cached token.
type verifierKind uint8

const (
	platformVerifier verifierKind = iota + 1
	entraVerifier
)

// cachedToken is what a token's verification found: who it speaks for, when that holds,
// and the keys it was checked with.
type cachedToken struct {
	caller   Caller
	valid    validity
	verifier verifierKind
	keys     uint64 // the verifier's key set version when the verification started
}

// tokenCache remembers tokens that verified, keyed by the SHA-256 of the whole token (the
// token itself is not kept). It remembers the signature and claims check only: what the
// caller may do (the token's orgs, a workload identity's registration) is decided on every
// request by whoever asks. An entry is used only within the token's own validity and while
// the verifier's keys are the version it was checked with and not due for a refetch; past
// that the token is verified again, so a cache hit never accepts what a verification now
// would refuse for its time or its key. Refusals are not remembered.
type tokenCache struct {
	perShard int
	shards   [tokenCacheShards]tokenShard
}

type tokenShard struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cachedToken
}

// newTokenCache holds at most size tokens; size 0 or less means no cache (nil).
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	c := &tokenCache{perShard: max(1, size/tokenCacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]cachedToken)
	}
	return c
}

func tokenKey(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }

func (c *tokenCache) shard(key *[sha256.Size]byte) *tokenShard {
	return &c.shards[key[0]%tokenCacheShards]
}

// get returns the entry for key if there is one; the caller decides whether it still holds.
func (c *tokenCache) get(key *[sha256.Size]byte) (cachedToken, bool) {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.entries[*key]
	s.mu.RUnlock()
	return e, ok
}

// put remembers e under key. A full shard first drops its entries past their exp, then,
// if it is still full, one entry of its choosing (Go's map order): the bound holds whatever
// tokens arrive, and a token dropped early costs one verification.
func (c *tokenCache) put(key *[sha256.Size]byte, e cachedToken, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[*key]; !ok && len(s.entries) >= c.perShard {
		for k, old := range s.entries {
			if !now.Before(old.valid.until) {
				delete(s.entries, k)
			}
		}
		for k := range s.entries {
			if len(s.entries) < c.perShard {
				break
			}
			delete(s.entries, k)
		}
	}
	s.entries[*key] = e
}

// drop forgets key, for an entry that no longer holds.
func (c *tokenCache) drop(key *[sha256.Size]byte) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.entries, *key)
	s.mu.Unlock()
}

// len is the number of tokens held, for tests.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
