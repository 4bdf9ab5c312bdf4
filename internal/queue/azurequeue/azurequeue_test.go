package azurequeue

import (
	"context"
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
