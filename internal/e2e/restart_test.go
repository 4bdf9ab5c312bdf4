package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// azuriteDown is how long each outage of TestSoakAzuriteRestart lasts: longer than the
// storage clients' own retries (about 6 s), so that requests meet it.
const azuriteDown = 8 * time.Second

// TestSoakAzuriteRestart: Azurite, which holds the handler's tables and queues and the
// customers' blobs, stops in the middle of the onboardings' windows and starts again on
// the same ports and data: once during the service principal polls, once during the
// access probes (the full run kills it the second time, with SIGKILL). The wizard meets
// a 503 with a clear error meanwhile, the handler stays up, and afterwards every
// onboarding completes to verified with each transition once and nothing poisoned.
func TestSoakAzuriteRestart(t *testing.T) {
	t.Parallel()
	n := soakCount(t, "onboardings", 5, 20)
	second := syscall.SIGTERM
	if soaking() {
		second = syscall.SIGKILL
	}
	az, env := startAzurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.reconcile = soakReconcile
	// A job in flight when storage goes away comes back after the worker's visibility
	// timeout (60 s); the windows outlast that. The grace spans the window, so a missing
	// role means "not yet" until the deadline.
	s.spWindow, s.probeWindow, s.grace = 4*time.Minute, 4*time.Minute, 4*time.Minute
	// Each onboarding has an organization of its own, holding one credential and no
	// workspace: the product's limits hold that many times over. They are set here so
	// that a change of the defaults leaves the soak as it was.
	s.maxCredentials, s.maxWorkspaces, s.createRate = 50, 1000, "30/1m"
	h := startHandler(t, env, si, s)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	stats := &outageStats{}

	obs := make([]*onboarding, n)
	for i := range obs {
		obs[i] = newOnboarding(t, h, si, []string{"custacct1", "custacct2"}[i%2], true)
		obs[i].submitTenant(tenantA) // not installed yet: the polls go on
	}
	eachOnboarding(t, obs, func(o *onboarding) error {
		_, err := waitUntil(ctx, o.api, o.cred.ID, stats, attempted(2))
		return err
	})
	restore := outage(t, az, h, obs[0], syscall.SIGTERM)
	for _, o := range obs {
		o.install(tenantA)
	}
	eachOnboarding(t, obs, func(o *onboarding) error {
		c, err := waitUntil(ctx, o.api, o.cred.ID, stats, walkthrough.InState("sp_verified", "draft"))
		if err == nil && c.State != "sp_verified" {
			err = errors.New("the service principal poll ended in " + c.State + ": " + c.LastError)
		}
		return err
	})
	spDone := time.Since(restore)

	// The roles are granted only after the second outage: the probes wait meanwhile.
	for _, o := range obs {
		o.submitStorage()
	}
	eachOnboarding(t, obs, func(o *onboarding) error {
		_, err := waitUntil(ctx, o.api, o.cred.ID, stats, attempted(1))
		return err
	})
	if second == syscall.SIGKILL {
		// Azurite saves its data every 5 s (LokiJS autosave) and SIGKILL loses what it has
		// not saved, acknowledged or not, which Azure Storage never does. Let the submits
		// just acknowledged reach its files; the probes' latest attempts still go back.
		time.Sleep(6 * time.Second)
	}
	restore = outage(t, az, h, obs[0], second)
	for _, o := range obs {
		o.grant(walkthrough.RoleContributor, o.accountScope())
	}
	eachOnboarding(t, obs, func(o *onboarding) error {
		c, err := waitUntil(ctx, o.api, o.cred.ID, stats, walkthrough.InState("verified", "sp_verified"))
		if err == nil && c.State != "verified" {
			err = errors.New("the access probe ended in " + c.State + ": " + c.LastError)
		}
		return err
	})
	t.Logf("%d onboardings verified in %s through two outages of at least %s (the second by %v); service principals all found %s after the first restart, access all verified %s after the second; the wizard met %s",
		n, time.Since(began).Round(time.Second), azuriteDown, second, spDone.Round(time.Second), time.Since(restore).Round(time.Second), stats)

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
	if f.poisoned+f.poisonHandled > 0 {
		t.Errorf("%d messages poisoned after the outages (%d handled by the reconciler), want none", f.poisoned, f.poisonHandled)
	}
	select {
	case <-h.proc.done:
		t.Error("the handler exited")
	default:
	}
}

// outage stops Azurite with sig, checks what the wizard and the handler do while it is
// away, and starts it again after azuriteDown. It returns when Azurite is back.
func outage(t *testing.T, az *azurite, h *handler, o *onboarding, sig syscall.Signal) time.Time {
	t.Helper()
	begin := time.Now()
	az.stop(sig)
	stopped := time.Now()
	t.Logf("Azurite stopped (%v) in %s", sig, stopped.Sub(begin).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), azuriteDown+30*time.Second)
	defer cancel()
	status, retryAfter, body, err := getRaw(ctx, o.api, o.cred.ID)
	answered := time.Since(stopped)
	if err != nil || status != 503 || retryAfter == "" || !strings.Contains(body, `"upstream_unavailable"`) {
		t.Errorf("GET with storage down: %d (Retry-After %q) %s %v; want 503 upstream_unavailable with Retry-After", status, retryAfter, body, err)
	} else {
		t.Logf("with storage down (%v), GET answered %d (Retry-After %s) after %s: %s", sig, status, retryAfter, answered.Round(100*time.Millisecond), body)
	}
	time.Sleep(azuriteDown - time.Since(stopped))
	select {
	case <-h.proc.done:
		t.Fatal("the handler exited while storage was down")
	default:
	}
	az.start()
	t.Logf("Azurite back %s after it stopped", time.Since(stopped).Round(100*time.Millisecond))
	return time.Now()
}

// getRaw reads a credential and returns the answer's status, Retry-After and body.
func getRaw(ctx context.Context, api *walkthrough.API, id string) (status int, retryAfter, body string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.BaseURL+"/organizations/"+api.Org+"/credentials/"+id, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	req.Header.Set("X-Activeloop-Org-Id", api.Org)
	resp, err := apiCheck.Client(nil).Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, resp.Header.Get("Retry-After"), strings.TrimSpace(string(b)), err
}

// eachOnboarding runs f for every onboarding at once and fails the test with their errors.
func eachOnboarding(t *testing.T, obs []*onboarding, f func(*onboarding) error) {
	t.Helper()
	errs := make([]error, len(obs))
	var wg sync.WaitGroup
	for i, o := range obs {
		wg.Go(func() { errs[i] = f(o) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("onboarding %d (credential %s): %v", i, obs[i].cred.ID, err)
		}
	}
}
