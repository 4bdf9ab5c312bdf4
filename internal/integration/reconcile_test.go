package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// TestReconcilerStorageCost measures, through the counting proxy, the storage
// transactions of one reconciliation: reading the four poison queues, one page of the
// open-window index, one read per indexed credential, a message per window it restarts and
// a delete per row of ended work. It does not depend on how many credentials exist: the
// same onboardings among 10 or 300 verified credentials cost the same. The figures for
// 100,000 credentials of which 100 onboard are computed from these in docs/RELIABILITY.md.
func TestReconcilerStorageCost(t *testing.T) {
	for _, others := range []int{10, 300} {
		t.Run(fmt.Sprintf("%d other credentials", others), func(t *testing.T) {
			p := proxy(t, time.Second)
			f := newFixture(t, credential.Config{}, options{proxy: p}, func(ports *credentialtest.Ports, f *fixture) {
				ports.Scheduler = credentialtest.WithoutBackstops(f.queues)
			})
			ctx := context.Background()
			// Verified credentials, which the index knows nothing of.
			for i := range others {
				c := &credential.Credential{OrgID: fmt.Sprintf("other-%d", i%7), ID: uuid.NewString(), Name: fmt.Sprintf("v%d", i),
					StorageType: credential.StorageTypeAzureFederated, State: credential.StateVerified, CreatedAt: f.fake.Clock.Now(), UpdatedAt: f.fake.Clock.Now()}
				c.BasePath, _ = credential.ParseBasePath("az://bloblake/lakedata")
				if err := f.store.Insert(ctx, c, credential.EventRecord{Time: f.fake.Clock.Now(), To: credential.StateVerified, Cause: credential.EventCreated}); err != nil {
					t.Fatal(err)
				}
			}
			// Ten onboardings: eight in their SP window, one whose chain was lost, one done.
			const onboarding = 10
			var lost, done string
			for i := range onboarding {
				id, _ := f.Submitted()
				switch i {
				case 8:
					lost = id
				case 9:
					done = id
				}
			}
			f.Advance(done, credential.EventSPFound, nil)
			// Four intervals later every other window made an attempt just now (its row
			// moved); the lost one did not.
			f.fake.Clock.Advance(4 * time.Second)
			touchAllBut(t, f, lost, done)
			p.Reset()
			rep, err := f.Domain.Reconciler.Reconcile(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st := p.Reset()
			table, queue := st.Services[faultproxy.ServiceTable], st.Services[faultproxy.ServiceQueue]
			t.Logf("reconciliation with %d open windows among %d credentials: %+v; table %d requests %v; queue %d requests %v",
				onboarding, onboarding+others, rep, table.Requests, table.Operations, queue.Requests, queue.Operations)
			if rep.Indexed != onboarding || rep.Read != onboarding || rep.Stale != 1 || rep.Closed != 1 {
				t.Fatalf("report %+v, want %d rows read, one restarted, one closed", rep, onboarding)
			}
			wantTable := map[string]int64{"GET entities": 1, "GET entity": onboarding, "DELETE entity": 1}
			wantQueue := map[string]int64{"GET messages": 4, "POST messages": 1}
			for op, n := range wantTable {
				if table.Operations[op] != n {
					t.Errorf("table %s: %d, want %d", op, table.Operations[op], n)
				}
			}
			for op, n := range wantQueue {
				if queue.Operations[op] != n {
					t.Errorf("queue %s: %d, want %d", op, queue.Operations[op], n)
				}
			}
			if table.Requests != 2+onboarding || queue.Requests != 5 {
				t.Errorf("%d table and %d queue requests, want %d and 5", table.Requests, queue.Requests, 2+onboarding)
			}
		})
	}
}

// touchAllBut makes every indexed credential's window but skip's look freshly attempted,
// as its chain's last attempt would.
func touchAllBut(t *testing.T, f *fixture, skip ...string) {
	t.Helper()
	ctx := context.Background()
	err := f.store.OpenWindows(ctx, func(w credential.OpenWindow) error {
		for _, s := range skip {
			if w.CredentialID == s {
				return nil
			}
		}
		c, err := f.store.Get(ctx, w.OrgID, w.CredentialID)
		if err != nil {
			return err
		}
		c.UpdatedAt = f.fake.Clock.Now()
		return f.store.Update(ctx, c, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}
