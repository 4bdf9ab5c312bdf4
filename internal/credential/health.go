package credential

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"
)

// HealthStatus says whether a verified credential still has the access it was verified
// with. It is not a State: a degraded credential stays verified, and only the re-probe
// sets it.
type HealthStatus string

// The health statuses.
const (
	HealthOK       HealthStatus = "ok"
	HealthDegraded HealthStatus = "degraded"
)

// Health is the result of the last health re-probe of a verified credential: the same
// checks as the access probe, when they ran, and what is wrong when one failed. A zero
// Health means the credential was never re-probed.
//
// One failed check is only a suspicion: the status stays ok, Failures is 1, Problem says
// what failed, and the credential is checked again after Config.HealthRecheck. Only
// DegradeAfter failed checks in a row make it degraded, so a passing fault (a throttled
// token request, a storage hiccup) never raises a false alarm.
type Health struct {
	Status    HealthStatus
	Checks    []Check
	CheckedAt time.Time
	// Since is when the status took its current value.
	Since time.Time
	// Failures counts the failed checks in a row up to the last one (0 when it passed).
	Failures int
	// Problem says what is wrong while the last check failed, classified like the access
	// probe's.
	Problem Problem
}

// DegradeAfter is how many failed health checks in a row make a credential degraded.
const DegradeAfter = 2

// HealthEvent is one change of a credential's health status. Health events have a log of
// their own, apart from the transition log, so they can never be read as a transition.
type HealthEvent struct {
	Time          time.Time
	From          HealthStatus // ok for a credential's first check
	To            HealthStatus
	Code          string // the problem's classification when To is degraded
	ProviderError string
	RequestID     string
	Generation    int64
}

// HealthMonitor re-probes verified credentials: a sweep schedules one health probe per
// verified credential, spread over a while, and each probe records the credential's
// health (never its state) with an event when it changes.
type HealthMonitor struct {
	cfg       Config
	store     Store
	health    HealthStore
	scheduler Scheduler
	prober    Prober
	log       *slog.Logger
	now       func() time.Time
}

// NewHealthMonitor returns the health sweep and probe on their ports.
func NewHealthMonitor(cfg Config, store Store, health HealthStore, scheduler Scheduler, prober Prober, log *slog.Logger,
	opts ...Option) (*HealthMonitor, error) {
	if err := required("credential health monitor", map[string]any{"store": store, "health store": health,
		"scheduler": scheduler, "prober": prober, "log": log}); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	o := newOptions(opts)
	return &HealthMonitor{cfg: cfg, store: store, health: health, scheduler: scheduler, prober: prober, log: log, now: o.now}, nil
}

// maxHealthWrites bounds the writes of one health result that lose a race to unrelated
// writes of the same row.
const maxHealthWrites = 3

// SweepHealth schedules one health probe for every verified credential, each after a
// delay within the configured spread (the same for a credential at every sweep), so a
// large fleet does not probe at once. It returns how many it scheduled; it stops at the
// first error, and a later sweep covers whatever this one missed.
func (m *HealthMonitor) SweepHealth(ctx context.Context) (int, error) {
	now := m.now().UTC()
	n := 0
	err := m.health.EachVerified(ctx, func(c *Credential) error {
		delay := spreadDelay(c.OrgID, c.ID, m.cfg.HealthSpread)
		job := Job{Kind: JobHealthProbe, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation,
			IssuedAt: now, Deadline: now.Add(delay)}
		if err := m.scheduler.Schedule(ctx, job, delay); err != nil {
			return fmt.Errorf("schedule the health probe of credential %s: %w", c.ID, err)
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("health sweep after %d probes: %w", n, err)
	}
	m.log.InfoContext(ctx, "health sweep scheduled its probes", "probes", n, "spread", m.cfg.HealthSpread.String())
	return n, nil
}

// spreadDelay places a credential at a fixed point within spread, by a hash of its key.
func spreadDelay(orgID, id string, spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(orgID + "/" + id))
	return time.Duration(h.Sum64() % uint64(spread))
}

// ProbeHealth re-runs the access probe of a verified credential and records its health.
// The state never changes. A job for a credential that is no longer verified, of another
// generation, deleted, or already checked since the sweep issued the job changes nothing,
// so a duplicate or late delivery is harmless.
func (m *HealthMonitor) ProbeHealth(ctx context.Context, job Job) error {
	c, err := m.store.Get(ctx, job.OrgID, job.CredentialID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read credential %s for its health probe: %w", job.CredentialID, err)
	}
	if !healthDue(c, job) {
		m.log.DebugContext(ctx, "health probe dropped: not verified, another generation, or checked since the sweep",
			"org", job.OrgID, "credential", job.CredentialID, "state", c.State, "generation", c.Generation,
			"job_generation", job.Generation, "checked_at", c.Health.CheckedAt, "issued_at", job.IssuedAt)
		return nil
	}
	target := probeTarget(c)
	target.FreshToken = deniedBefore(c.Health.Checks)
	started := m.now().UTC()
	report := m.prober.Probe(ctx, target)
	result := healthOf(ClassifyProbe(report, target, c.SPObjectID, true), report, m.now().UTC())

	for writes := 1; ; writes++ {
		err := m.recordHealth(ctx, c, result)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile
		}
		if err == nil {
			return m.recheckIfSuspected(ctx, c)
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if writes == maxHealthWrites {
			m.log.InfoContext(ctx, "health result dropped: the credential kept changing under it", "org", c.OrgID, "credential", c.ID)
			return nil
		}
		// Someone else wrote the row. Retry on what it is now, if the result still applies.
		c, err = m.store.Get(ctx, job.OrgID, job.CredentialID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read credential %s again for its health result: %w", job.CredentialID, err)
		}
		if !healthApplies(c, job, target, started) {
			m.log.InfoContext(ctx, "health result dropped: the credential changed or was checked meanwhile", "org", c.OrgID, "credential", c.ID)
			return nil
		}
	}
}

// recheckIfSuspected schedules the check that confirms or clears a first failure, after
// Config.HealthRecheck. Its IssuedAt is the failed check's time, so it runs unless the
// credential was checked again since.
func (m *HealthMonitor) recheckIfSuspected(ctx context.Context, c *Credential) error {
	h := c.Health
	if h.Status != HealthOK || h.Failures == 0 {
		return nil
	}
	job := Job{Kind: JobHealthProbe, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation,
		IssuedAt: h.CheckedAt, Deadline: h.CheckedAt.Add(m.cfg.HealthRecheck)}
	if err := m.scheduler.Schedule(ctx, job, m.cfg.HealthRecheck); err != nil {
		// The next sweep checks again; the suspicion stands until then.
		m.log.WarnContext(ctx, "health re-check of a suspected credential not scheduled; the next sweep checks it", "org", c.OrgID,
			"credential", c.ID, "err", err)
	}
	return nil
}

// healthDue says whether a health job is still to run on c: not when c was checked after
// the job was issued.
func healthDue(c *Credential, job Job) bool {
	return c.State == StateVerified && c.Generation == job.Generation && !c.Health.CheckedAt.After(job.IssuedAt)
}

// healthApplies says whether a result probed from started against target may still be
// written on c as it is now.
func healthApplies(c *Credential, job Job, target ProbeTarget, started time.Time) bool {
	now := probeTarget(c)
	return c.State == StateVerified && c.Generation == job.Generation && c.Health.CheckedAt.Before(started) &&
		now.TenantID == target.TenantID && now.AppID == target.AppID && now.Account == target.Account &&
		now.Container == target.Container && now.Prefix == target.Prefix
}

func probeTarget(c *Credential) ProbeTarget {
	return ProbeTarget{TenantID: c.TenantID, AppID: c.App.AppID, Account: c.Storage.Account,
		Container: c.Storage.Container, Prefix: c.BasePath.Prefix}
}

// healthOf turns a probe verdict into a health result. Every outcome but connected is
// degraded: the access the credential was verified with is no longer confirmed.
func healthOf(v Verdict, r ProbeReport, at time.Time) Health {
	h := Health{Status: HealthOK, CheckedAt: at, Checks: make([]Check, 0, len(r.Checks))}
	for _, c := range r.Checks {
		h.Checks = append(h.Checks, Check{Name: c.Name, Result: c.Result, ProviderCode: c.Code})
	}
	if v.Status != StatusConnected {
		h.Status = HealthDegraded
		h.Problem = v.Problem
	}
	return h
}

// recordHealth writes result on c, with a health event when the status changes. A
// credential never checked counts as ok: it was verified. A failed check counts toward
// DegradeAfter; until it is reached, the status stays what it was.
func (m *HealthMonitor) recordHealth(ctx context.Context, c *Credential, result Health) error {
	prev := c.Health
	from := prev.Status
	if from == "" {
		from = HealthOK
	}
	if result.Status == HealthDegraded {
		result.Failures = prev.Failures + 1
		if from == HealthOK && result.Failures < DegradeAfter {
			result.Status = HealthOK
		}
	}
	switch {
	case prev.Status == result.Status:
		result.Since = prev.Since
	case prev.Status == "" && result.Status == HealthOK && !c.VerifiedAt.IsZero():
		result.Since = c.VerifiedAt
	default:
		result.Since = result.CheckedAt
	}
	var ev *HealthEvent
	if from != result.Status {
		ev = &HealthEvent{Time: result.CheckedAt, From: from, To: result.Status, Code: result.Problem.Code,
			ProviderError: result.Problem.ProviderError, RequestID: result.Problem.RequestID, Generation: c.Generation}
	}
	c.Health = result
	if err := m.health.UpdateHealth(ctx, c, ev); err != nil {
		c.Health = prev
		return fmt.Errorf("record health of credential %s: %w", c.ID, err)
	}
	switch {
	case ev == nil && result.Failures > 0 && result.Status == HealthOK:
		m.log.InfoContext(ctx, "credential access check failed once; checking again before calling it degraded", "org", c.OrgID,
			"credential", c.ID, "failures", result.Failures, "code", result.Problem.Code, "provider_error", result.Problem.ProviderError,
			"provider_request_id", result.Problem.RequestID, "recheck_in", m.cfg.HealthRecheck.String())
	case ev != nil && result.Status == HealthDegraded:
		m.log.WarnContext(ctx, "credential access degraded", "org", c.OrgID, "credential", c.ID,
			"code", result.Problem.Code, "hint", result.Problem.Hint, "provider_error", result.Problem.ProviderError,
			"provider_request_id", result.Problem.RequestID)
	case ev != nil:
		m.log.InfoContext(ctx, "credential access recovered", "org", c.OrgID, "credential", c.ID)
	}
	return nil
}

// HealthEvents reads a credential's health log.
func (m *HealthMonitor) HealthEvents(ctx context.Context, orgID, id string) ([]HealthEvent, error) {
	if _, err := m.store.Get(ctx, orgID, id); err != nil {
		return nil, err
	}
	return m.health.HealthEvents(ctx, orgID, id)
}
