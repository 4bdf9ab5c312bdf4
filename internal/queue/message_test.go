package queue

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
)

func TestEncodeDecode(t *testing.T) {
	jobs := []credential.Job{
		{Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: "c1", Generation: 3, Attempt: 2, Deadline: time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC)},
		{Kind: credential.JobAccessProbe, OrgID: "org-a", CredentialID: "c1", Generation: 4, Deadline: time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC)},
		{Kind: credential.JobAppCleanup, OrgID: "org-a", CredentialID: "c1", AppObjectID: "obj"},
		{Kind: credential.JobHealthProbe, OrgID: "org-a", CredentialID: "c1", Generation: 2,
			IssuedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Deadline: time.Date(2026, 11, 23, 12, 3, 0, 0, time.UTC)},
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
		b64(`{"kind":"health_probe","org_id":"o","credential_id":"c","generation":1}`),
	} {
		if _, err := Decode(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", body, err)
		}
	}
}
