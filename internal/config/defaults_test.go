package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// durationDefaults are the settings whose default is a duration, with it.
func durationDefaults() map[string]time.Duration {
	return map[string]time.Duration{
		KeySPPollWindow:             DefaultSPPollWindow,
		KeyAccessProbeWindow:        DefaultAccessProbeWindow,
		KeyPropagationGrace:         DefaultPropagationGrace,
		KeySPPollInterval:           DefaultSPPollInterval,
		KeyAccessProbeInterval:      DefaultAccessProbeInterval,
		KeyCreateGuardDelay:         DefaultCreateGuardDelay,
		KeyResolutionCacheTTL:       DefaultResolutionCacheTTL,
		KeyWorkloadIdentityCacheTTL: DefaultWorkloadIdentityCacheTTL,
		KeyHealthInterval:           DefaultHealthInterval,
		KeyHealthSpread:             DefaultHealthSpread,
	}
}

// TestDefaultsAreTheDomains: a setting left out gives the service what a zero field of
// credential.Config gives it.
func TestDefaultsAreTheDomains(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Duration{
		KeySPPollWindow: c.SPPollWindow, KeyAccessProbeWindow: c.AccessProbeWindow, KeyPropagationGrace: c.PropagationGrace,
		KeySPPollInterval: c.SPPollInterval, KeyAccessProbeInterval: c.AccessProbeInterval, KeyCreateGuardDelay: c.CreateGuardDelay,
	}
	want := map[string]time.Duration{
		KeySPPollWindow: credential.DefaultSPPollWindow, KeyAccessProbeWindow: credential.DefaultAccessProbeWindow,
		KeyPropagationGrace: credential.DefaultPropagationGrace, KeySPPollInterval: credential.DefaultPollInterval,
		KeyAccessProbeInterval: credential.DefaultPollInterval, KeyCreateGuardDelay: credential.DefaultCreateGuardDelay,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s left out: %v, the domain's default is %v", k, got[k], w)
		}
	}
}

// TestExampleShowsTheDefaults: local.settings.json.example sets each defaulted setting to
// its default, so copying the example changes nothing the binary would not do by itself.
func TestExampleShowsTheDefaults(t *testing.T) {
	values, err := ReadLocalSettings(filepath.Join("..", "..", "local.settings.json.example"))
	if err != nil {
		t.Fatal(err)
	}
	for k, def := range durationDefaults() {
		d, err := time.ParseDuration(values[k])
		if err != nil || d != def {
			t.Errorf("the example sets %s to %q, not its default %v", k, values[k], def)
		}
	}
	if v := values[KeyHealthSchedule]; v != DefaultHealthSchedule {
		t.Errorf("the example sets %s to %q, not its default %q", KeyHealthSchedule, v, DefaultHealthSchedule)
	}
}

// TestLoadMinting: `handler token` reads its settings as serve does (the environment over
// the file, values trimmed), and only on the local stack.
func TestLoadMinting(t *testing.T) {
	for _, k := range Keys() {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "local.settings.json")
	file := `{"Values":{"AZCREDS_LOCAL_STACK":" true ","AZCREDS_AUTH_SIGNING_KEY_FILE":"from-file.pem",` +
		`"AZCREDS_AUTH_ISSUER":" https://issuer.local/ ","AZCREDS_AUTH_AUDIENCE":"aud-file"}}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(KeyAuthAudience, "aud-env")
	m, err := LoadMinting(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Minting{SigningKeyFile: "from-file.pem", Issuer: "https://issuer.local/", Audience: "aud-env"}); m != want {
		t.Errorf("LoadMinting = %+v, want %+v", m, want)
	}

	t.Setenv(KeyAuthSigningKeyFile, " ")
	if _, err := LoadMinting(path); err == nil || !strings.Contains(err.Error(), KeyAuthSigningKeyFile) {
		t.Errorf("a blank signing key file: %v, want an error naming %s", err, KeyAuthSigningKeyFile)
	}
	t.Setenv(KeyAuthSigningKeyFile, "key.pem")
	for _, v := range []string{"false", "maybe"} {
		t.Setenv(KeyLocalStack, v)
		if _, err := LoadMinting(path); err == nil || !strings.Contains(err.Error(), KeyLocalStack) {
			t.Errorf("%s=%s: %v, want a refusal naming it", KeyLocalStack, v, err)
		}
	}
	os.Unsetenv(KeyLocalStack)
	if _, err := LoadMinting(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), KeyLocalStack) {
		t.Errorf("no file and no local stack in the environment: %v, want a refusal naming %s", err, KeyLocalStack)
	}
}
