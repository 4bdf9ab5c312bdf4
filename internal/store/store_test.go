package store

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// newStore opens a store on a fresh table of the test Azurite, removed after the test.
func newStore(t *testing.T) *Store {
	t.Helper()
	env := testenv.Azurite(t)
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "cred")
	ctx := context.Background()
	s, err := Open(ctx, svc, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return s
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sample(org, name string) *credential.Credential {
	bp, _ := credential.ParseBasePath("az://bloblake/lakedata/tables")
	return &credential.Credential{
		OrgID: org, ID: uuid.NewString(), Name: name, StorageType: credential.StorageTypeAzureFederated,
		BasePath: bp, State: credential.StateDraft, CreatedAt: t0, UpdatedAt: t0,
	}
}

func insert(t *testing.T, s *Store, c *credential.Credential) {
	t.Helper()
	if err := s.Insert(context.Background(), c, credential.EventRecord{Time: c.CreatedAt, To: credential.StateDraft, Cause: credential.EventCreated, RequestID: "req-create"}); err != nil {
		t.Fatalf("insert %s: %v", c.Name, err)
	}
}

func TestInnerBatchError(t *testing.T) {
	body := "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n--changesetresponse_2\r\n" +
		"Content-Type: application/http\r\n\r\nHTTP/1.1 412 Precondition Failed\r\nContent-ID: 1\r\n\r\n" +
		`{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"x"}}}` + "\r\n--changesetresponse_2--\r\n--batchresponse_1--\r\n"
	got, ok := innerBatchError([]byte(body))
	if !ok || got.Status != 412 || got.Code != "UpdateConditionNotSatisfied" {
		t.Fatalf("innerBatchError = %+v, %v", got, ok)
	}
	if _, ok := innerBatchError([]byte("HTTP/1.1 204 No Content\r\n\r\n")); ok {
		t.Fatal("a successful batch read as an error")
	}
}
