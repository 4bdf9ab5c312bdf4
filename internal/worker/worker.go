// Package worker runs the background work when no Azure Functions host does: the
// standalone twin of the host's queue and timer triggers, for `make run` and tests. Worker
// consumes the job queues (one per row of internal/queue's job table) and runs the same
// JobRunner the host's invocations reach (handlers.Invoker); Ticker is the twin of the
// health-sweep timer. Worker follows the host's rules:
//
//   - a message is dequeued invisible for VisibilityTimeout, and its job must finish
//     within it (its context says so);
//   - a message is deleted only after its job succeeded, with its pop receipt;
//   - a failed job's message comes back after RetryDelay; after MaxDequeueCount
//     deliveries it moves to "<queue>-poison";
//   - a message that can never be processed (not base64 JSON of a job, or a job of
//     another queue's kind) is logged and deleted: retrying cannot fix it.
//
// Nothing is lost when the process dies: a message not deleted becomes visible again
// when its visibility timeout ends. On a graceful stop the worker dequeues nothing more
// and lets the jobs in flight finish.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/queue/azurequeue"
)

// JobRunner runs one background job; credential.Runner is one. It returns an error only
// for a failure worth delivering the same message again.
type JobRunner interface {
	Run(ctx context.Context, job credential.Job) error
}

// Client is the part of an Azure Storage queue the worker uses.
type Client interface {
	DequeueMessages(ctx context.Context, o *azqueue.DequeueMessagesOptions) (azqueue.DequeueMessagesResponse, error)
	DeleteMessage(ctx context.Context, messageID, popReceipt string, o *azqueue.DeleteMessageOptions) (azqueue.DeleteMessageResponse, error)
	UpdateMessage(ctx context.Context, messageID, popReceipt, content string, o *azqueue.UpdateMessageOptions) (azqueue.UpdateMessageResponse, error)
	EnqueueMessage(ctx context.Context, content string, o *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error)
}

var _ Client = (*azqueue.QueueClient)(nil)

// Queue is one job queue and the queue its poisoned messages move to.
type Queue struct {
	Name   string // for logs
	Jobs   Client
	Poison Client
}

// Open pairs each job queue of qs with its poison queue on svc, creating the poison
// queues that are missing.
func Open(ctx context.Context, svc *azqueue.ServiceClient, qs *azurequeue.Queues) (map[credential.JobKind]Queue, error) {
	out := make(map[credential.JobKind]Queue)
	for _, kind := range queue.Kinds() {
		c := qs.Client(kind)
		if c == nil {
			return nil, fmt.Errorf("open worker queues: no queue for job kind %s", kind)
		}
		u, err := url.Parse(c.URL())
		if err != nil {
			return nil, fmt.Errorf("open worker queues: queue URL of %s: %w", kind, err)
		}
		name := path.Base(u.Path)
		poison := svc.NewQueueClient(name + queue.PoisonSuffix)
		if _, err := poison.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
			return nil, fmt.Errorf("create queue %s%s: %w", name, queue.PoisonSuffix, err)
		}
		out[kind] = Queue{Name: name, Jobs: c, Poison: poison}
	}
	return out, nil
}

// Options adjust a Worker; the zero value of each field picks its default.
type Options struct {
	// Concurrency bounds the jobs in flight across all queues (default 16).
	Concurrency int
	// VisibilityTimeout hides a dequeued message from other consumers; its job must finish
	// within it, or the message is delivered again (default 60 s, at least 1 s).
	VisibilityTimeout time.Duration
	// PollInterval is the wait after a queue was found empty (default 500 ms).
	PollInterval time.Duration
	// RetryDelay is how long a failed job's message stays hidden before its next delivery,
	// like host.json's queues.visibilityTimeout (default 5 s; negative: at once; whole
	// seconds, rounded up; at most VisibilityTimeout).
	RetryDelay time.Duration
	// MaxDequeueCount is how many deliveries a message gets before it moves to the poison
	// queue (default 5, as the host's maxDequeueCount).
	MaxDequeueCount int
	// Log receives the worker's lines; nothing is logged when nil.
	Log *slog.Logger
}

// Defaults of Options.
const (
	DefaultConcurrency       = 16
	DefaultVisibilityTimeout = 60 * time.Second
	DefaultPollInterval      = 500 * time.Millisecond
	DefaultRetryDelay        = 5 * time.Second
	DefaultMaxDequeueCount   = queue.MaxDequeueCount
	// loadEvery is how often the worker logs its load (at debug level, when it worked).
	loadEvery = 5 * time.Second
)

const (
	// maxBatch is Azure's limit on messages per dequeue.
	maxBatch = 32
	// maxErrorBackoff bounds the wait after failed dequeues.
	maxErrorBackoff = 30 * time.Second
	// settleTimeout bounds a delete, move or update after a job, which runs even while the
	// worker stops.
	settleTimeout = 30 * time.Second
	// dequeueTimeout bounds one dequeue, the storage client's retries included: a dequeue
	// that hangs holds the slots it took for it.
	dequeueTimeout = 10 * time.Second
)

// Stats are the worker's counters since it was built. A message is counted once its fate
// is settled in storage (deleted, moved, or left for its next delivery).
type Stats struct {
	Processed int64 // jobs that succeeded
	Failed    int64 // deliveries whose job failed (or panicked, or outlived its visibility timeout)
	Poisoned  int64 // messages moved to a poison queue
	Malformed int64 // messages dropped because no job could be read from them
	InFlight  int64 // jobs running now
}

// Worker consumes the job queues.
type Worker struct {
	queues  []consumer
	runner  JobRunner
	opts    Options
	log     *slog.Logger
	sem     chan struct{}
	share   int // the most slots one queue's poller takes for a dequeue
	started atomic.Bool

	processed, failed, poisoned, malformed, inFlight atomic.Int64
	load                                             load
}

// load keeps what the worker's load line reports for one period.
type load struct {
	mu  sync.Mutex
	cur loadCounts
}

// loadCounts are one period's: how long pollers waited for a free slot, how long dequeues
// and jobs took, and how full the slots were.
type loadCounts struct {
	dequeues, empty, dequeueErrors int
	slotWaits                      int
	slotWaitMax, slotWaitTotal     time.Duration
	dequeueMax, jobMax             time.Duration
	jobs                           int
	peakInFlight                   int64
}

func (l *load) record(f func(c *loadCounts)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.cur)
}

// take returns the period's counts and starts the next period.
func (l *load) take(inFlight int64) loadCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cur
	l.cur = loadCounts{peakInFlight: inFlight}
	return c
}

type consumer struct {
	kind credential.JobKind
	Queue
}

// New returns a worker for queues, one per job kind it consumes, that runs their jobs
// with runner.
func New(queues map[credential.JobKind]Queue, runner JobRunner, opts Options) (*Worker, error) {
	if len(queues) == 0 {
		return nil, errors.New("worker: no queues")
	}
	if runner == nil {
		return nil, errors.New("worker: no job runner")
	}
	if opts.Concurrency < 0 || opts.VisibilityTimeout < 0 || opts.PollInterval < 0 || opts.MaxDequeueCount < 0 {
		return nil, fmt.Errorf("worker: negative option in %+v", opts)
	}
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultConcurrency)
	opts.VisibilityTimeout = max(cmp.Or(opts.VisibilityTimeout, DefaultVisibilityTimeout), time.Second)
	opts.PollInterval = cmp.Or(opts.PollInterval, DefaultPollInterval)
	opts.RetryDelay = min(cmp.Or(opts.RetryDelay, DefaultRetryDelay), opts.VisibilityTimeout)
	opts.MaxDequeueCount = cmp.Or(opts.MaxDequeueCount, DefaultMaxDequeueCount)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{runner: runner, opts: opts, log: opts.Log, sem: make(chan struct{}, opts.Concurrency)}
	for kind, q := range queues {
		if q.Jobs == nil || q.Poison == nil {
			return nil, fmt.Errorf("worker: queue %q of %s lacks its client or poison queue", q.Name, kind)
		}
		w.queues = append(w.queues, consumer{kind: kind, Queue: q})
	}
	slices.SortFunc(w.queues, func(a, b consumer) int { return cmp.Compare(a.kind, b.kind) })
	w.share = min(max((opts.Concurrency+len(w.queues)-1)/len(w.queues), 1), maxBatch)
	return w, nil
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	return Stats{Processed: w.processed.Load(), Failed: w.failed.Load(), Poisoned: w.poisoned.Load(),
		Malformed: w.malformed.Load(), InFlight: w.inFlight.Load()}
}

// Run consumes the queues until ctx is done, then dequeues nothing more, waits for the
// jobs in flight (each bounded by VisibilityTimeout, and not cancelled by ctx) and
// returns nil. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if w.started.Swap(true) {
		return errors.New("worker: Run called twice")
	}
	w.log.InfoContext(ctx, "queue worker started", "queues", len(w.queues), "concurrency", w.opts.Concurrency,
		"visibility_timeout", w.opts.VisibilityTimeout.String(), "max_dequeue_count", w.opts.MaxDequeueCount)
	var pollers, jobs sync.WaitGroup
	for _, c := range w.queues {
		pollers.Go(func() { w.poll(ctx, c, &jobs) })
	}
	pollers.Go(func() { w.logLoad(ctx) })
	pollers.Wait()
	w.log.InfoContext(ctx, "queue worker stopping: waiting for the jobs in flight", "in_flight", w.inFlight.Load())
	jobs.Wait()
	w.log.InfoContext(ctx, "queue worker stopped", "processed", w.processed.Load(), "failed", w.failed.Load(),
		"poisoned", w.poisoned.Load(), "malformed", w.malformed.Load())
	return nil
}

// poll dequeues from one queue as long as ctx lasts, as many messages at a time as there
// are free slots up to the queue's share of them, and starts a job for each. The share
// keeps a dequeue that is slow (or hangs until dequeueTimeout) from holding every slot
// while the other queues' messages wait.
func (w *Worker) poll(ctx context.Context, c consumer, jobs *sync.WaitGroup) {
	visibility := seconds(w.opts.VisibilityTimeout)
	failures := 0
	for {
		waitStart := time.Now()
		n := w.acquire(ctx, w.share)
		if n == 0 {
			return
		}
		// The message's invisibility starts when the service dequeues it, after this.
		dequeued := time.Now()
		dctx, cancel := context.WithTimeout(ctx, dequeueTimeout)
		resp, err := c.Jobs.DequeueMessages(dctx, &azqueue.DequeueMessagesOptions{
			NumberOfMessages: ptr(int32(n)), VisibilityTimeout: &visibility})
		cancel()
		took := time.Since(dequeued)
		w.load.record(func(l *loadCounts) {
			wait := dequeued.Sub(waitStart)
			if wait > time.Millisecond {
				l.slotWaits++
				l.slotWaitTotal += wait
				l.slotWaitMax = max(l.slotWaitMax, wait)
			}
			l.dequeues++
			l.dequeueMax = max(l.dequeueMax, took)
			switch {
			case err != nil:
				l.dequeueErrors++
			case len(resp.Messages) == 0:
				l.empty++
			}
		})
		if err != nil {
			w.release(n)
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := min(w.opts.PollInterval<<min(failures, 16), maxErrorBackoff)
			w.log.WarnContext(ctx, "dequeue failed", "queue", c.Name, "failures", failures, "retry_in", wait.String(), "err", err)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		failures = 0
		var msgs []*azqueue.DequeuedMessage
		for _, m := range resp.Messages {
			if m != nil && m.MessageID != nil && m.PopReceipt != nil {
				msgs = append(msgs, m)
			}
		}
		w.release(n - len(msgs))
		for _, m := range msgs {
			inFlight := w.inFlight.Add(1)
			w.load.record(func(l *loadCounts) { l.peakInFlight = max(l.peakInFlight, inFlight) })
			jobs.Go(func() {
				defer w.release(1)
				defer w.inFlight.Add(-1)
				w.handle(ctx, c, m, dequeued)
			})
		}
		if len(msgs) == 0 && !sleep(ctx, w.opts.PollInterval) {
			return
		}
	}
}

// acquire takes a slot, waiting for one, then free slots up to limit. It returns how
// many it took, 0 when ctx ended first.
func (w *Worker) acquire(ctx context.Context, limit int) int {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	if ctx.Err() != nil {
		w.release(1)
		return 0
	}
	n := 1
	for n < limit {
		select {
		case w.sem <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (w *Worker) release(n int) {
	for range n {
		<-w.sem
	}
}

// delivery is one dequeued message.
type delivery struct {
	c                    consumer
	id, popReceipt, text string
	count                int64
	log                  *slog.Logger
}

// handle runs the job of one message and settles the message: deleted after success or
// when malformed, moved to the poison queue after its last delivery, else left to come
// back after RetryDelay. Nothing here is cancelled by the worker's stop.
func (w *Worker) handle(parent context.Context, c consumer, m *azqueue.DequeuedMessage, dequeued time.Time) {
	ctx := context.WithoutCancel(parent)
	d := delivery{c: c, id: *m.MessageID, popReceipt: *m.PopReceipt}
	if m.MessageText != nil {
		d.text = *m.MessageText
	}
	if m.DequeueCount != nil {
		d.count = *m.DequeueCount
	}
	requestID := uuid.NewString()
	d.log = w.log.With("request_id", requestID, "queue", c.Name, "message_id", d.id, "dequeue_count", d.count)

	job, err := queue.Decode(d.text)
	if err == nil && job.Kind != c.kind {
		err = fmt.Errorf("%w: a %s job on the %s queue", queue.ErrMalformed, job.Kind, c.Name)
	}
	if err != nil {
		d.log.ErrorContext(ctx, "dropping a malformed queue message: no retry can fix it", "err", err, "length", len(d.text))
		w.delete(ctx, d)
		w.malformed.Add(1)
		return
	}
	job.Delivery, job.RequestID = int(d.count), requestID
	d.log = d.log.With("kind", job.Kind, "org", job.OrgID, "credential", job.CredentialID,
		"generation", job.Generation, "attempt", job.Attempt)
	if d.count > int64(w.opts.MaxDequeueCount) {
		// Delivered too often without settling: earlier runs outlived the visibility
		// timeout or the process died while running them.
		w.poison(ctx, d, fmt.Sprintf("delivered %d times without completing", d.count))
		return
	}

	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, dequeued.Add(w.opts.VisibilityTimeout))
	err = w.run(runCtx, job)
	cancel()
	elapsed := time.Since(start)
	w.load.record(func(l *loadCounts) {
		l.jobs++
		l.jobMax = max(l.jobMax, elapsed)
	})
	if err == nil {
		w.delete(ctx, d)
		d.log.InfoContext(ctx, "queue job done", "duration_ms", elapsed.Milliseconds())
		w.processed.Add(1)
		return
	}
	if d.count >= int64(w.opts.MaxDequeueCount) {
		d.log.ErrorContext(ctx, "queue job failed on its last delivery", "duration_ms", elapsed.Milliseconds(), "err", err)
		w.failed.Add(1)
		w.poison(ctx, d, "its job failed on every delivery")
		return
	}
	d.log.ErrorContext(ctx, "queue job failed; the message comes back for another delivery", "duration_ms", elapsed.Milliseconds(),
		"retry_in", w.opts.RetryDelay.String(), "err", err)
	w.retryLater(ctx, d)
	w.failed.Add(1)
}

// logLoad logs, every loadEvery while the worker runs and worked, how busy it was: the
// jobs run and their longest, the peak of slots in use, how often and how long pollers
// waited for a free slot, and the dequeues (empty, failed, the slowest).
func (w *Worker) logLoad(ctx context.Context) {
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l := w.load.take(w.inFlight.Load())
		if l.jobs == 0 && l.slotWaits == 0 && l.dequeueErrors == 0 {
			continue
		}
		w.log.DebugContext(ctx, "worker load", "period_ms", loadEvery.Milliseconds(), "slots", w.opts.Concurrency,
			"peak_in_flight", l.peakInFlight, "jobs", l.jobs, "job_ms_max", l.jobMax.Milliseconds(),
			"slot_waits", l.slotWaits, "slot_wait_ms_max", l.slotWaitMax.Milliseconds(), "slot_wait_ms_total", l.slotWaitTotal.Milliseconds(),
			"dequeues", l.dequeues, "empty_dequeues", l.empty, "dequeue_errors", l.dequeueErrors, "dequeue_ms_max", l.dequeueMax.Milliseconds())
	}
}

// run calls the runner, turning a panic into an error so one job cannot stop the worker.
func (w *Worker) run(ctx context.Context, job credential.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s job: %v", job.Kind, p)
		}
	}()
	return w.runner.Run(ctx, job)
}

// delete removes a settled message. A pop receipt that no longer matches means the
// visibility timeout ended and another consumer took the message: it is theirs now.
func (w *Worker) delete(ctx context.Context, d delivery) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	_, err := d.c.Jobs.DeleteMessage(ctx, d.id, d.popReceipt, nil)
	switch {
	case err == nil:
	case queueerror.HasCode(err, queueerror.PopReceiptMismatch, queueerror.MessageNotFound):
		d.log.InfoContext(ctx, "message not deleted: another consumer holds it or deleted it", "err", err)
	default:
		d.log.WarnContext(ctx, "delete message failed; it will be delivered again", "err", err)
	}
}

// poison copies the message to the poison queue, then deletes it. If the copy fails the
// message stays, and comes back.
func (w *Worker) poison(ctx context.Context, d delivery, why string) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	forever := int32(-1)
	if _, err := d.c.Poison.EnqueueMessage(ctx, d.text, &azqueue.EnqueueMessageOptions{TimeToLive: &forever}); err != nil {
		d.log.ErrorContext(ctx, "moving a message to the poison queue failed; it will be delivered again", "err", err)
		return
	}
	w.delete(ctx, d)
	w.poisoned.Add(1)
	d.log.ErrorContext(ctx, "queue message poisoned", "poison_queue", d.c.Name+queue.PoisonSuffix, "reason", why)
}

// retryLater makes a failed message visible again after RetryDelay instead of at the
// end of its visibility timeout. If that fails, the timeout still brings it back.
func (w *Worker) retryLater(ctx context.Context, d delivery) {
	if w.opts.RetryDelay >= w.opts.VisibilityTimeout {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	delay := seconds(max(w.opts.RetryDelay, 0))
	if _, err := d.c.Jobs.UpdateMessage(ctx, d.id, d.popReceipt, d.text, &azqueue.UpdateMessageOptions{VisibilityTimeout: &delay}); err != nil {
		d.log.InfoContext(ctx, "could not shorten the failed message's invisibility; it comes back after the visibility timeout", "err", err)
	}
}

// seconds rounds d up to whole seconds, as the queue service counts them.
func seconds(d time.Duration) int32 {
	return int32(min(math.Ceil(d.Seconds()), math.MaxInt32))
}

func ptr[T any](v T) *T { return &v }

// sleep waits for d, or less when ctx ends; it says whether ctx is still going.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
