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

// TestSoakWorkerKilled: while onboardings run, the handler (API and standalone queue
// worker in one process) is killed with SIGKILL at random moments and started again. A
// job killed between its dequeue and its delete comes back after the worker's visibility
// timeout and must neither be lost nor make a transition twice: every onboarding
// completes to verified and its events show each transition once.
func TestSoakWorkerKilled(t *testing.T) {
	if !soaking() {
		// The short soaks run together: they wait on windows far more than they work. The
		// full ones run one at a time, as their figures were measured.
		t.Parallel()
	}
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
	// Tables and queues of its own, in another account than TestSoakFaults' (custacct2),
	// which runs beside it: a handler that took the other's jobs would drop them, as
	// jobs of credentials it does not have.
	s := defaultSettings()
	s.storageAccount = "custacct1"
	// A job killed in flight comes back after the worker's visibility timeout (60 s); the
	// windows outlast a few of those. The grace spans the window.
	s.spWindow, s.probeWindow, s.grace = 4*time.Minute, 4*time.Minute, 4*time.Minute
	// Each onboarding has an organization of its own, holding one credential and no
	// workspace: the product's limits hold that many times over. They are set here so
	// that a change of the defaults leaves the soak as it was.
	s.maxCredentials, s.maxWorkspaces, s.createRate = 50, 1000, "30/1m"
	h := startHandler(t, env, si, s)
	poisonBefore, err := poisoned(context.Background(), env, s.storageAccount)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	stats := &outageStats{}

	type plan struct{ install, grant time.Duration }
	obs := make([]*onboarding, n)
	plans := make([]plan, n)
	for i := range obs {
		obs[i] = newOnboarding(t, h, si, []string{"custacct1", "custacct2"}[i%2], true)
		obs[i].submitTenant(tenantA)
		plans[i] = plan{install: time.Duration(rng.IntN(8000)) * time.Millisecond, grant: time.Duration(rng.IntN(8000)) * time.Millisecond}
	}
	done := make(chan error, n)
	for i, o := range obs {
		go func() { done <- o.throughKills(ctx, stats, plans[i].install, plans[i].grant) }()
	}

	logs := []string{h.proc.log}
	for k := range kills {
		time.Sleep(time.Duration(1000+rng.IntN(5000)) * time.Millisecond)
		h.proc.kill()
		down := time.Duration(rng.IntN(1000)) * time.Millisecond
		time.Sleep(down)
		h.restart(t)
		logs = append(logs, h.proc.log)
		t.Logf("kill %d at %s, down %s", k+1, time.Since(began).Round(10*time.Millisecond), down)
	}
	killed := time.Since(began)
	for range obs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d onboardings verified in %s through %d SIGKILLs of the handler (the last %s in); the wizard met %s",
		n, time.Since(began).Round(time.Second), kills, killed.Round(time.Second), stats)

	if f, err := countJobs(logs); err != nil {
		t.Error(err)
	} else {
		t.Logf("handler logs: %d jobs completed on a redelivery after a kill, %d follow-ups scheduled again by a redelivery, %d stale or replayed jobs dropped",
			f.redelivered, f.rescheduled, f.dropped)
	}
	for _, o := range obs {
		evs, err := o.api.Events(ctx, o.cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTransitions(evs); err != nil {
			t.Errorf("credential %s: %v", o.cred.ID, err)
		}
	}
	poisonAfter, err := poisoned(ctx, env, s.storageAccount)
	if err != nil {
		t.Fatal(err)
	}
	for q, n := range poisonAfter {
		if n > poisonBefore[q] {
			t.Errorf("%s: %d messages poisoned during the test", q, n-poisonBefore[q])
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
