// Package azurequeue is the Azure Storage queue implementation of credential.Scheduler: one
// queue per row of internal/queue's job table, each message the job's wire format with a
// time-to-live past its deadline. A poll that must happen again is a new message with a
// visibility delay: nothing waits in-process.
package azurequeue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// ttlPastDeadline keeps a window's messages alive a while after its deadline, so the
// message that ends the window is still delivered.
const ttlPastDeadline = time.Hour

// maxVisibilityDelay is Azure's limit on a message's initial invisibility (7 days).
const maxVisibilityDelay = 7 * 24 * time.Hour

// Queues is the Storage-queue implementation of credential.Scheduler.
type Queues struct {
	clients map[credential.JobKind]*azqueue.QueueClient
	now     func() time.Time
}

var _ credential.Scheduler = (*Queues)(nil)

// Options adjust Open.
type Options struct {
	// NamePrefix goes before every queue name; tests use it to get queues of their own.
	// The Functions bindings name the queues without a prefix.
	NamePrefix string
	// Now is the clock for message lifetimes; time.Now when nil.
	Now func() time.Time
}

// Open returns the job queues of svc, creating any that are missing.
func Open(ctx context.Context, svc *azqueue.ServiceClient, opts Options) (*Queues, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Queues{clients: map[credential.JobKind]*azqueue.QueueClient{}, now: opts.Now}
	for _, jq := range queue.JobQueues {
		name := opts.NamePrefix + jq.Queue
		c := svc.NewQueueClient(name)
		if _, err := c.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		q.clients[jq.Kind] = c
	}
	return q, nil
}

// Client returns the queue of a job kind, for the workers that consume it.
func (q *Queues) Client(kind credential.JobKind) *azqueue.QueueClient { return q.clients[kind] }

// Schedule enqueues j, invisible for delay. Windowed jobs live until an hour past their
// deadline; clean-up jobs never expire.
func (q *Queues) Schedule(ctx context.Context, j credential.Job, delay time.Duration) error {
	c, ok := q.clients[j.Kind]
	if !ok {
		return fmt.Errorf("schedule: no queue for job kind %q", j.Kind)
	}
	body, err := queue.Encode(j)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", j.Kind, err)
	}
	delay = min(max(delay, 0), maxVisibilityDelay)
	visibility := int32(math.Ceil(delay.Seconds()))
	ttl := int32(-1)
	if !j.Deadline.IsZero() {
		life := j.Deadline.Sub(q.now()) + ttlPastDeadline
		ttl = int32(max(life, delay+ttlPastDeadline).Seconds())
	}
	if _, err := c.EnqueueMessage(ctx, body, &azqueue.EnqueueMessageOptions{VisibilityTimeout: &visibility, TimeToLive: &ttl}); err != nil {
		return fmt.Errorf("enqueue %s job for credential %s: %w", j.Kind, j.CredentialID, unavailable(err))
	}
	return nil
}

// unavailable is a failed queue call as the domain's ProviderError of Azure Storage, worth
// trying again later, with the service's code and request id when it answered.
func unavailable(err error) error {
	pe := &credential.ProviderError{Kind: credential.ErrUnavailable, Service: credential.ServiceStorage, Err: err}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		pe.Code, pe.Status = re.ErrorCode, re.StatusCode
		if re.RawResponse != nil {
			pe.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
		}
	}
	return pe
}
