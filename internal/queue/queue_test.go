package queue

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/testenv"
)

func TestEncodeDecode(t *testing.T) {
	jobs := []credential.Job{
		{Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: "c1", Generation: 3, Deadline: time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC)},
		{Kind: credential.JobAccessProbe, OrgID: "org-a", CredentialID: "c1", Generation: 4, Deadline: time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC)},
		{Kind: credential.JobAppCleanup, OrgID: "org-a", CredentialID: "c1", AppObjectID: "obj"},
	}
	for _, j := range jobs {
		body, err := Encode(j)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := base64.StdEncoding.DecodeString(body); err != nil {
			t.Fatalf("body is not base64: %v", err)
		}
		got, err := Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(j, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, body := range []string{
		"not base64!",
		b64("not json"),
		b64(`{"kind":"sp_poll","org_id":"o"}`),
		b64(`{"kind":"bogus","org_id":"o","credential_id":"c"}`),
		b64(`{"kind":"app_cleanup","org_id":"o","credential_id":"c"}`),
	} {
		if _, err := Decode(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", body, err)
		}
	}
}

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
		for _, k := range Kinds() {
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
			got, err := Decode(*m.MessageText)
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
