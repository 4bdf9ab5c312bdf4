package azurequeue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/queue"
)

// TestScheduleDelay: a scheduled job stays invisible for its delay, then arrives intact.
func TestScheduleDelay(t *testing.T) {
	env := testenv.Azurite(t)
	svc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	qs, err := Open(ctx, svc, Options{NamePrefix: testenv.UniqueName(t, "q")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range queue.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	job := credential.Job{Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: "c1", Generation: 1, Deadline: time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)}
	if err := qs.Schedule(ctx, job, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := qs.Schedule(ctx, credential.Job{Kind: credential.JobAppCleanup, OrgID: "o", CredentialID: "c", AppObjectID: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	c := qs.Client(credential.JobSPPoll)
	resp, err := c.DequeueMessage(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 0 {
		t.Fatal("a delayed job was visible at once")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err = c.DequeueMessage(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 1 {
			m := resp.Messages[0]
			got, err := queue.Decode(*m.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(job, got); diff != "" {
				t.Fatalf("job (-want +got):\n%s", diff)
			}
			if m.ExpirationTime == nil || m.ExpirationTime.Before(job.Deadline) {
				t.Fatalf("message expires at %v, before the deadline %v", m.ExpirationTime, job.Deadline)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the delayed job never became visible")
}

// TestPoisonQueues: the reader finds what the host (or the worker) set aside in each job
// queue's poison queue, the job as it was queued and when it was set aside, and a message
// that holds no job; a handled message is removed, one not handled is hidden a while.
func TestPoisonQueues(t *testing.T) {
	env := testenv.Azurite(t)
	svc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := testenv.UniqueName(t, "p")
	p, err := OpenPoison(ctx, svc, Options{NamePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, jq := range queue.JobQueues {
			_, _ = svc.NewQueueClient(prefix+jq.Queue+queue.PoisonSuffix).Delete(context.Background(), nil)
		}
	})
	job := credential.Job{Kind: credential.JobAccessProbe, OrgID: "org-a", CredentialID: "c1", Generation: 2, Attempt: 3,
		Deadline: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	body, err := queue.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	probePoison := svc.NewQueueClient(prefix + "accessprobe" + queue.PoisonSuffix)
	for _, text := range []string{body, "not a job"} {
		if _, err := probePoison.EnqueueMessage(ctx, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := p.Poisoned(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d poisoned messages, want 2: %+v", len(got), got)
	}
	var good, bad credential.PoisonedJob
	for _, pj := range got {
		if pj.Err == nil {
			good = pj
		} else {
			bad = pj
		}
	}
	if diff := cmp.Diff(job, good.Job); diff != "" {
		t.Errorf("poisoned job (-want +got):\n%s", diff)
	}
	if good.Queue != prefix+"accessprobe-poison" || good.MessageID == "" || good.PoisonedAt.IsZero() {
		t.Errorf("poisoned message %+v", good)
	}
	if !errors.Is(bad.Err, queue.ErrMalformed) {
		t.Errorf("a message without a job: %v, want malformed", bad.Err)
	}
	if err := p.Remove(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(ctx, good); err != nil {
		t.Fatalf("removing it again: %v, want no error", err)
	}
	// The unremoved one is hidden from the next read, and still in the queue.
	if again, err := p.Poisoned(ctx, 10); err != nil || len(again) != 0 {
		t.Fatalf("read again: %+v %v, want nothing (one removed, one hidden)", again, err)
	}
	props, err := probePoison.GetProperties(ctx, nil)
	if err != nil || *props.ApproximateMessagesCount != 1 {
		t.Fatalf("poison queue holds %v messages (%v), want the unhandled one", props.ApproximateMessagesCount, err)
	}
	// Released, it is read again at once, as it was.
	if err := p.Release(ctx, bad); err != nil {
		t.Fatal(err)
	}
	again, err := p.Poisoned(ctx, 10)
	if err != nil || len(again) != 1 || again[0].MessageID != bad.MessageID || again[0].Text != "not a job" {
		t.Fatalf("read after a release: %+v %v, want the released message", again, err)
	}
}
