package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/config"
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
