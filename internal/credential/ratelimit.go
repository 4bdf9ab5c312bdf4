package credential

import (
	"fmt"
	"sync"
	"time"
)

// Rate is a token bucket: Count tokens every Per, at most Burst held. The zero Rate limits
// nothing.
type Rate struct {
	Count int
	Per   time.Duration
	Burst int
}

// Limited reports whether r limits anything.
func (r Rate) Limited() bool { return r.Count > 0 && r.Per > 0 && r.Burst > 0 }

func (r Rate) String() string {
	if !r.Limited() {
		return "no limit"
	}
	per := r.Per.String()
	switch r.Per {
	case time.Second:
		per = "second"
	case time.Minute:
		per = "minute"
	case time.Hour:
		per = "hour"
	}
	return fmt.Sprintf("%d per %s (bursts of up to %d)", r.Count, per, r.Burst)
}

// limiter keeps one token bucket per key (an organization) in this process's memory. A
// bucket is held as the time it will be full again (the generic cell rate algorithm, which
// is a token bucket): one time per key, integer arithmetic, and a key whose time has passed
// is a full bucket, which is the same as none, so it can be dropped.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	full map[string]time.Time // when each key's bucket is full again
	// sweepAt is the map size at which full buckets are dropped: memory follows the
	// organizations that created recently, not all that ever did.
	sweepAt int
}

const minSweep = 1024

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, full: map[string]time.Time{}, sweepAt: minSweep}
}

// take spends one token of key's bucket at now. When there is none it spends nothing and
// returns how long until there is one.
func (l *limiter) take(key string, now time.Time) (wait time.Duration, ok bool) {
	if !l.rate.Limited() {
		return 0, true
	}
	interval := l.rate.Per / time.Duration(l.rate.Count) // one token's worth of time
	tolerance := interval * time.Duration(l.rate.Burst-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	tat := l.full[key]
	if tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > tolerance {
		return ahead - tolerance, false
	}
	l.full[key] = tat.Add(interval)
	if len(l.full) >= l.sweepAt {
		for k, t := range l.full {
			if !t.After(now) {
				delete(l.full, k)
			}
		}
		l.sweepAt = max(minSweep, 2*len(l.full))
	}
	return 0, true
}
