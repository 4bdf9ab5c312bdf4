package credentialtest

import (
	"sync"
	"time"
)

// T0 is the time every test clock starts at unless told otherwise.
var T0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Clock is a settable time source; its Now is what the domain's WithClock takes.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
