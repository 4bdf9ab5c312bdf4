package worker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/queue/azurequeue"
)

// runnerFunc adapts a function to JobRunner.
type runnerFunc func(ctx context.Context, job credential.Job) error

func (f runnerFunc) Run(ctx context.Context, job credential.Job) error { return f(ctx, job) }

// fixture is a set of job queues of its own on the test Azurite, with their poison queues.
type fixture struct {
	t      *testing.T
	qs     *azurequeue.Queues
	queues map[credential.JobKind]Queue
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Azurite(t)
	svc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	qs, err := azurequeue.Open(ctx, svc, azurequeue.Options{NamePrefix: testenv.UniqueName(t, "w")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range queue.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	queues, err := Open(ctx, svc, qs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, q := range queues {
			_, _ = q.Poison.(*azqueue.QueueClient).Delete(context.Background(), nil)
		}
	})
	return &fixture{t: t, qs: qs, queues: queues}
}

// start runs a worker over the fixture's queues; stop cancels it and waits for Run.
func (f *fixture) start(runner JobRunner, opts Options) (w *Worker, stop func() error) {
	f.t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := New(f.queues, runner, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(2 * time.Minute):
				runErr = errors.New("worker did not stop within 2 minutes")
			}
		})
		return runErr
	}
	f.t.Cleanup(func() {
		if err := stop(); err != nil {
			f.t.Error(err)
		}
	})
	return w, stop
}

// testWriter sends log lines to the test log, shown for failed tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func (f *fixture) schedule(job credential.Job, delay time.Duration) {
	f.t.Helper()
	if err := f.qs.Schedule(context.Background(), job, delay); err != nil {
		f.t.Fatal(err)
	}
}

// count is the number of messages in a queue, hidden ones included.
func (f *fixture) count(c Client) int {
	f.t.Helper()
	props, err := c.(*azqueue.QueueClient).GetProperties(context.Background(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(*props.ApproximateMessagesCount)
}

// peek returns the visible messages of a queue.
func (f *fixture) peek(c Client) []*azqueue.PeekedMessage {
	f.t.Helper()
	resp, err := c.(*azqueue.QueueClient).PeekMessages(context.Background(), &azqueue.PeekMessagesOptions{NumberOfMessages: ptr(int32(32))})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.Messages
}

// eventually waits up to timeout for cond.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func spPoll(id string) credential.Job {
	return credential.Job{Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: id, Generation: 1,
		Deadline: time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)}
}

// ranLog records which credentials' jobs ran, in order.
type ranLog struct {
	mu   sync.Mutex
	jobs []credential.Job
}

func (r *ranLog) add(job credential.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, job)
}

func (r *ranLog) times(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, j := range r.jobs {
		if j.CredentialID == id {
			n++
		}
	}
	return n
}

func (r *ranLog) all() []credential.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.jobs)
}

// TestJobsRunAndAreDeleted: every queue's jobs run once, intact, and their messages are
// deleted (with a 1 s visibility timeout, a message left behind would run again).
func TestJobsRunAndAreDeleted(t *testing.T) {
	f := newFixture(t)
	want := map[string]credential.Job{}
	for i := range 4 {
		j := spPoll(fmt.Sprintf("sp%d", i))
		want[j.CredentialID] = j
	}
	probe := credential.Job{Kind: credential.JobAccessProbe, OrgID: "org-a", CredentialID: "probe", Generation: 2,
		Deadline: time.Now().Add(5 * time.Minute).UTC().Truncate(time.Second), Attempt: 3}
	cleanup := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org-b", CredentialID: "gone", AppObjectID: "obj-1"}
	want[probe.CredentialID], want[cleanup.CredentialID] = probe, cleanup
	for _, j := range want {
		f.schedule(j, 0)
	}
	ran := &ranLog{}
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		ran.add(job)
		return nil
	}), Options{VisibilityTimeout: time.Second, PollInterval: 100 * time.Millisecond})

	eventually(t, 15*time.Second, "all jobs processed", func() bool { return w.Stats().Processed == int64(len(want)) })
	time.Sleep(2500 * time.Millisecond) // past the visibility timeout: an undeleted message would be back
	got := map[string]credential.Job{}
	for _, j := range ran.all() {
		if _, dup := got[j.CredentialID]; dup {
			t.Errorf("job of %s ran twice", j.CredentialID)
		}
		if j.RequestID == "" {
			t.Errorf("job of %s ran without a request id of its delivery", j.CredentialID)
		}
		j.RequestID = ""
		got[j.CredentialID] = j
	}
	for id, j := range want {
		j.Delivery = 1 // the worker hands on the message's dequeue count
		want[id] = j
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("jobs run (-want +got):\n%s", diff)
	}
	for kind, q := range f.queues {
		if n := f.count(q.Jobs); n != 0 {
			t.Errorf("queue of %s holds %d messages after its jobs succeeded, want 0", kind, n)
		}
	}
	if s := w.Stats(); s.Processed != int64(len(want)) || s.Failed != 0 || s.Poisoned != 0 || s.Malformed != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestMalformedMessagesDropped: messages no job can be read from, or holding a job of
// another queue's kind, are deleted without running and without poisoning.
func TestMalformedMessagesDropped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wrongKind, err := queue.Encode(spPoll("wrong-queue"))
	if err != nil {
		t.Fatal(err)
	}
	noCredential := base64.StdEncoding.EncodeToString([]byte(`{"kind":"app_cleanup","org_id":"o","app_object_id":"a"}`))
	for kind, text := range map[credential.JobKind]string{
		credential.JobSPPoll:      "not base64!",
		credential.JobAccessProbe: wrongKind, // an sp_poll job on the access probe queue
		credential.JobAppCleanup:  noCredential,
	} {
		if _, err := f.queues[kind].Jobs.EnqueueMessage(ctx, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.schedule(spPoll("good"), 0)
	ran := &ranLog{}
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		ran.add(job)
		return nil
	}), Options{VisibilityTimeout: time.Second, PollInterval: 100 * time.Millisecond})

	eventually(t, 15*time.Second, "malformed messages dropped and the good job run", func() bool {
		s := w.Stats()
		return s.Malformed == 3 && s.Processed == 1
	})
	time.Sleep(1500 * time.Millisecond)
	if got := ran.all(); len(got) != 1 || got[0].CredentialID != "good" {
		t.Errorf("ran %+v, want only the good job", got)
	}
	for kind, q := range f.queues {
		if n := f.count(q.Jobs); n != 0 {
			t.Errorf("queue of %s holds %d messages, want the malformed ones deleted", kind, n)
		}
		if n := f.count(q.Poison); n != 0 {
			t.Errorf("poison queue of %s holds %d messages, want none: malformed messages are dropped", kind, n)
		}
	}
}

// TestFailingJobPoisoned: a job that fails (or panics) on every delivery is delivered
// MaxDequeueCount times, each after the visibility timeout, then moved intact to the
// poison queue and deleted from its own.
func TestFailingJobPoisoned(t *testing.T) {
	f := newFixture(t)
	failing, panicking := spPoll("fails"), spPoll("panics")
	f.schedule(failing, 0)
	f.schedule(panicking, 0)
	ran := &ranLog{}
	const maxDeliveries = 3
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		ran.add(job)
		if job.CredentialID == "panics" {
			panic("nil finder")
		}
		return fmt.Errorf("table storage: %w", credential.ErrUnavailable)
	}), Options{VisibilityTimeout: time.Second, PollInterval: 100 * time.Millisecond, MaxDequeueCount: maxDeliveries})

	eventually(t, 30*time.Second, "both messages poisoned", func() bool { return w.Stats().Poisoned == 2 })
	// Each delivery tells the job which it is, so the last one's failure is noted, and
	// names itself with a request id of its own.
	ids := map[string]bool{}
	for _, j := range ran.all() {
		if j.Delivery < 1 || j.Delivery > maxDeliveries || j.RequestID == "" || ids[j.RequestID] {
			t.Errorf("job delivered as %d with request id %q", j.Delivery, j.RequestID)
		}
		ids[j.RequestID] = true
	}
	time.Sleep(2500 * time.Millisecond) // a message left behind would be delivered again
	for _, id := range []string{"fails", "panics"} {
		if n := ran.times(id); n != maxDeliveries {
			t.Errorf("job %s ran %d times, want %d", id, n, maxDeliveries)
		}
	}
	q := f.queues[credential.JobSPPoll]
	if n := f.count(q.Jobs); n != 0 {
		t.Errorf("the queue holds %d messages after poisoning, want 0", n)
	}
	var poisoned []string
	for _, m := range f.peek(q.Poison) {
		job, err := queue.Decode(*m.MessageText)
		if err != nil {
			t.Fatalf("poisoned message is not the original: %v", err)
		}
		if want := map[string]credential.Job{"fails": failing, "panics": panicking}[job.CredentialID]; !cmp.Equal(job, want) {
			t.Errorf("poisoned job %+v, want %+v", job, want)
		}
		poisoned = append(poisoned, job.CredentialID)
	}
	slices.Sort(poisoned)
	if !slices.Equal(poisoned, []string{"fails", "panics"}) {
		t.Errorf("poison queue holds %v, want both jobs", poisoned)
	}
	if s := w.Stats(); s.Failed != 2*maxDeliveries || s.Poisoned != 2 || s.Processed != 0 {
		t.Errorf("stats %+v, want %d failed and 2 poisoned", s, 2*maxDeliveries)
	}
}

// TestRetryDelay: a failed job comes back after RetryDelay, long before its visibility
// timeout would have brought it back.
func TestRetryDelay(t *testing.T) {
	f := newFixture(t)
	f.schedule(spPoll("flaky"), 0)
	var mu sync.Mutex
	var at []time.Time
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			return errors.New("first try fails")
		}
		return nil
	}), Options{VisibilityTimeout: 30 * time.Second, RetryDelay: time.Second, PollInterval: 100 * time.Millisecond})

	eventually(t, 10*time.Second, "the job succeeded on its second delivery", func() bool { return w.Stats().Processed == 1 })
	mu.Lock()
	gap := at[1].Sub(at[0])
	mu.Unlock()
	if gap < 500*time.Millisecond || gap > 3*time.Second {
		t.Errorf("second delivery %v after the first, want about RetryDelay (1 s), not the 30 s visibility timeout", gap)
	}
	if s := w.Stats(); s.Failed != 1 || s.Processed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestOverdeliveredMessagePoisonedUnrun: a message already delivered MaxDequeueCount
// times without being settled (its runs outlived the visibility timeout, or the process
// died) goes to the poison queue without running again.
func TestOverdeliveredMessagePoisonedUnrun(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.schedule(spPoll("stuck"), 0)
	q := f.queues[credential.JobSPPoll]
	for range 2 { // two deliveries that never settled
		resp, err := q.Jobs.DequeueMessages(ctx, nil)
		if err != nil || len(resp.Messages) != 1 {
			t.Fatalf("dequeue: %v, %d messages", err, len(resp.Messages))
		}
		m := resp.Messages[0]
		zero := int32(0)
		if _, err := q.Jobs.UpdateMessage(ctx, *m.MessageID, *m.PopReceipt, *m.MessageText, &azqueue.UpdateMessageOptions{VisibilityTimeout: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	var runs atomic.Int64
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		runs.Add(1)
		return nil
	}), Options{VisibilityTimeout: time.Second, PollInterval: 100 * time.Millisecond, MaxDequeueCount: 2})

	eventually(t, 10*time.Second, "the message poisoned", func() bool { return w.Stats().Poisoned == 1 })
	if n := runs.Load(); n != 0 {
		t.Errorf("the job ran %d times, want 0", n)
	}
	if n := f.count(q.Jobs); n != 0 {
		t.Errorf("the queue holds %d messages, want 0", n)
	}
	if n := len(f.peek(q.Poison)); n != 1 {
		t.Errorf("the poison queue holds %d messages, want 1", n)
	}
}

// TestConcurrencyBound: jobs of all three queues share one bound, which is reached and
// never exceeded.
func TestConcurrencyBound(t *testing.T) {
	f := newFixture(t)
	const limit, perQueue = 3, 6
	for i := range perQueue {
		f.schedule(spPoll(fmt.Sprintf("sp%d", i)), 0)
		f.schedule(credential.Job{Kind: credential.JobAccessProbe, OrgID: "o", CredentialID: fmt.Sprintf("ap%d", i), Generation: 1}, 0)
		f.schedule(credential.Job{Kind: credential.JobAppCleanup, OrgID: "o", CredentialID: fmt.Sprintf("ac%d", i), AppObjectID: "a"}, 0)
	}
	var now, peak atomic.Int64
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		return nil
	}), Options{Concurrency: limit, VisibilityTimeout: 10 * time.Second, PollInterval: 100 * time.Millisecond})

	var statsPeak int64
	eventually(t, 30*time.Second, "all jobs processed", func() bool {
		s := w.Stats()
		statsPeak = max(statsPeak, s.InFlight)
		return s.Processed == 3*perQueue
	})
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d jobs ran at once, want exactly the bound %d", p, limit)
	}
	if statsPeak > limit {
		t.Errorf("Stats().InFlight reached %d, over the bound %d", statsPeak, limit)
	}
}

// TestGracefulStop: on stop the worker dequeues nothing more, lets a job in flight
// finish with a context the stop does not cancel, bounds a job that will not finish by
// the visibility timeout, and deletes only the message whose job succeeded.
func TestGracefulStop(t *testing.T) {
	f := newFixture(t)
	const visibility = 3 * time.Second
	f.schedule(spPoll("finishes"), 0)
	f.schedule(spPoll("hangs"), 0)
	f.schedule(spPoll("later"), 6*time.Second) // due after the stop

	started := make(chan string, 2)
	release := make(chan struct{})
	var finishesErr, hangsErr atomic.Value
	var ran ranLog
	w, stop := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		ran.add(job)
		started <- job.CredentialID
		switch job.CredentialID {
		case "finishes":
			<-release
			finishesErr.Store(fmt.Sprint(ctx.Err()))
			return nil
		case "hangs":
			<-ctx.Done()
			hangsErr.Store(ctx.Err())
			return ctx.Err()
		}
		return nil
	}), Options{VisibilityTimeout: visibility, PollInterval: 100 * time.Millisecond})

	for range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the two due jobs did not start")
		}
	}
	stopped := make(chan error, 1)
	stopAt := time.Now()
	go func() { stopped <- stop() }()
	select {
	case <-stopped:
		t.Fatal("Run returned while a job was still in flight")
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(visibility + 5*time.Second):
		t.Fatal("Run did not return once the hanging job's visibility timeout ended")
	}
	if waited := time.Since(stopAt); waited > visibility+2*time.Second {
		t.Errorf("the stop took %v; the jobs in flight are bounded by the %v visibility timeout", waited, visibility)
	}
	if got := finishesErr.Load(); got != "<nil>" {
		t.Errorf("the finishing job's context ended with %v; the stop must not cancel jobs in flight", got)
	}
	if got, _ := hangsErr.Load().(error); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("the hanging job's context ended with %v, want its visibility deadline", got)
	}
	if s := w.Stats(); s.Processed != 1 || s.Failed != 1 || s.InFlight != 0 {
		t.Errorf("stats %+v, want 1 processed and 1 failed", s)
	}

	// Left in the queue: the hanging job's message (delivered once) and the later one
	// (never delivered: nothing dequeues after the stop). The finished one is gone.
	q := f.queues[credential.JobSPPoll]
	var left map[string]int64
	eventually(t, 10*time.Second, "the two unfinished messages visible again", func() bool {
		left = map[string]int64{}
		for _, m := range f.peek(q.Jobs) {
			job, err := queue.Decode(*m.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			left[job.CredentialID] = *m.DequeueCount
		}
		return len(left) == 2
	})
	if want := map[string]int64{"hangs": 1, "later": 0}; !cmp.Equal(left, want) {
		t.Errorf("left in the queue (credential: dequeue count) %v, want %v", left, want)
	}
	if n := ran.times("later"); n != 0 {
		t.Error("a job due after the stop ran")
	}
}

// TestDelayedMessagesPickedUpInTime: a message scheduled with a visibility delay runs
// within PollInterval (plus a second of slack) of its due time, and not before it. The
// messages fall due at staggered moments, so some land just after an empty poll.
func TestDelayedMessagesPickedUpInTime(t *testing.T) {
	f := newFixture(t)
	const poll = 500 * time.Millisecond
	var mu sync.Mutex
	ranAt := map[string]time.Time{}
	w, _ := f.start(runnerFunc(func(ctx context.Context, job credential.Job) error {
		mu.Lock()
		defer mu.Unlock()
		ranAt[job.CredentialID] = time.Now()
		return nil
	}), Options{PollInterval: poll})
	time.Sleep(700 * time.Millisecond) // the worker is idle, between empty polls

	due := map[string]time.Time{}
	for i := range 8 {
		id, delay := fmt.Sprintf("due%d", i), time.Second+time.Duration(i%2)*time.Second
		due[id] = time.Now().Add(delay)
		f.schedule(spPoll(id), delay)
		time.Sleep(300 * time.Millisecond)
	}
	eventually(t, 15*time.Second, "the delayed jobs ran", func() bool { return w.Stats().Processed == int64(len(due)) })
	mu.Lock()
	defer mu.Unlock()
	for id, d := range due {
		late := ranAt[id].Sub(d)
		t.Logf("job %s ran %v after its due time", id, late.Round(time.Millisecond))
		if late > poll+time.Second {
			t.Errorf("job %s ran %v after its due time, want within %v", id, late, poll+time.Second)
		}
		if late < -250*time.Millisecond {
			t.Errorf("job %s ran %v before its due time", id, -late)
		}
	}
}

// TestNewRefusesBadOptions: a worker needs queues, a runner and sane options.
// TestPoisonRuleIsTheHosts: by default a message gets the Functions host's
// maxDequeueCount of deliveries (host.json holds the same number) before it moves to
// "<queue>-poison".
func TestPoisonRuleIsTheHosts(t *testing.T) {
	w, err := New(map[credential.JobKind]Queue{credential.JobSPPoll: {Name: "sppoll", Jobs: &azqueue.QueueClient{}, Poison: &azqueue.QueueClient{}}},
		runnerFunc(func(context.Context, credential.Job) error { return nil }), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.opts.MaxDequeueCount != queue.MaxDequeueCount || queue.MaxDequeueCount != 5 || queue.PoisonSuffix != "-poison" {
		t.Fatalf("max dequeue count %d (queue's %d), poison suffix %q; want the host's 5 and -poison", w.opts.MaxDequeueCount, queue.MaxDequeueCount, queue.PoisonSuffix)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	runner := runnerFunc(func(context.Context, credential.Job) error { return nil })
	q := map[credential.JobKind]Queue{credential.JobSPPoll: {Name: "q", Jobs: &azqueue.QueueClient{}, Poison: &azqueue.QueueClient{}}}
	for name, build := range map[string]func() (*Worker, error){
		"no queues": func() (*Worker, error) { return New(nil, runner, Options{}) },
		"no runner": func() (*Worker, error) { return New(q, nil, Options{}) },
		"no poison queue": func() (*Worker, error) {
			return New(map[credential.JobKind]Queue{credential.JobSPPoll: {Jobs: &azqueue.QueueClient{}}}, runner, Options{})
		},
		"negative workers": func() (*Worker, error) { return New(q, runner, Options{Concurrency: -1}) },
	} {
		if _, err := build(); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	w, err := New(q, runner, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := w.opts; o.Concurrency != DefaultConcurrency || o.VisibilityTimeout != DefaultVisibilityTimeout ||
		o.PollInterval != DefaultPollInterval || o.RetryDelay != DefaultRetryDelay || o.MaxDequeueCount != DefaultMaxDequeueCount {
		t.Errorf("defaults %+v", o)
	}
}

// memQueue is a queue in memory: its messages are dequeued once each; deletes, updates and
// enqueues succeed. With held set, a dequeue blocks until held is closed or its context
// ends, as a storage call that hangs.
type memQueue struct {
	mu   sync.Mutex
	msgs []string
	held chan struct{}
}

func (q *memQueue) DequeueMessages(ctx context.Context, o *azqueue.DequeueMessagesOptions) (azqueue.DequeueMessagesResponse, error) {
	if q.held != nil {
		select {
		case <-q.held:
		case <-ctx.Done():
			return azqueue.DequeueMessagesResponse{}, ctx.Err()
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*azqueue.DequeuedMessage
	for len(q.msgs) > 0 && len(out) < int(*o.NumberOfMessages) {
		text := q.msgs[0]
		q.msgs = q.msgs[1:]
		out = append(out, &azqueue.DequeuedMessage{MessageID: ptr(fmt.Sprint(len(out))), PopReceipt: ptr("r"), MessageText: &text, DequeueCount: ptr(int64(1))})
	}
	return azqueue.DequeueMessagesResponse{Messages: out}, nil
}

func (q *memQueue) DeleteMessage(context.Context, string, string, *azqueue.DeleteMessageOptions) (azqueue.DeleteMessageResponse, error) {
	return azqueue.DeleteMessageResponse{}, nil
}

func (q *memQueue) UpdateMessage(context.Context, string, string, string, *azqueue.UpdateMessageOptions) (azqueue.UpdateMessageResponse, error) {
	return azqueue.UpdateMessageResponse{}, nil
}

func (q *memQueue) EnqueueMessage(context.Context, string, *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error) {
	return azqueue.EnqueueMessagesResponse{}, nil
}

// TestHungDequeueHoldsNoOtherQueuesSlots: three queues' dequeues hang (a storage call held
// without an answer) while the fourth queue has a job; with four slots, the job runs at
// once. Before each poller took only its share of the slots, the first poller to ask took
// them all for its hanging dequeue, and the job waited for it.
func TestHungDequeueHoldsNoOtherQueuesSlots(t *testing.T) {
	for round := range 5 {
		held := make(chan struct{})
		body, err := queue.Encode(spPoll(fmt.Sprintf("waiting-%d", round)))
		if err != nil {
			t.Fatal(err)
		}
		queues := map[credential.JobKind]Queue{credential.JobSPPoll: {Name: "sppoll", Jobs: &memQueue{msgs: []string{body}}, Poison: &memQueue{}}}
		for _, k := range []credential.JobKind{credential.JobAccessProbe, credential.JobAppCleanup, credential.JobHealthProbe} {
			queues[k] = Queue{Name: string(k), Jobs: &memQueue{held: held}, Poison: &memQueue{}}
		}
		ran := make(chan struct{}, 1)
		w, err := New(queues, runnerFunc(func(ctx context.Context, job credential.Job) error {
			ran <- struct{}{}
			return nil
		}), Options{Concurrency: 4, PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Errorf("round %d: the job did not run in 5 s while the other queues' dequeues hung", round)
		}
		close(held)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
