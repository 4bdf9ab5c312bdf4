package credential

import (
	"testing"
	"time"
)

// TestLookupCacheBounded: a full cache drops what has expired to make room, and keeps
// nothing new while every entry is alive; an entry it holds can still be refreshed.
func TestLookupCacheBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := newLookupCache(30 * time.Second)
	c.max = 2
	key := func(client string) lookupKey { return lookupKey{org: "org", tenant: "t", client: client} }
	found := &WorkloadIdentity{ID: "w"}
	c.put(key("a"), found, now, c.epoch())
	c.put(key("b"), nil, now, c.epoch())
	c.put(key("c"), found, now, c.epoch())
	if _, _, ok := c.get(key("c"), now); ok {
		t.Fatal("a full cache of live entries took a new one")
	}
	c.put(key("a"), found, now.Add(time.Second), c.epoch())
	if wi, ok, cached := c.get(key("a"), now.Add(30*time.Second)); !cached || !ok || wi.ID != "w" {
		t.Fatal("an entry it holds was not refreshed")
	}
	// b's negative entry (kept MaxNegativeLookupTTL) has expired: c takes its place.
	later := now.Add(MaxNegativeLookupTTL)
	c.put(key("c"), found, later, c.epoch())
	if _, _, ok := c.get(key("c"), later); !ok {
		t.Fatal("a full cache did not drop an expired entry to make room")
	}
	if len(c.entries) != 2 {
		t.Fatalf("%d entries, want at most 2", len(c.entries))
	}
}
