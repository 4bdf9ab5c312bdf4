package azurequeue

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/queue"
)

// Poison reads the poison queues of the job queues, where the Functions host and the
// standalone worker set a message aside after its last failed delivery: the
// credential.PoisonQueue of the reconciler.
type Poison struct {
	byName  map[string]*azqueue.QueueClient
	hideFor int32
}

var _ credential.PoisonQueue = (*Poison)(nil)

// poisonVisibility hides a poisoned message while the reconciler handles it; one it could
// not handle it releases at once (Release), and one left by a reconciler that died comes
// back after this.
const poisonVisibility = 5 * time.Minute

// OpenPoison returns the poison queue of every job queue of svc (named as Open names the
// job queues, with the same prefix), creating any that is missing.
func OpenPoison(ctx context.Context, svc *azqueue.ServiceClient, opts Options) (*Poison, error) {
	p := &Poison{byName: map[string]*azqueue.QueueClient{}, hideFor: int32(poisonVisibility.Seconds())}
	for _, jq := range queue.JobQueues {
		name := opts.NamePrefix + jq.Queue + queue.PoisonSuffix
		c := svc.NewQueueClient(name)
		if _, err := c.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		p.byName[name] = c
	}
	return p, nil
}

// Poisoned takes up to max messages off the poison queues, hidden for a while from other
// readers. A message that holds no job comes back with Err set.
func (p *Poison) Poisoned(ctx context.Context, max int) ([]credential.PoisonedJob, error) {
	var out []credential.PoisonedJob
	for name, c := range p.byName {
		for len(out) < max {
			n := int32(min(max-len(out), 32))
			resp, err := c.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &p.hideFor})
			if err != nil {
				return out, fmt.Errorf("read poison queue %s: %w", name, unavailable(err))
			}
			for _, m := range resp.Messages {
				if m == nil || m.MessageID == nil || m.PopReceipt == nil {
					continue
				}
				pj := credential.PoisonedJob{Queue: name, MessageID: *m.MessageID, Receipt: *m.PopReceipt}
				if m.InsertionTime != nil {
					pj.PoisonedAt = m.InsertionTime.UTC()
				}
				text := ""
				if m.MessageText != nil {
					text = *m.MessageText
				}
				pj.Text = text
				pj.Job, pj.Err = queue.Decode(text)
				out = append(out, pj)
			}
			if len(resp.Messages) < int(n) {
				break
			}
		}
	}
	return out, nil
}

// Remove deletes a handled poisoned message. One already gone, or taken by another reader
// since, is no error.
func (p *Poison) Remove(ctx context.Context, pj credential.PoisonedJob) error {
	c, ok := p.byName[pj.Queue]
	if !ok {
		return fmt.Errorf("remove poisoned message %s: no poison queue %q", pj.MessageID, pj.Queue)
	}
	_, err := c.DeleteMessage(ctx, pj.MessageID, pj.Receipt, nil)
	if err != nil && !queueerror.HasCode(err, queueerror.MessageNotFound, queueerror.PopReceiptMismatch) {
		return fmt.Errorf("remove poisoned message %s from %s: %w", pj.MessageID, pj.Queue, unavailable(err))
	}
	return nil
}

// Release makes a poisoned message visible again at once, for the next read.
func (p *Poison) Release(ctx context.Context, pj credential.PoisonedJob) error {
	c, ok := p.byName[pj.Queue]
	if !ok {
		return fmt.Errorf("release poisoned message %s: no poison queue %q", pj.MessageID, pj.Queue)
	}
	zero := int32(0)
	_, err := c.UpdateMessage(ctx, pj.MessageID, pj.Receipt, pj.Text, &azqueue.UpdateMessageOptions{VisibilityTimeout: &zero})
	if err != nil && !queueerror.HasCode(err, queueerror.MessageNotFound, queueerror.PopReceiptMismatch) {
		return fmt.Errorf("release poisoned message %s of %s: %w", pj.MessageID, pj.Queue, unavailable(err))
	}
	return nil
}
