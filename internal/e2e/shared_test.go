package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// TestHandlersShareAnAccount: two handlers (two deployments, or two tests) on one storage
// account, each with its own table. With queues of their own, both onboard. With one set
// of queues, which is how the full soaks ran when they first ran together, each takes
// the other's jobs and drops them as jobs of credentials its table does not have: without
// the reconciler a window whose job the other took never moves, and its wizard waits
// in vain ("after 0 attempts").
func TestHandlersShareAnAccount(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	onboard := func(t *testing.T, shared string) (stuck int, dropped int) {
		t.Helper()
		s := defaultSettings()
		s.queuePrefix = shared
		s.reconcile = time.Hour // off for the test's length: only the chains move windows
		a, b := startHandler(t, env, si, s), startHandler(t, env, si, s)
		var obs []*onboarding
		for range 6 {
			for _, h := range []*handler{a, b} {
				o := newOnboarding(t, h, si, "custacct1", true)
				o.install(tenantA)
				o.submitTenant(tenantA)
				obs = append(obs, o)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, o := range obs {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := o.api.Wait(ctx, o.cred.ID, 200*time.Millisecond, walkthrough.InState("sp_verified", "draft"), nil)
				if err != nil || c.State != "sp_verified" {
					mu.Lock()
					stuck++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, h := range []*handler{a, b} {
			n, err := countLines(h.logs(), "job for a credential that does not exist dropped")
			if err != nil {
				t.Fatal(err)
			}
			dropped += n
		}
		return stuck, dropped
	}
	t.Run("queues of their own", func(t *testing.T) {
		if stuck, dropped := onboard(t, ""); stuck != 0 || dropped != 0 {
			t.Errorf("%d of 12 windows never moved, %d jobs dropped as another's: want none", stuck, dropped)
		}
	})
	t.Run("one set of queues", func(t *testing.T) {
		stuck, dropped := onboard(t, testenv.UniqueName(t, "shared"))
		t.Logf("%d of 12 windows never moved; %d jobs taken by the other handler and dropped", stuck, dropped)
		if dropped == 0 {
			t.Error("no handler took the other's jobs: the test shows nothing")
		}
	})
}
