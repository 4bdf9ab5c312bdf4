package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxJWKSBytes bounds the JWKS document we read; real ones are a few KiB.
	maxJWKSBytes = 1 << 20
	// jwksFetchTimeout bounds one fetch. The fetch outlives the request that started it
	// (others may be waiting on it), so it needs its own limit.
	jwksFetchTimeout = 10 * time.Second
	// jwksMaxAge is how long a fetched set is trusted before the next verification tries
	// to refetch it, so a key the identity provider withdrew stops working. If that fetch
	// fails, the cached keys keep working: an outage of the JWKS host must not log
	// everybody out.
	jwksMaxAge = time.Hour
)

// Key lookup failures. They become the refusal's cause; none names the kid, which the
// caller controls.
var (
	errUnknownKID  = errors.New("no key for the token's kid")
	errRateLimited = errors.New("no key for the token's kid; jwks refetch rate limited")
)

// jwksCache holds the keys of one JWKS URL by kid. At most one fetch runs at a time and a
// new one starts at most once per minInterval, whatever the callers ask for: a flood of
// tokens with made-up kids costs the JWKS host one request per interval.
type jwksCache struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time  // last successful fetch
	triedAt   time.Time  // start of the last fetch, successful or not
	inflight  *jwksFetch // the running fetch, if any

	// current is the version of keys and when it was fetched, read without the lock by
	// the cache of verified tokens on every request.
	current atomic.Pointer[keySetVersion]
}

// keySetVersion numbers the key sets a jwksCache has held: a refetch that finds the same
// keys keeps the number, one that finds any other set takes the next.
type keySetVersion struct {
	n         uint64
	fetchedAt time.Time
}

// version is the number of the current key set (0 before the first fetch) and whether a
// verification at now would use it as it is: false once the set is due for a refetch
// (jwksMaxAge), so that whoever relies on the number verifies again and the refetch
// happens as it would without them.
func (c *jwksCache) version(now time.Time) (uint64, bool) {
	v := c.current.Load()
	if v == nil {
		return 0, false
	}
	return v.n, now.Sub(v.fetchedAt) < jwksMaxAge
}

// jwksFetch is one fetch that several verifications may wait for.
type jwksFetch struct {
	done chan struct{}
	err  error // set before done is closed
}

// key returns the key for kid, fetching the set when kid is unknown or the set is stale
// and the rate limit allows. It returns early, with ctx's error, when ctx ends; the fetch
// itself carries on for whoever else waits for it.
func (c *jwksCache) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	c.mu.Lock()
	now := c.now()
	cached, ok := c.keys[kid]
	if ok && now.Sub(c.fetchedAt) < jwksMaxAge {
		c.mu.Unlock()
		return cached, nil
	}
	f := c.inflight
	if f == nil {
		if !c.triedAt.IsZero() && now.Sub(c.triedAt) < c.minInterval {
			c.mu.Unlock()
			if ok {
				return cached, nil // stale, but refetching must wait
			}
			return nil, errRateLimited
		}
		if err := ctx.Err(); err != nil {
			c.mu.Unlock()
			return nil, err // don't spend the interval on a request nobody waits for
		}
		c.triedAt = now
		f = &jwksFetch{done: make(chan struct{})}
		c.inflight = f
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
		go func() {
			defer cancel()
			c.refresh(fctx, f)
		}()
	}
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if k, found := c.keys[kid]; found {
		return k, nil
	}
	if f.err != nil {
		if ok {
			return cached, nil // stale and the refetch failed: keep serving the old key
		}
		return nil, f.err
	}
	return nil, errUnknownKID // refetched and the kid is not (or no longer) published
}

// refresh fetches the set and, on success, replaces the cached keys with it, so a key
// withdrawn by the identity provider is dropped. On failure the old keys stay.
func (c *jwksCache) refresh(ctx context.Context, f *jwksFetch) {
	keys, err := c.fetch(ctx)
	c.mu.Lock()
	if err == nil {
		next := keySetVersion{fetchedAt: c.now()}
		if prev := c.current.Load(); prev != nil {
			next.n = prev.n
		}
		if !sameKeys(c.keys, keys) {
			next.n++
		}
		c.keys = keys
		c.fetchedAt = next.fetchedAt
		c.current.Store(&next)
	}
	f.err = err
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}

func (c *jwksCache) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// sameKeys reports whether two key sets hold the same keys under the same kids.
func sameKeys(a, b map[string]*rsa.PublicKey) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for kid, k := range a {
		o, ok := b[kid]
		if !ok || !k.Equal(o) {
			return false
		}
	}
	return true
}
