package walkthrough

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Plan is what a walkthrough onboards.
type Plan struct {
	Name           string
	TenantID       string
	SubscriptionID string
	ResourceGroup  string
	Account        string
	Container      string
	Prefix         string
	// Poll is how often the walkthrough reads the credential (the wizard: 3 to 5 s).
	Poll time.Duration
}

// Timings are the figures of one walkthrough.
type Timings struct {
	SPFound  time.Duration // from installing the service principal to sp_verified
	Verified time.Duration // from the role grant to verified
	Total    time.Duration
}

// Run runs one whole onboarding, printing each step with the time it took: it
// creates the credential, installs its service principal as the customer, submits the
// tenant, submits the storage details before the role exists (so it sees the wait for
// role propagation), grants the role as the customer and waits for verified.
func Run(ctx context.Context, api *API, customer *Customer, p Plan, out io.Writer) (Timings, error) {
	start := time.Now()
	var t Timings
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	watch := func(c Credential) {
		line := fmt.Sprintf("    state %s", c.State)
		if c.Status() != "" {
			line += fmt.Sprintf(", %s (attempt %d)", c.Status(), c.Progress.Attempts)
		}
		if c.LastErrorProviderError != "" {
			line += ", provider said " + c.LastErrorProviderError
		}
		say("%s", line)
	}
	basePath := "az://" + p.Account + "/" + p.Container
	if p.Prefix != "" {
		basePath += "/" + p.Prefix
	}
	// On a stack in use the account may be registered already, under other ids than the
	// plan's: the walkthrough takes the registered ones, as a customer would take theirs.
	acct, registered, err := customer.StorageAccount(ctx, p.Account)
	switch {
	case err != nil:
		return t, fmt.Errorf("look up the storage account in the stand-in: %w", err)
	case !registered:
		if err := customer.RegisterStorageAccount(ctx, p.Account, p.SubscriptionID, p.ResourceGroup); err != nil {
			return t, fmt.Errorf("register the storage account with the stand-in: %w", err)
		}
	case acct.SubscriptionID != p.SubscriptionID || !strings.EqualFold(acct.ResourceGroup, p.ResourceGroup) ||
		acct.TenantID != "" && !strings.EqualFold(acct.TenantID, p.TenantID):
		p.SubscriptionID, p.ResourceGroup = acct.SubscriptionID, acct.ResourceGroup
		if acct.TenantID != "" {
			p.TenantID = acct.TenantID
		}
		say("0. %s is registered under subscription %s, resource group %s: using those (and tenant %s)",
			p.Account, p.SubscriptionID, p.ResourceGroup, p.TenantID)
	}
	if err := customer.CreateContainer(ctx, p.Account, p.Container); err != nil {
		return t, fmt.Errorf("create the container: %w", err)
	}

	step := time.Now()
	c, err := api.Create(ctx, p.Name, basePath)
	if err != nil {
		return t, fmt.Errorf("create the credential: %w", err)
	}
	say("1. created credential %q (%s) at %s: state %s, app %s (%s)", c.Name, c.ID, basePath, c.State, c.Azure.AppID, since(step))
	say("   the customer runs: %s", c.InstallCommand)

	step = time.Now()
	spID, err := customer.InstallServicePrincipal(ctx, p.TenantID, c.Azure.AppID)
	if err != nil {
		return t, fmt.Errorf("install the service principal: %w", err)
	}
	say("2. customer installed the service principal in tenant %s: object id %s (%s)", p.TenantID, spID, since(step))
	installed := time.Now()

	if c, err = api.SubmitTenant(ctx, c.ID, p.TenantID); err != nil {
		return t, fmt.Errorf("submit the tenant: %w", err)
	}
	say("3. submitted the tenant: state %s, polling Microsoft Graph until %s", c.State, c.Progress.Deadline.Format(time.RFC3339))
	c, err = api.Wait(ctx, c.ID, p.Poll, InState("sp_verified", "draft"), watch)
	if err != nil {
		return t, err
	}
	if c.State != "sp_verified" {
		return t, fmt.Errorf("service principal not found: %s", c.LastError)
	}
	t.SPFound = time.Since(installed)
	say("   service principal found: %s, %s after the install", c.Azure.SPObjectID, t.SPFound.Round(time.Millisecond))

	form := StorageForm{SubscriptionID: p.SubscriptionID, ResourceGroup: p.ResourceGroup, StorageAccount: p.Account, ContainerName: p.Container}
	if c, err = api.SubmitStorage(ctx, c.ID, form); err != nil {
		return t, fmt.Errorf("submit the storage details: %w", err)
	}
	say("4. submitted the storage details before granting the role: state %s", c.State)
	c, err = api.Wait(ctx, c.ID, p.Poll, func(c Credential) bool {
		return c.State != "access_pending" || c.Status() == "waiting_for_role_propagation"
	}, watch)
	if err != nil {
		return t, err
	}
	if c.State != "access_pending" {
		return t, fmt.Errorf("the probe ended before the role was granted: %s (%s)", c.State, c.LastError)
	}
	say("   %s", c.LastError)
	say("   role command shown to the customer:\n%s", indent(c.RoleAssignmentCommand, "             "))

	scope := AccountScope(p.SubscriptionID, p.ResourceGroup, p.Account)
	if _, err := customer.GrantRole(ctx, spID, RoleContributor, scope); err != nil {
		return t, fmt.Errorf("grant the role: %w", err)
	}
	granted := time.Now()
	say("5. customer granted %s on %s", RoleContributor, scope)
	c, err = api.Wait(ctx, c.ID, p.Poll, func(c Credential) bool {
		return c.State != "access_pending" || c.Status() == "timed_out"
	}, watch)
	if err != nil {
		return t, err
	}
	if c.State != "verified" {
		return t, fmt.Errorf("access not verified: state %s, status %s: %s", c.State, c.Status(), c.LastError)
	}
	t.Verified = time.Since(granted)
	t.Total = time.Since(start)
	say("6. verified: %s after the grant (role propagation included), %s in all", t.Verified.Round(time.Millisecond), t.Total.Round(time.Millisecond))
	return t, nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
