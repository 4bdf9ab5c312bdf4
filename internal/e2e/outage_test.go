package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
	"github.com/activeloopai/azcreds/internal/queue"
)

// Helpers for onboardings that go on while the handler or its storage is down: the
// wizard's calls are retried the way a browser's would be, and what failed is counted.

// mayRecover says whether an API call may succeed when tried again: no answer at all
// (the handler is down or restarting) or a 5xx.
func mayRecover(err error) bool {
	var apiErr *walkthrough.Error
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500
	}
	return err != nil
}

// outageStats counts what the wizard met while something was down.
type outageStats struct {
	unanswered  atomic.Int64 // no HTTP answer
	unavailable atomic.Int64 // 503
	other5xx    atomic.Int64
}

func (s *outageStats) record(err error) {
	var apiErr *walkthrough.Error
	switch {
	case !errors.As(err, &apiErr):
		s.unanswered.Add(1)
	case apiErr.Status == 503:
		s.unavailable.Add(1)
	default:
		s.other5xx.Add(1)
	}
}

func (s *outageStats) String() string {
	return fmt.Sprintf("%d calls unanswered, %d answered 503, %d other 5xx", s.unanswered.Load(), s.unavailable.Load(), s.other5xx.Load())
}

// retryThrough calls f until it succeeds or fails for good, or ctx ends.
func retryThrough(ctx context.Context, stats *outageStats, f func() error) error {
	for {
		err := f()
		if !mayRecover(err) {
			return err
		}
		stats.record(err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitUntil polls the credential, through outages, until done says so.
func waitUntil(ctx context.Context, api *walkthrough.API, id string, stats *outageStats, done func(walkthrough.Credential) bool) (walkthrough.Credential, error) {
	for {
		var c walkthrough.Credential
		err := retryThrough(ctx, stats, func() (err error) { c, err = api.Get(ctx, id); return err })
		if err != nil {
			return c, err
		}
		if done(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("credential %s still %s/%s (%s): %w", id, c.State, c.Status(), c.LastError, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// attempted is a waitUntil condition: the current window has made n attempts.
func attempted(n int) func(walkthrough.Credential) bool {
	return func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= n }
}

// submitStorageThrough submits the storage form until it lands. A submit whose answer was lost
// is sent again, as a wizard does: that starts one more window, never a double transition.
func (o *onboarding) submitStorageThrough(ctx context.Context, stats *outageStats) error {
	form := walkthrough.StorageForm{SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, StorageAccount: o.account, ContainerName: o.container}
	err := retryThrough(ctx, stats, func() error {
		_, err := o.api.SubmitStorage(ctx, o.cred.ID, form)
		return err
	})
	var apiErr *walkthrough.Error
	if errors.As(err, &apiErr) && apiErr.Status == 409 {
		// An earlier submit landed and its probe already finished.
		return nil
	}
	return err
}

// checkTransitions checks a credential's events: one chain (each from is the previous
// to), no transition of a window recorded twice, and the onboarding's steps in order,
// with only windows restarted by a resubmit in between.
func checkTransitions(evs []walkthrough.Event) error {
	seen := map[string]bool{}
	prev := ""
	var steps []string
	for _, e := range evs {
		key := fmt.Sprintf("%s>%s@%d", e.From, e.To, e.Generation)
		if seen[key] {
			return fmt.Errorf("transition %s recorded twice", key)
		}
		seen[key] = true
		if e.From != prev {
			return fmt.Errorf("events do not chain at %s (previous state %q)", key, prev)
		}
		prev = e.To
		if e.From == e.To && (e.Cause == "submit_storage" || e.Cause == "submit_tenant") {
			continue // a resubmit: a new window
		}
		steps = append(steps, e.From+">"+e.To+":"+e.Cause)
	}
	want := ">draft:created draft>sp_pending:submit_tenant sp_pending>sp_verified:sp_found " +
		"sp_verified>access_pending:submit_storage access_pending>verified:access_confirmed"
	if got := strings.Join(steps, " "); got != want {
		return fmt.Errorf("steps %q, want %q", got, want)
	}
	return nil
}

// poisoned counts the messages in the job queues' poison queues of account.
func poisoned(ctx context.Context, env testenv.Env, account string) (map[string]int, error) {
	svc, err := azqueue.NewServiceClientFromConnectionString(env.ConnectionString(account), nil)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, jq := range queue.JobQueues {
		name := jq.Queue + queue.PoisonSuffix
		p, err := svc.NewQueueClient(name).GetProperties(ctx, nil)
		if err != nil {
			if queueerror.HasCode(err, queueerror.QueueNotFound) {
				continue
			}
			return nil, err
		}
		if n := int(*p.ApproximateMessagesCount); n > 0 {
			out[name] = n
		}
	}
	return out, nil
}

// jobFigures counts, over a handler's log files, the job deliveries that followed an
// earlier delivery of the same message (dequeue count above 1), the follow-ups such a
// redelivery scheduled again, and the stale or replayed jobs dropped.
type jobFigures struct{ redelivered, rescheduled, dropped int }

func countJobs(paths []string) (jobFigures, error) {
	var f jobFigures
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return f, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec struct {
				Msg          string `json:"msg"`
				DequeueCount int    `json:"dequeue_count"`
			}
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch {
			case rec.Msg == "queue job done" && rec.DequeueCount > 1:
				f.redelivered++
			case strings.HasPrefix(rec.Msg, "redelivered job: scheduling"):
				f.rescheduled++
			case rec.Msg == "stale job dropped":
				f.dropped++
			}
		}
	}
	return f, nil
}
