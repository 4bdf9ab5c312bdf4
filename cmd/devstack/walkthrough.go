package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/dev/stack"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// runWalkthrough is `make walkthrough`: with `make run` up, one whole onboarding against it,
// the wizard's requests to the API and the customer's steps through the stand-in's
// control endpoints, each step printed with its time.
func runWalkthrough(ctx context.Context, d *dev, args []string) error {
	fs := flag.NewFlagSet("walkthrough", flag.ContinueOnError)
	org := fs.String("org", stack.DemoOrg, "organization")
	tenant := fs.String("tenant", stack.CustomerTenant1, "customer tenant id (one the stand-in knows)")
	account := fs.String("account", stack.CustomerAccount1Name, "customer storage account (an Azurite account)")
	container := fs.String("container", "", "container (default: a new one)")
	prefix := fs.String("prefix", "tables", "path prefix in the container")
	poll := fs.Duration("poll", 3*time.Second, "how often to read the credential, like the wizard")
	timeout := fs.Duration("timeout", 16*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ports, _, err := runPorts()
	if err != nil {
		return err
	}
	api := "http://" + stack.Addr(ports.Handler)
	if err := answers(ctx, api+"/"); err != nil {
		return fmt.Errorf("nothing answers on %s: start 'make run' first (%v)", api, err)
	}
	client, err := stack.Client(d.files.CertFile())
	if err != nil {
		return err
	}
	tok, err := d.mintToken(*org, "walkthrough", time.Hour)
	if err != nil {
		return err
	}
	suffix := uuid.NewString()[:8]
	if *container == "" {
		*container = "walkthrough-" + suffix
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t, err := walkthrough.Run(ctx, &walkthrough.API{BaseURL: api, Org: *org, Token: tok},
		&walkthrough.Customer{ControlURL: "https://" + stack.Addr(ports.StandIn) + "/control", HTTP: client}, walkthrough.Plan{
			Name: "walkthrough-" + suffix, TenantID: *tenant,
			SubscriptionID: stack.CustomerSubscriptionID, ResourceGroup: stack.CustomerResourceGroup,
			Account: *account, Container: *container, Prefix: *prefix, Poll: *poll}, os.Stdout)
	if err != nil {
		return fmt.Errorf("walkthrough: %w", err)
	}
	fmt.Printf("\nservice principal install -> sp_verified: %s\nrole grant -> verified: %s\ntotal: %s\n",
		t.SPFound.Round(time.Millisecond), t.Verified.Round(time.Millisecond), t.Total.Round(time.Millisecond))
	return nil
}

// answers checks that url gives any HTTP answer.
func answers(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
