package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/wizard"
)

// localMinter signs API tokens with the local stack's key (AZCREDS_AUTH_SIGNING_KEY_FILE),
// read like every setting: local.settings.json Values, then the environment. Only the local
// stack mints tokens: the key is a local-only setting.
func localMinter(settings string) (*auth.Minter, error) {
	values, err := config.ReadLocalSettings(settings)
	if err != nil {
		return nil, err
	}
	get := func(key string) string {
		if v, ok := os.LookupEnv(key); ok {
			return v
		}
		return values[key]
	}
	if local, err := strconv.ParseBool(strings.TrimSpace(get(config.KeyLocalStack))); err != nil || !local {
		return nil, fmt.Errorf("tokens are minted for the local stack only: set %s=true", config.KeyLocalStack)
	}
	keyFile := get(config.KeyAuthSigningKeyFile)
	if keyFile == "" {
		return nil, fmt.Errorf("%s is not set", config.KeyAuthSigningKeyFile)
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return auth.NewMinter(pem, get(config.KeyAuthIssuer), get(config.KeyAuthAudience), time.Now)
}

// mintToken prints an API token for the local stack.
func mintToken(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	org := fs.String("org", "", "organization id the token is good for (several: comma-separated)")
	sub := fs.String("sub", "local-user", "subject of the token")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	settings := fs.String("settings", settingsFile, "local.settings.json to read Values from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" {
		return errors.New("token: --org is required")
	}
	m, err := localMinter(*settings)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := m.Mint(*sub, strings.Split(*org, ","), *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Println(tok)
	return nil
}

// walkthrough plays one whole onboarding against the local stack (`make run`): the
// wizard's requests to the API and the customer's steps through the stand-in's control
// endpoints, printing each step with the time it took.
func walkthrough(args []string) error {
	fs := flag.NewFlagSet("walkthrough", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:7071", "the handler's base URL")
	control := fs.String("control", "https://127.0.0.1:7443/control", "the stand-in's control endpoints")
	org := fs.String("org", "demo-org", "organization")
	tenant := fs.String("tenant", "", "customer tenant id (one the stand-in knows)")
	account := fs.String("account", "custacct1", "customer storage account (an Azurite account)")
	subscription := fs.String("subscription", "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "customer subscription id")
	group := fs.String("resource-group", "lake-rg", "customer resource group")
	container := fs.String("container", "", "container (default: a new one)")
	prefix := fs.String("prefix", "tables", "path prefix in the container")
	poll := fs.Duration("poll", 3*time.Second, "how often to read the credential, like the wizard")
	timeout := fs.Duration("timeout", 16*time.Minute, "give up after this long")
	settings := fs.String("settings", settingsFile, "local.settings.json to read Values from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" {
		return errors.New("walkthrough: --tenant is required")
	}
	m, err := localMinter(*settings)
	if err != nil {
		return fmt.Errorf("walkthrough: %w", err)
	}
	tok, err := m.Mint("walkthrough", []string{*org}, time.Hour)
	if err != nil {
		return err
	}
	suffix := uuid.NewString()[:8]
	if *container == "" {
		*container = "walkthrough-" + suffix
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t, err := wizard.Walkthrough(ctx, &wizard.API{BaseURL: *api, Org: *org, Token: tok},
		&wizard.Customer{ControlURL: *control}, wizard.Plan{
			Name: "walkthrough-" + suffix, TenantID: *tenant, SubscriptionID: *subscription, ResourceGroup: *group,
			Account: *account, Container: *container, Prefix: *prefix, Poll: *poll}, os.Stdout)
	if err != nil {
		return fmt.Errorf("walkthrough: %w", err)
	}
	fmt.Printf("\nservice principal install -> sp_verified: %s\nrole grant -> verified: %s\ntotal: %s\n",
		t.SPFound.Round(time.Millisecond), t.Verified.Round(time.Millisecond), t.Total.Round(time.Millisecond))
	return nil
}
