package localazure

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// Chaos makes Graph and Entra fail at random, the way they do under load: each call of
// one of Operations fails with probability Probability, answering one of Statuses picked
// at random. A 429 carries Retry-After (RetryAfter seconds), as Graph and Entra send when
// they throttle; the SDKs honour it. Seed makes a run reproducible: the same seed and the
// same sequence of calls fire the same faults. Count-based faults (InjectFault) still go
// first; chaos applies to calls that no pending fault claims.
type Chaos struct {
	// Probability is the chance, in [0, 1], that a call fails.
	Probability float64 `json:"probability"`
	// Statuses are the statuses to answer with: 429, 500, 502, 503 or 504. Both 429 and
	// 503 when empty.
	Statuses []int `json:"statuses,omitempty"`
	// RetryAfter is the Retry-After of a 429 (and of a 503) in seconds; 1 when zero.
	RetryAfter int `json:"retry_after,omitempty"`
	// Seed seeds the random source; the same seed fires the same faults.
	Seed uint64 `json:"seed"`
	// Operations are the calls that may fail; every operation when empty.
	Operations []Operation `json:"operations,omitempty"`
}

// ChaosStats is the chaos configuration in force (nil when off) and what it did since it
// was last set: per operation, the calls it saw and the faults it fired by status ("429").
type ChaosStats struct {
	Chaos *Chaos                       `json:"chaos"`
	Calls map[Operation]int            `json:"calls"`
	Fired map[Operation]map[string]int `json:"fired"`
	// Total is the number of faults fired over every operation.
	Total int `json:"total"`
}

var chaosStatuses = []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// chaosState is the server's random fault source, behind its own mutex so that a fault
// decision never waits for the directory's lock.
type chaosState struct {
	mu    sync.Mutex
	cfg   *Chaos
	rng   *rand.Rand
	calls map[Operation]int
	fired map[Operation]map[string]int
	total int
}

// SetChaos turns random faults on with c (replacing any earlier setting) and resets the
// counters.
func (s *Server) SetChaos(c Chaos) error {
	if c.Probability < 0 || c.Probability > 1 {
		return badRequest("InvalidProbability", "probability %v is not within [0, 1]", c.Probability)
	}
	if len(c.Statuses) == 0 {
		c.Statuses = []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}
	}
	for _, st := range c.Statuses {
		if !slices.Contains(chaosStatuses, st) {
			return badRequest("InvalidStatus", "status %d is not one of %v", st, chaosStatuses)
		}
	}
	if c.RetryAfter < 0 {
		return badRequest("InvalidRetryAfter", "retry_after must not be negative")
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 1
	}
	if len(c.Operations) == 0 {
		c.Operations = slices.Clone(operations)
	}
	for _, op := range c.Operations {
		if !slices.Contains(operations, op) {
			return badRequest("InvalidOperation", "unknown operation %q; one of %v", op, operations)
		}
	}
	c.Statuses, c.Operations = slices.Clone(c.Statuses), slices.Clone(c.Operations)
	ch := &s.chaos
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.cfg = &c
	ch.rng = rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	ch.calls = map[Operation]int{}
	ch.fired = map[Operation]map[string]int{}
	ch.total = 0
	return nil
}

// StopChaos turns random faults off and returns what they did; the counters stay readable
// through ChaosStats until the next SetChaos.
func (s *Server) StopChaos() ChaosStats {
	ch := &s.chaos
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.cfg = nil
	return ch.statsLocked()
}

// ChaosStats reports the chaos setting and its counters.
func (s *Server) ChaosStats() ChaosStats {
	ch := &s.chaos
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.statsLocked()
}

func (ch *chaosState) statsLocked() ChaosStats {
	st := ChaosStats{Calls: map[Operation]int{}, Fired: map[Operation]map[string]int{}, Total: ch.total}
	if ch.cfg != nil {
		c := *ch.cfg
		c.Statuses, c.Operations = slices.Clone(c.Statuses), slices.Clone(c.Operations)
		st.Chaos = &c
	}
	for op, n := range ch.calls {
		st.Calls[op] = n
	}
	for op, m := range ch.fired {
		st.Fired[op] = map[string]int{}
		for k, n := range m {
			st.Fired[op][k] = n
		}
	}
	return st
}

// roll decides whether this call of op fails at random, and how.
func (ch *chaosState) roll(op Operation) *Fault {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.cfg == nil || !slices.Contains(ch.cfg.Operations, op) {
		return nil
	}
	ch.calls[op]++
	if ch.rng.Float64() >= ch.cfg.Probability {
		return nil
	}
	status := ch.cfg.Statuses[ch.rng.IntN(len(ch.cfg.Statuses))]
	if ch.fired[op] == nil {
		ch.fired[op] = map[string]int{}
	}
	ch.fired[op][strconv.Itoa(status)]++
	ch.total++
	f := &Fault{Operation: op, Status: status, Count: 1}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		ra := ch.cfg.RetryAfter
		f.RetryAfter = &ra
	}
	return f
}

func (s *Server) handleSetChaos(w http.ResponseWriter, r *http.Request) {
	var c Chaos
	if err := decodeControl(r, &c); err != nil {
		writeControlError(w, err)
		return
	}
	if err := s.SetChaos(c); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.ChaosStats())
}

func (s *Server) handleGetChaos(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ChaosStats())
}

func (s *Server) handleStopChaos(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.StopChaos())
}
