package credential

import (
	"sync"
	"time"
)

// ResolutionCache keeps, for a few seconds, where a workspace's tables go, so that the
// SDK's /creds calls of a busy workspace need no Table Storage round trip. One instance
// has one, shared by Issuance (which fills it) and Onboarding (whose deletes and org
// default changes drop an organization's entries).
//
// Why a short cache is safe: only locked workspaces are cached, whose link can no longer
// change except by deleting the credential, and only credentials in verified (a final
// state) or the environment default. A delete, a link change or a new org default on
// this instance drops the organization's entries at once; on other instances an entry
// lives at most the TTL. That delay is small beside what a delete cannot undo anyway: a
// SAS already issued stays valid for its hour.
type ResolutionCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[resolutionKey]cachedResolution
}

type resolutionKey struct{ org, workspace string }

type cachedResolution struct {
	r       Resolution
	expires time.Time
}

// maxCachedResolutions bounds the cache; past it, new entries are not kept.
const maxCachedResolutions = 100_000

// NewResolutionCache returns an empty cache whose entries live ttl (0: nothing is kept).
func NewResolutionCache(ttl time.Duration) *ResolutionCache {
	return &ResolutionCache{ttl: ttl, max: maxCachedResolutions, entries: map[resolutionKey]cachedResolution{}}
}

func (c *ResolutionCache) get(org, ws string, now time.Time) (Resolution, bool) {
	if c.ttl <= 0 {
		return Resolution{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[resolutionKey{org, ws}]
	if !ok || !now.Before(e.expires) {
		return Resolution{}, false
	}
	return e.r, true
}

// put keeps r when it may be cached: a locked workspace served by a verified credential
// or by the environment default.
func (c *ResolutionCache) put(org, ws string, r *Resolution, now time.Time) {
	if c.ttl <= 0 || r.Workspace == nil || !r.Workspace.Locked() {
		return
	}
	if r.Credential != nil && r.Credential.State != StateVerified {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries { // drop what has expired; if nothing has, keep none new
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return
		}
	}
	c.entries[resolutionKey{org, ws}] = cachedResolution{r: *r, expires: now.Add(c.ttl)}
}

// forget drops every entry of an organization.
func (c *ResolutionCache) forget(org string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.org == org {
			delete(c.entries, k)
		}
	}
}
