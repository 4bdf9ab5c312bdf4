package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// envSoakSeed repeats the kill times of an earlier TestSoakWorkerKilled run.
const envSoakSeed = "AZCREDS_SOAK_SEED"

// TestSoakWorkerKilled: while onboardings run, three handler processes (each the API, the
// queue worker and the leased timers) share the tables and queues, and one of them at a
// time is killed with SIGKILL at random moments and started again. A job killed between
// its dequeue and its delete comes back after the worker's visibility timeout, while the
// reconciler takes its window up sooner; neither may lose it or make a transition twice:
// every onboarding completes to verified, its events show each transition once, and
// nothing is poisoned. Every instance runs jobs.
func TestSoakWorkerKilled(t *testing.T) {
	t.Parallel()
	n := soakCount(t, "onboardings", 5, 20)
	kills := soakCount(t, "kills", 5, 20)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envSoakSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envSoakSeed, v, err)
		}
	}
	t.Logf("seed %d (%s=%d repeats these kill times)", seed, envSoakSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.instances, s.reconcile = soakInstances, soakReconcile
	// A job killed in flight comes back after the worker's visibility timeout (60 s); the
	// windows outlast a few of those. The grace spans the window.
	s.spWindow, s.probeWindow, s.grace = 4*time.Minute, 4*time.Minute, 4*time.Minute
	// Each onboarding has an organization of its own, holding one credential and no
	// workspace: the product's limits hold that many times over. They are set here so
	// that a change of the defaults leaves the soak as it was.
	s.maxCredentials, s.maxWorkspaces, s.createRate = 50, 1000, "30/1m"
	h := startHandler(t, env, si, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	stats := &outageStats{}

	type plan struct{ install, grant time.Duration }
	obs := make([]*onboarding, n)
	plans := make([]plan, n)
	for i := range obs {
		obs[i] = onboardingVia(t, h.apiOn(t, i), si, []string{"custacct1", "custacct2"}[i%2], true)
		obs[i].submitTenant(tenantA)
		plans[i] = plan{install: time.Duration(rng.IntN(8000)) * time.Millisecond, grant: time.Duration(rng.IntN(8000)) * time.Millisecond}
	}
	done := make(chan error, n)
	for i, o := range obs {
		go func() { done <- o.throughKills(ctx, stats, plans[i].install, plans[i].grant) }()
	}

	for k := range kills {
		time.Sleep(time.Duration(1000+rng.IntN(5000)) * time.Millisecond)
		victim := rng.IntN(len(h.instances))
		h.instances[victim].proc.kill()
		down := time.Duration(rng.IntN(1000)) * time.Millisecond
		time.Sleep(down)
		h.restartInstance(t, victim)
		t.Logf("kill %d of instance %d at %s, down %s", k+1, victim, time.Since(began).Round(10*time.Millisecond), down)
	}
	killed := time.Since(began)
	for range obs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d onboardings verified in %s on %d instances through %d SIGKILLs (the last %s in); the wizard met %s",
		n, time.Since(began).Round(time.Second), len(h.instances), kills, killed.Round(time.Second), stats)

	for _, o := range obs {
		evs, err := o.api.Events(ctx, o.cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTransitions(evs); err != nil {
			t.Errorf("credential %s: %v", o.cred.ID, err)
		}
	}
	f := reportInstances(t, h)
	t.Logf("all instances: %s", f)
	if f.poisoned+f.poisonHandled+f.lastDeliveryFailed > 0 {
		t.Errorf("%d messages poisoned, %d poisoned messages handled, %d last deliveries failed: want none", f.poisoned, f.poisonHandled, f.lastDeliveryFailed)
	}
	checkEveryInstanceWorked(t, h)
}

// checkEveryInstanceWorked fails unless every instance of h completed jobs: they share
// the queues, so each takes its part.
func checkEveryInstanceWorked(t *testing.T, h *handler) {
	t.Helper()
	for i, in := range h.instances {
		f, err := countJobs(in.logs)
		if err != nil {
			t.Error(err)
			continue
		}
		if f.done == 0 {
			t.Errorf("instance %d completed no job", i)
		}
	}
}

// throughKills plays the rest of an onboarding, with the tenant submitted, through a
// handler that keeps dying: the customer installs the service principal after install,
// the wizard submits the storage form, the customer grants the role after grant.
func (o *onboarding) throughKills(ctx context.Context, stats *outageStats, install, grant time.Duration) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return errors.New("credential " + o.cred.ID + ": " + err.Error())
	}
	time.Sleep(install)
	spID, err := o.customer.InstallServicePrincipal(ctx, tenantA, o.cred.Azure.AppID)
	if err != nil {
		return wrap(err)
	}
	c, err := waitUntil(ctx, o.api, o.cred.ID, stats, walkthrough.InState("sp_verified", "draft"))
	if err != nil {
		return wrap(err)
	}
	if c.State != "sp_verified" {
		return wrap(errors.New("the service principal poll ended in " + c.State + ": " + c.LastError))
	}
	if err := o.submitStorageThrough(ctx, stats); err != nil {
		return wrap(err)
	}
	time.Sleep(grant)
	if _, err := o.customer.GrantRole(ctx, spID, walkthrough.RoleContributor, o.accountScope()); err != nil {
		return wrap(err)
	}
	c, err = waitUntil(ctx, o.api, o.cred.ID, stats, walkthrough.InState("verified", "sp_verified"))
	if err != nil {
		return wrap(err)
	}
	if c.State != "verified" {
		return wrap(errors.New("the access probe ended in " + c.State + ": " + c.LastError))
	}
	return nil
}
