package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// TestProbeTimeoutThenSaveAnyway: with the grace as long as the window, a missing role
// keeps the probe waiting until the deadline: timed_out, then "Save anyway".
func TestProbeTimeoutThenSaveAnyway(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.probeWindow, s.grace = 6*time.Second, 6*time.Second
	h := startHandler(t, env, si, s)
	o := newOnboarding(t, h, si, "custacct1", true)
	o.toSPVerified()
	o.submitStorage()
	_, err := o.api.SaveUnverified(context.Background(), o.cred.ID)
	var apiErr *walkthrough.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("save-unverified while probing: %v", err)
	}
	c := o.wait(20*time.Second, func(c walkthrough.Credential) bool { return c.Status() == "timed_out" || c.State != "access_pending" })
	if c.State != "access_pending" || c.Status() != "timed_out" || c.LastErrorProviderError != "AuthorizationPermissionMismatch" {
		t.Fatalf("got %s/%s %s: %s", c.State, c.Status(), c.LastErrorProviderError, c.LastError)
	}
	if c, err = o.api.SaveUnverified(context.Background(), o.cred.ID); err != nil || c.State != "unverified_saved" {
		t.Fatalf("save anyway: %v (%s)", err, c.State)
	}
	// Retry is a new storage submit: the window starts again.
	o.grant(walkthrough.RoleContributor, o.accountScope())
	time.Sleep(time.Second) // the role's propagation
	o.submitStorage()
	if c := o.wait(15*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
		t.Fatalf("retry after save anyway: %s/%s %s", c.State, c.Status(), c.LastError)
	}
}

// TestWorkerKilledMidProbe: the standalone worker dies with SIGKILL while the access
// probe runs; restarted, it completes the onboarding, and no transition happens twice.
func TestWorkerKilledMidProbe(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	// A job killed in flight reappears after the worker's visibility timeout (60 s): the
	// window must outlast it.
	s.probeWindow, s.grace = 2*time.Minute, time.Minute
	h := startHandler(t, env, si, s)
	o := newOnboarding(t, h, si, "custacct1", true)
	o.toSPVerified()
	o.submitStorage()
	o.wait(15*time.Second, func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= 2 })
	h.proc.kill()
	if _, err := o.api.Get(context.Background(), o.cred.ID); err == nil {
		t.Fatal("the API answered with the handler killed")
	}
	o.grant(walkthrough.RoleContributor, o.accountScope())
	h.restart(t)
	c := o.wait(90*time.Second, walkthrough.InState("verified", "sp_verified"))
	if c.State != "verified" {
		t.Fatalf("after the restart: %s/%s %s", c.State, c.Status(), c.LastError)
	}
	want := []string{">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found",
		"sp_verified>access_pending:submit_storage", "access_pending>verified:access_confirmed"}
	if diff := cmp.Diff(want, o.causes()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}
