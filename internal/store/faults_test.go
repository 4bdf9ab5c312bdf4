package store

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/faultproxy"
	"github.com/activeloopai/azcreds/internal/testenv"
)

// newProxiedStore opens a store on a fresh table reached through a fault proxy in front
// of the test Azurite, with the SDK's default retry policy (quicker delays).
func newProxiedStore(t *testing.T) (*Store, *faultproxy.Proxy) {
	t.Helper()
	env := testenv.Azurite(t)
	p, err := faultproxy.New(faultproxy.Config{Targets: map[faultproxy.Service]string{faultproxy.ServiceTable: env.TableEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p.Handler(faultproxy.ServiceTable))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	env.TableEndpoint = srv.URL
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnectionString(testenv.DevAccount), &aztables.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "lost")
	s, err := Open(context.Background(), svc, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return s, p
}

func lose(t *testing.T, p *faultproxy.Proxy, op string, f faultproxy.Fault) {
	t.Helper()
	if err := p.Inject(faultproxy.ServiceTable, op, f, 1); err != nil {
		t.Fatal(err)
	}
}

// TestInsertWhoseAnswerWasLost: the insert transaction lands, its answer is lost, and the
// SDK's retry meets the rows it wrote (409 EntityAlreadyExists). That is our own row, not
// a name taken by another credential.
func TestInsertWhoseAnswerWasLost(t *testing.T) {
	for _, f := range []faultproxy.Fault{faultproxy.FaultLostBusy, faultproxy.FaultLostDrop} {
		t.Run(f.String(), func(t *testing.T) {
			s, p := newProxiedStore(t)
			c := sample("org-a", "prod")
			lose(t, p, "POST batch", f)
			insert(t, s, c)
			got, err := s.Get(context.Background(), "org-a", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ETag != c.ETag || got.Revision != 1 {
				t.Errorf("after the insert: ETag %q (held %q), revision %d", got.ETag, c.ETag, got.Revision)
			}
			evs, err := s.Events(context.Background(), "org-a", c.ID)
			if err != nil || len(evs) != 1 {
				t.Errorf("events %v (%v), want the creation once", evs, err)
			}
			if p.Stats().Services[faultproxy.ServiceTable].OperationFaults["POST batch"] != 1 {
				t.Error("the fault did not fire")
			}
			// A real duplicate name is still refused.
			dup := sample("org-a", "prod")
			err = s.Insert(context.Background(), dup, credential.EventRecord{Time: t0, To: credential.StateDraft, Cause: credential.EventCreated})
			if !errors.Is(err, credential.ErrConflict) {
				t.Errorf("duplicate name: %v, want ErrConflict", err)
			}
		})
	}
}

// TestUpdateWhoseAnswerWasLost: a conditional update lands, its answer is lost, and the
// SDK's retry with the same ETag fails 412. The write is ours and it stands, with its
// event once; a write that really met another one is still a conflict.
func TestUpdateWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	t.Run("without event", func(t *testing.T) {
		s, p := newProxiedStore(t)
		c := sample("org-a", "prod")
		insert(t, s, c)
		c.App = credential.App{ObjectID: "obj", AppID: "app"}
		lose(t, p, "PUT entity", faultproxy.FaultLostBusy)
		if err := s.Update(ctx, c, nil); err != nil {
			t.Fatalf("update: %v", err)
		}
		got, err := s.Get(ctx, "org-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ETag != c.ETag || got.App.AppID != "app" || got.Revision != c.Revision || c.Revision != 2 {
			t.Errorf("stored %+v, held ETag %q revision %d", got, c.ETag, c.Revision)
		}
		// The ETag held is good for the next write.
		c.Name = "prod"
		if err := s.Update(ctx, c, nil); err != nil {
			t.Errorf("next update: %v", err)
		}
	})
	t.Run("with event", func(t *testing.T) {
		s, p := newProxiedStore(t)
		c := sample("org-a", "prod")
		insert(t, s, c)
		c.State = credential.StateSPPending
		c.TenantID = "t"
		lose(t, p, "POST batch", faultproxy.FaultLostDrop)
		ev := credential.EventRecord{Time: t0, From: credential.StateDraft, To: credential.StateSPPending, Cause: credential.EventSubmitTenant}
		if err := s.Update(ctx, c, &ev); err != nil {
			t.Fatalf("update: %v", err)
		}
		evs, err := s.Events(ctx, "org-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var causes []credential.Event
		for _, e := range evs {
			causes = append(causes, e.Cause)
		}
		if diff := cmp.Diff([]credential.Event{credential.EventCreated, credential.EventSubmitTenant}, causes); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("a real conflict stays one", func(t *testing.T) {
		s, _ := newProxiedStore(t)
		c := sample("org-a", "prod")
		insert(t, s, c)
		stale := *c
		c.TenantID = "first"
		if err := s.Update(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		stale.TenantID = "second"
		if err := s.Update(ctx, &stale, nil); !errors.Is(err, credential.ErrConflict) {
			t.Errorf("stale update: %v, want ErrConflict", err)
		}
		if stale.Revision != 1 {
			t.Errorf("revision after a failed update = %d, want 1", stale.Revision)
		}
	})
}

// TestCountWhenAnswerWasLost: a transaction that moves a counter lands and its answer is
// lost; the SDK's retry fails against what the first attempt wrote. The write stands, and
// it was counted once: an insert that took the last place is not refused as over the
// limit by its own retry, a delete frees one place, a workspace counts once.
func TestCountWhenAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	for _, f := range []faultproxy.Fault{faultproxy.FaultLostBusy, faultproxy.FaultLostDrop} {
		t.Run(f.String(), func(t *testing.T) {
			s, p := newProxiedStore(t)
			s.limits = Limits{Credentials: 2, Workspaces: 1}
			insert(t, s, sample("org-a", "first"))
			last := sample("org-a", "last")
			lose(t, p, "POST batch", f)
			insert(t, s, last)
			if got := counted(t, s, "org-a", credentialCounter); got != 2 {
				t.Errorf("counter after the lost insert %d, want 2", got)
			}

			fresh, err := s.Get(ctx, "org-a", last.ID)
			if err != nil {
				t.Fatal(err)
			}
			lose(t, p, "POST batch", f)
			if err := s.Delete(ctx, fresh); err != nil && !errors.Is(err, credential.ErrNotFound) && !errors.Is(err, credential.ErrConflict) {
				t.Fatalf("lost delete: %v", err)
			}
			if _, err := s.Get(ctx, "org-a", last.ID); !errors.Is(err, credential.ErrNotFound) {
				t.Fatalf("the deleted credential: %v", err)
			}
			if got := counted(t, s, "org-a", credentialCounter); got != 1 {
				t.Errorf("counter after the lost delete %d, want 1", got)
			}

			lose(t, p, "POST batch", f)
			w := &credential.Workspace{OrgID: "org-a", ID: "ws", CreatedAt: t0, UpdatedAt: t0}
			if err := s.InsertWorkspace(ctx, w, nil); err != nil {
				t.Fatalf("lost workspace insert: %v", err)
			}
			if got := counted(t, s, "org-a", workspaceCounter); got != 1 {
				t.Errorf("workspace counter %d, want 1", got)
			}
			if n := p.Stats().Services[faultproxy.ServiceTable].OperationFaults["POST batch"]; n != 3 {
				t.Errorf("%d faults fired, want 3", n)
			}
		})
	}
}

// TestDeleteWhoseAnswerWasLost: the delete's transaction lands, its answer is lost, and
// the SDK's retry fails on the tombstone it wrote (412). The delete is ours and it stands.
func TestDeleteWhoseAnswerWasLost(t *testing.T) {
	for _, f := range []faultproxy.Fault{faultproxy.FaultLostBusy, faultproxy.FaultLostDrop} {
		t.Run(f.String(), func(t *testing.T) {
			s, p := newProxiedStore(t)
			ctx := context.Background()
			c := sample("org-a", "prod")
			insert(t, s, c)
			if err := s.SetOrgDefault(ctx, c); err != nil {
				t.Fatal(err)
			}
			fresh, _ := s.Get(ctx, "org-a", c.ID)
			lose(t, p, "POST batch", f)
			if err := s.Delete(ctx, fresh); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if p.Stats().Services[faultproxy.ServiceTable].OperationFaults["POST batch"] != 1 {
				t.Error("the fault did not fire")
			}
			if _, err := s.Tombstone(ctx, "org-a", c.ID); err != nil {
				t.Errorf("tombstone: %v", err)
			}
			if def, err := s.OrgDefault(ctx, "org-a"); err != nil || def != "" {
				t.Errorf("org default %q, %v", def, err)
			}
			// Another writer's delete is still a conflict.
			if err := s.Delete(ctx, fresh); !errors.Is(err, credential.ErrConflict) {
				t.Errorf("a second delete: %v, want ErrConflict", err)
			}
		})
	}
}
