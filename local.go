package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/config"
)

// localMinter signs API tokens with the local stack's key (AZCREDS_AUTH_SIGNING_KEY_FILE),
// read like every setting (config.LoadMinting).
func localMinter(settings string) (*auth.Minter, error) {
	m, err := config.LoadMinting(settings)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(m.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	return auth.NewMinter(pem, m.Issuer, m.Audience, time.Now)
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
