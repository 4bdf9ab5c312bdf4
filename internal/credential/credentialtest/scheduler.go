package credentialtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Scheduled is one job as the Scheduler received it.
type Scheduled struct {
	Job   credential.Job
	Delay time.Duration
	// Due is when the job becomes visible: the clock's time when it was scheduled, plus
	// Delay.
	Due time.Time
	seq int
}

// Scheduler is an in-memory credential.Scheduler: it keeps every job it is given, per
// kind, until a test takes it, and remembers all of them with their delays. Jobs come
// back as a queue returns them: times in UTC, no delivery count. Nothing runs by itself.
type Scheduler struct {
	now    func() time.Time
	faults faults

	mu       sync.Mutex
	seq      int
	pending  []Scheduled
	history  []Scheduled
	poisoned []credential.PoisonedJob
	refuse   func(credential.Job, time.Duration) error
}

var _ credential.Scheduler = (*Scheduler)(nil)

// NewScheduler returns an empty scheduler whose jobs are due by now (time.Now when nil).
func NewScheduler(now func() time.Time) *Scheduler {
	if now == nil {
		now = time.Now
	}
	return &Scheduler{now: now}
}

// Inject arms a Fault for Schedule; the zero Fault disarms it.
func (s *Scheduler) Inject(f Fault) { s.faults.inject("Schedule", f) }

// InjectPoison arms a Fault for the poison queue's calls ("Poisoned", "Remove").
func (s *Scheduler) InjectPoison(call string, f Fault) { s.faults.inject(call, f) }

// Refuse has refuse asked before each job is queued: an error refuses the job, as an
// unavailable queue would (nil: the job is queued). A nil refuse removes the check.
func (s *Scheduler) Refuse(refuse func(job credential.Job, delay time.Duration) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refuse
}

// Schedule queues job, due after delay.
func (s *Scheduler) Schedule(ctx context.Context, job credential.Job, delay time.Duration) error {
	if err := s.faults.take("Schedule"); err != nil {
		return err
	}
	if job.Kind == "" || job.OrgID == "" || job.CredentialID == "" {
		return fmt.Errorf("schedule: job %+v lacks its kind, organization or credential", job)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		if err := s.refuse(job, delay); err != nil {
			return fmt.Errorf("enqueue %s job for credential %s: %w", job.Kind, job.CredentialID, errors.Join(credential.ErrUnavailable, err))
		}
	}
	job.Deadline, job.IssuedAt, job.Delivery, job.RequestID = job.Deadline.UTC(), job.IssuedAt.UTC(), 0, ""
	s.seq++
	sc := Scheduled{Job: job, Delay: max(delay, 0), Due: s.now().Add(max(delay, 0)), seq: s.seq}
	s.pending = append(s.pending, sc)
	s.history = append(s.history, sc)
	return nil
}

// Take removes and returns every queued job of kind, delayed ones included, in the order
// they become due.
func (s *Scheduler) Take(kind credential.JobKind) []credential.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []credential.Job
	for _, sc := range s.sorted(kind) {
		out = append(out, sc.Job)
	}
	s.pending = slices.DeleteFunc(s.pending, func(sc Scheduled) bool { return sc.Job.Kind == kind })
	return out
}

// Due removes and returns the queued jobs of kind that are due by the clock's time (those
// a queue would deliver now), in the order they became due.
func (s *Scheduler) Due(kind credential.JobKind) []credential.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []credential.Job
	taken := map[int]bool{}
	for _, sc := range s.sorted(kind) {
		if !sc.Due.After(now) {
			out = append(out, sc.Job)
			taken[sc.seq] = true
		}
	}
	s.pending = slices.DeleteFunc(s.pending, func(sc Scheduled) bool { return taken[sc.seq] })
	return out
}

// Next removes and returns the queued job of kind that is due first, delayed or not,
// delivered for the first time (Delivery 1); ok is false when none is queued.
func (s *Scheduler) Next(kind credential.JobKind) (job credential.Job, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := s.sorted(kind)
	if len(jobs) == 0 {
		return credential.Job{}, false
	}
	first := jobs[0]
	s.pending = slices.DeleteFunc(s.pending, func(sc Scheduled) bool { return sc.seq == first.seq })
	first.Job.Delivery = 1
	return first.Job, true
}

// Pending counts the queued jobs of kind, delayed ones included.
func (s *Scheduler) Pending(kind credential.JobKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sorted(kind))
}

// History returns every job ever queued, with its delay, in the order it came.
func (s *Scheduler) History() []Scheduled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}

// Forget clears the history (the queued jobs stay).
func (s *Scheduler) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = nil
}

// sorted is the queued jobs of kind in the order they become due; s.mu is held.
func (s *Scheduler) sorted(kind credential.JobKind) []Scheduled {
	var out []Scheduled
	for _, sc := range s.pending {
		if sc.Job.Kind == kind {
			out = append(out, sc)
		}
	}
	slices.SortFunc(out, func(a, b Scheduled) int { return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.seq, b.seq)) })
	return out
}

var _ credential.PoisonQueue = (*Scheduler)(nil)

// Poison sets job aside as the queue does after its last failed delivery: the reconciler
// reads it back (Poisoned). It returns the poisoned message's id.
func (s *Scheduler) Poison(job credential.Job) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("poisoned-%d", s.seq)
	job.Delivery, job.RequestID = 0, ""
	s.poisoned = append(s.poisoned, credential.PoisonedJob{Job: job, Queue: string(job.Kind) + "-poison", MessageID: id,
		Receipt: id, PoisonedAt: s.now().UTC()})
	return id
}

// Poisoned returns up to max of the jobs set aside, oldest first; they stay until removed.
func (s *Scheduler) Poisoned(ctx context.Context, max int) ([]credential.PoisonedJob, error) {
	if err := s.faults.take("Poisoned"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.poisoned[:min(max, len(s.poisoned))]), nil
}

// Remove deletes a poisoned message.
func (s *Scheduler) Remove(ctx context.Context, p credential.PoisonedJob) error {
	if err := s.faults.take("Remove"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.poisoned = slices.DeleteFunc(s.poisoned, func(q credential.PoisonedJob) bool { return q.MessageID == p.MessageID })
	return nil
}

// Release leaves a poisoned message for the next read; it never hides one.
func (s *Scheduler) Release(ctx context.Context, p credential.PoisonedJob) error {
	return s.faults.take("Release")
}

// PoisonedCount is how many messages are set aside.
func (s *Scheduler) PoisonedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.poisoned)
}
