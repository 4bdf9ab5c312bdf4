package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/dev/stack"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// TestWalkthroughOnStackInUse: the walkthrough (`make walkthrough`) runs, twice in a row,
// on a stack whose customer account was registered with the stand-in by hand under other
// ids than the stack's: it takes the registered ids instead of failing with 409
// StorageAccountAlreadyTaken.
func TestWalkthroughOnStackInUse(t *testing.T) {
	env := testenv.Azurite(t)
	si := startStandInWith(t, env, time.Second, func(s *stack.StandIn) { s.NoRegistration = true })
	const otherSubscription, otherGroup = "66666666-6666-6666-6666-666666666666", "rg-data"
	ctx := context.Background()
	if err := si.customer.RegisterStorageAccount(ctx, "custacct1", otherSubscription, otherGroup); err != nil {
		t.Fatal(err)
	}
	h := startHandler(t, env, si, defaultSettings())
	api := h.api(t)
	for i := range 2 {
		var out bytes.Buffer
		container := testenv.UniqueName(t, "inuse")
		_, err := walkthrough.Run(ctx, api, si.customer, walkthrough.Plan{
			Name: "inuse-" + container, TenantID: tenantA, SubscriptionID: subscriptionID, ResourceGroup: resourceGroup,
			Account: "custacct1", Container: container, Prefix: "lake", Poll: 200 * time.Millisecond}, &out)
		if err != nil {
			t.Fatalf("walkthrough %d: %v\n%s", i+1, err, out.String())
		}
		if !strings.Contains(out.String(), "subscriptions/"+otherSubscription+"/resourceGroups/"+otherGroup+"/") {
			t.Errorf("walkthrough %d did not grant on the registered account's scope:\n%s", i+1, out.String())
		}
	}
}

// TestWizard runs every onboarding path of the contract (docs/CONTRACT.md) through one handler and one stand-in,
// the paths in parallel, each with its own organization, credential and container.
func TestWizard(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, 2*time.Second)
	h := startHandler(t, env, si, defaultSettings())
	sasScenarios(t, h, si)

	t.Run("happy path", func(t *testing.T) {
		t.Parallel()
		container := testenv.UniqueName(t, "walk")
		var out bytes.Buffer
		api := h.api(t)
		timings, err := walkthrough.Run(context.Background(), api, si.customer, walkthrough.Plan{
			Name: "walk-" + container, TenantID: tenantA, SubscriptionID: subscriptionID, ResourceGroup: resourceGroup,
			Account: "custacct1", Container: container, Prefix: "lake", Poll: 200 * time.Millisecond}, &out)
		t.Logf("walkthrough:\n%s", out.String())
		if err != nil {
			t.Fatal(err)
		}
		if timings.SPFound > 3*time.Second {
			t.Errorf("service principal found %s after the install; the poll interval is 1 s", timings.SPFound)
		}
		for _, want := range []string{"waiting_for_role_propagation", "verified"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the walkthrough never showed %s", want)
			}
		}
	})

	t.Run("service principal installed late", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		o.submitTenant(tenantA)
		c := o.wait(10*time.Second, func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= 3 })
		if c.State != "sp_pending" || c.Status() != "polling" {
			t.Fatalf("before the install: %s %s", c.State, c.Status())
		}
		o.install(tenantA)
		installed := time.Now()
		c = o.wait(10*time.Second, walkthrough.InState("sp_verified"))
		if took := time.Since(installed); took > 3*time.Second {
			t.Errorf("found %s after the install; want within one poll interval (1 s) and slack", took)
		}
		if c.Azure.SPObjectID != o.spID {
			t.Fatalf("sp_object_id %s, installed %s", c.Azure.SPObjectID, o.spID)
		}
	})

	t.Run("wrong tenant times out to draft", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		o.install(tenantA)
		o.submitTenant(tenantB)
		c := o.wait(40*time.Second, walkthrough.InState("draft"))
		if c.LastError != "Couldn't find the service principal in your tenant" || c.LastErrorProviderError != "AADSTS700016" {
			t.Fatalf("last error %q (%s)", c.LastError, c.LastErrorProviderError)
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		o.submitTenant("00000000-0000-4000-8000-000000000000")
		c := o.wait(10*time.Second, walkthrough.InState("draft"))
		if c.LastErrorProviderError != "AADSTS90002" || c.LastErrorCode != "tenant_not_found" {
			t.Fatalf("last error %q code %s provider %s", c.LastError, c.LastErrorCode, c.LastErrorProviderError)
		}
	})

	probeCases := []struct {
		name, account string
		container     bool
		setup         func(o *onboarding)
		status, hint  string
		provider      string
	}{
		{name: "Reader only", account: "custacct1", container: true,
			setup:  func(o *onboarding) { o.grant(walkthrough.RoleReader, o.accountScope()) },
			status: "role_not_sufficient", hint: "reader_role", provider: "AuthorizationPermissionMismatch"},
		{name: "container scope only", account: "custacct1", container: true,
			setup: func(o *onboarding) {
				o.grant(walkthrough.RoleContributor, walkthrough.ContainerScope(subscriptionID, resourceGroup, o.account, o.container))
			},
			status: "role_not_sufficient", hint: "container_scope", provider: "AuthorizationPermissionMismatch"},
		{name: "container missing", account: "custacct1", container: false,
			setup:  func(o *onboarding) { o.grant(walkthrough.RoleContributor, o.accountScope()) },
			status: "container_not_found", provider: "ContainerNotFound"},
		{name: "firewall", account: "custacct2", container: true,
			setup: func(o *onboarding) {
				o.grant(walkthrough.RoleContributor, o.accountScope())
				if err := o.customer.SetFirewall(context.Background(), o.account, true); err != nil {
					o.t.Fatal(err)
				}
			},
			status: "network_blocked", hint: "allow_platform_network", provider: "AuthorizationFailure"},
	}
	for _, pc := range probeCases {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			o := newOnboarding(t, h, si, pc.account, pc.container)
			o.toSPVerified()
			pc.setup(o)
			o.submitStorage()
			started := time.Now()
			c := o.wait(30*time.Second, walkthrough.InState("sp_verified", "verified"))
			if c.State != "sp_verified" || c.Status() != pc.status || c.LastErrorHint != pc.hint || c.LastErrorProviderError != pc.provider {
				t.Fatalf("got %s/%s hint %q provider %q: %s", c.State, c.Status(), c.LastErrorHint, c.LastErrorProviderError, c.LastError)
			}
			if c.LastErrorRequestID == "" || c.LastError == "" {
				t.Fatalf("no message or request id: %+v", c)
			}
			if time.Since(started) < 5*time.Second {
				t.Fatalf("a terminal outcome before the 6 s propagation grace ended")
			}
		})
	}

	t.Run("no role at all waits until the deadline, and Save anyway is promoted by the first SAS", func(t *testing.T) {
		t.Parallel()
		noRole(t, h, si)
	})

	t.Run("admin consent instead of az ad sp create", func(t *testing.T) {
		t.Parallel()
		adminConsent(t, h, si)
	})

	t.Run("admin consent refused", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		ctx := context.Background()
		if err := o.customer.AdministratorAnswers(ctx, o.cred.Azure.AppID, tenantA, true); err != nil {
			t.Fatal(err)
		}
		back, err := o.customer.AdminConsent(ctx, o.cred.AdminConsentURL)
		if err != nil {
			t.Fatal(err)
		}
		if back.Error != "consent_required" || !strings.HasPrefix(back.ErrorDescription, "AADSTS65004:") || back.State != o.cred.ID ||
			back.Tenant != "" || back.RedirectURI != h.url+"/wizard/" {
			t.Fatalf("refusal came back as %+v", back)
		}
		o.submitTenant(tenantA)
		c := o.wait(10*time.Second, func(c walkthrough.Credential) bool {
			return c.Progress != nil && c.Progress.Attempts >= 3 || c.State != "sp_pending"
		})
		if c.State != "sp_pending" || c.Azure.SPObjectID != "" {
			t.Fatalf("after a refused consent: %s, service principal %q", c.State, c.Azure.SPObjectID)
		}
	})

	t.Run("account unknown", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "nosuchacct", false)
		o.toSPVerified()
		o.submitStorage()
		c := o.wait(10*time.Second, walkthrough.InState("sp_verified", "verified"))
		if c.Status() != "storage_account_not_found" || !strings.Contains(c.LastError, "nosuchacct") {
			t.Fatalf("got %s/%s: %s", c.State, c.Status(), c.LastError)
		}
	})

	t.Run("resubmit during a running window", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		o.submitTenant(tenantA)
		o.wait(10*time.Second, func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= 2 })
		o.submitTenant(tenantA)
		if o.cred.Generation != 2 {
			t.Fatalf("generation %d after the resubmit", o.cred.Generation)
		}
		time.Sleep(3 * time.Second) // let both chains' messages come due
		o.install(tenantA)
		o.wait(10*time.Second, walkthrough.InState("sp_verified"))
		time.Sleep(2 * time.Second) // any surviving old-chain message would arrive now
		want := []string{">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found"}
		if diff := cmp.Diff(want, o.causes()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
	})
}

// noRole is the contract's no-role row through the real binaries: no grant at all shows
// waiting_for_role_propagation with hint no_role and the role check after the grace (6 s),
// save-unverified is refused before the deadline naming the state and the deadline, the
// probe times out at the deadline (25 s) keeping the hint, Save anyway gives
// unverified_saved, and once the role is granted the first /creds promotes it to verified.
// The org-default toggle goes on and off on the way.
func noRole(t *testing.T, h *handler, si *standIn) {
	o := newOnboarding(t, h, si, "custacct1", true)
	o.toSPVerified()
	o.submitStorage()
	submitted := time.Now()
	ctx := context.Background()
	c := o.wait(30*time.Second, func(c walkthrough.Credential) bool { return c.LastErrorHint != "" || c.State != "access_pending" })
	if c.State != "access_pending" || c.Status() != "waiting_for_role_propagation" || c.LastErrorHint != "no_role" ||
		c.LastErrorProviderError != "AuthorizationPermissionMismatch" ||
		!strings.Contains(c.LastError, "az role assignment list --assignee "+o.spID+" --all --query '[].{role:roleDefinitionName, scope:scope}' -o table") {
		t.Fatalf("after the grace: %s/%s hint %q provider %q: %s", c.State, c.Status(), c.LastErrorHint, c.LastErrorProviderError, c.LastError)
	}
	if took := time.Since(submitted); took < 5*time.Second {
		t.Errorf("hint no_role %s after the submit, within the 6 s grace", took)
	}
	t.Logf("no_role after %s: %s", time.Since(submitted).Round(100*time.Millisecond), c.LastError)
	_, err := o.api.SaveUnverified(ctx, o.cred.ID)
	var apiErr *walkthrough.Error
	deadline := c.Progress.Deadline.UTC().Format(time.RFC3339)
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || !strings.Contains(apiErr.Body, `state \"access_pending\"`) ||
		!strings.Contains(apiErr.Body, "allowed only in state access_pending after the access probe's deadline ("+deadline+")") {
		t.Fatalf("save-unverified before the deadline: %v", err)
	}
	c = o.wait(40*time.Second, func(c walkthrough.Credential) bool {
		return c.Status() != "waiting_for_role_propagation" || c.State != "access_pending"
	})
	if c.State != "access_pending" || c.Status() != "timed_out" || c.LastErrorHint != "no_role" || c.LastErrorCode != "timed_out" {
		t.Fatalf("at the deadline: %s/%s hint %q code %q: %s", c.State, c.Status(), c.LastErrorHint, c.LastErrorCode, c.LastError)
	}
	t.Logf("timed_out after %s (window 25 s), hint kept: %s", time.Since(submitted).Round(100*time.Millisecond), c.LastErrorHint)
	if c, err = o.api.SaveUnverified(ctx, o.cred.ID); err != nil || c.State != "unverified_saved" {
		t.Fatalf("save anyway: %v (%s)", err, c.State)
	}
	if err := o.api.RegisterWorkspace(ctx, "ws", o.cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.api.Creds(ctx, "ws", "t"); !errors.As(err, &apiErr) || apiErr.Status < 500 {
		t.Fatalf("/creds without the role: %v", err)
	}
	if c, err := o.api.Get(ctx, o.cred.ID); err != nil || c.State != "unverified_saved" {
		t.Fatalf("a failed SAS moved the credential: %v %s", err, c.State)
	}
	o.grant(walkthrough.RoleContributor, o.accountScope())
	time.Sleep(2500 * time.Millisecond) // the role's propagation in the stand-in
	creds, err := o.api.Creds(ctx, "ws", "t")
	if err != nil || creds.CredentialID == nil || *creds.CredentialID != o.cred.ID {
		t.Fatalf("/creds after the grant: %+v, %v", creds, err)
	}
	if c, err := o.api.Get(ctx, o.cred.ID); err != nil || c.State != "verified" {
		t.Fatalf("after the first SAS: %v %s", err, c.State)
	}
	if err := o.api.SetOrgDefault(ctx, o.cred.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := o.api.ClearOrgDefault(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// adminConsent onboards through the admin consent URL instead of az ad sp create: the
// administrator (of tenant A, the URL naming organizations) accepts, Entra sends them back
// to the wizard with admin_consent, tenant and state, the wizard submits that tenant and
// the poll finds the service principal the consent installed. The portal link then leads
// to the storage accounts, with the account beside it.
func adminConsent(t *testing.T, h *handler, si *standIn) {
	o := newOnboarding(t, h, si, "custacct1", true)
	ctx := context.Background()
	u, err := url.Parse(o.cred.AdminConsentURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host != si.url || u.Path != "/organizations/adminconsent" || q.Get("client_id") != o.cred.Azure.AppID ||
		q.Get("redirect_uri") != h.url+"/wizard/" || q.Get("state") != o.cred.ID {
		t.Fatalf("admin consent URL %s", o.cred.AdminConsentURL)
	}
	if err := o.customer.AdministratorAnswers(ctx, o.cred.Azure.AppID, tenantA, false); err != nil {
		t.Fatal(err)
	}
	back, err := o.customer.AdminConsent(ctx, o.cred.AdminConsentURL)
	if err != nil {
		t.Fatal(err)
	}
	if back.AdminConsent != "True" || back.Tenant != tenantA || back.State != o.cred.ID || back.Error != "" || back.RedirectURI != h.url+"/wizard/" {
		t.Fatalf("consent came back as %+v", back)
	}
	o.submitTenant(back.Tenant)
	c := o.wait(15*time.Second, walkthrough.InState("sp_verified", "draft"))
	if c.State != "sp_verified" || c.Azure.SPObjectID == "" {
		t.Fatalf("after the consent: %s %q: %s", c.State, c.Azure.SPObjectID, c.LastError)
	}
	if c.PortalURL != "https://portal.azure.com/#browse/Microsoft.Storage%2FStorageAccounts" || c.PortalAccount != o.account ||
		!strings.Contains(c.AdminConsentURL, "/"+tenantA+"/adminconsent?") {
		t.Errorf("sp_verified: portal %q (%q), consent URL %q", c.PortalURL, c.PortalAccount, c.AdminConsentURL)
	}
	// The consent made the service principal the wizard's next steps name.
	o.spID = c.Azure.SPObjectID
	o.grant(walkthrough.RoleContributor, o.accountScope())
	time.Sleep(2500 * time.Millisecond)
	o.submitStorage()
	if !strings.HasSuffix(o.cred.PortalURL, "/providers/Microsoft.Storage/storageAccounts/"+o.account+"/iam") {
		t.Errorf("access_pending: portal %q", o.cred.PortalURL)
	}
	if c := o.wait(20*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
		t.Fatalf("%s/%s: %s", c.State, c.Status(), c.LastError)
	}
}
