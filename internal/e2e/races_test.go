package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// TestRacesThroughHTTP is the end-to-end twin of internal/credential's race tests: the
// wizard's requests meet the running pollers through the real binaries. Storage submits
// fired while the probe runs each either start a window (and appear once in the events)
// or get 409; the credential still ends verified. A delete while the service principal
// poll runs either goes through or gets 409 until it does; the credential is then gone.
func TestRacesThroughHTTP(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.probeWindow, s.grace = time.Minute, time.Minute
	h := startHandler(t, env, si, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stats := &outageStats{}

	o := newOnboarding(t, h, si, "custacct1", true)
	o.toSPVerified()
	o.submitStorage()
	if _, err := waitUntil(ctx, o.api, o.cred.ID, stats, attempted(1)); err != nil {
		t.Fatal(err)
	}
	const resubmits = 12
	errs := make([]error, resubmits)
	var wg sync.WaitGroup
	for i := range resubmits {
		wg.Go(func() {
			time.Sleep(time.Duration(i%4) * 250 * time.Millisecond) // against probes in flight and between them
			_, errs[i] = o.api.SubmitStorage(ctx, o.cred.ID, walkthrough.StorageForm{SubscriptionID: subscriptionID,
				ResourceGroup: resourceGroup, StorageAccount: o.account, ContainerName: o.container})
		})
	}
	wg.Wait()
	landed, refused := 0, 0
	for _, err := range errs {
		var apiErr *walkthrough.Error
		switch {
		case err == nil:
			landed++
		case errors.As(err, &apiErr) && apiErr.Status == 409:
			refused++
		default:
			t.Fatalf("storage resubmit: %v, want 200 or 409", err)
		}
	}
	o.grant(walkthrough.RoleContributor, o.accountScope())
	c, err := waitUntil(ctx, o.api, o.cred.ID, stats, walkthrough.InState("verified", "sp_verified"))
	if err != nil || c.State != "verified" {
		t.Fatalf("after the resubmits: %s %v", c.State, err)
	}
	evs, err := o.api.Events(ctx, o.cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTransitions(evs); err != nil {
		t.Fatal(err)
	}
	windows := 0
	for _, e := range evs {
		if e.Cause == "submit_storage" && e.From == "access_pending" {
			windows++
		}
	}
	if windows != landed || evs[len(evs)-1].Generation != c.Generation {
		t.Fatalf("%d resubmits answered 200 but %d windows recorded; last event of generation %d, credential at %d",
			landed, windows, evs[len(evs)-1].Generation, c.Generation)
	}
	t.Logf("%d storage resubmits during the probe: %d started a window, %d got 409", resubmits, landed, refused)

	d := newOnboarding(t, h, si, "custacct2", true)
	d.submitTenant(tenantA) // no service principal: the poll goes on
	if _, err := waitUntil(ctx, d.api, d.cred.ID, stats, attempted(2)); err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	for {
		err := d.api.Delete(ctx, d.cred.ID)
		var apiErr *walkthrough.Error
		if err == nil {
			break
		}
		if !errors.As(err, &apiErr) || apiErr.Status != 409 || conflicts > 20 {
			t.Fatalf("delete while polling: %v (after %d conflicts)", err, conflicts)
		}
		conflicts++
	}
	var apiErr *walkthrough.Error
	if _, err := d.api.Get(ctx, d.cred.ID); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("GET after the delete: %v, want 404", err)
	}
	t.Logf("delete during the service principal poll: 204 after %d conflicts", conflicts)
}
