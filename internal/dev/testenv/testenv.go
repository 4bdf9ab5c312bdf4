// Package testenv holds helpers for tests that need the local Azurite.
//
// `make test` starts a throw-away Azurite (blob, queue and table over HTTPS, with
// `--oauth basic`) and tells the tests where it is through AZCREDS_TEST_AZURITE_* and
// SSL_CERT_FILE. A test that needs storage calls [Azurite], which fails the test when that
// environment is missing instead of skipping it: a skipped storage test would let a CI
// without storage pass.
package testenv

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// DevAccount is Azurite's default account; the platform's own storage in tests.
const DevAccount = stack.PlatformAccountName

// The environment `make test` sets (stack.TestEnv).
const (
	envBlob     = stack.EnvTestAzuriteBlob
	envQueue    = stack.EnvTestAzuriteQueue
	envTable    = stack.EnvTestAzuriteTable
	envAccounts = stack.EnvTestAzuriteAccounts
	envCert     = stack.EnvCertFile
)

// Env says where the test Azurite is and how to sign in to it.
type Env struct {
	// BlobEndpoint, QueueEndpoint and TableEndpoint are the service roots without an
	// account, e.g. "https://127.0.0.1:10100".
	BlobEndpoint  string
	QueueEndpoint string
	TableEndpoint string
	// Accounts maps every Azurite account name to its base64 shared key.
	Accounts map[string]string
	// AccountName and AccountKey are DevAccount's.
	AccountName string
	AccountKey  string
	// ConnString is ConnectionString(DevAccount).
	ConnString string
	// CertFile is the PEM certificate Azurite serves; Go trusts it through SSL_CERT_FILE.
	CertFile string
}

// Azurite returns the test Azurite's Env, or fails the test when `make test` did not set
// the environment.
func Azurite(t testing.TB) Env {
	t.Helper()
	var missing []string
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	e := Env{
		BlobEndpoint:  strings.TrimRight(get(envBlob), "/"),
		QueueEndpoint: strings.TrimRight(get(envQueue), "/"),
		TableEndpoint: strings.TrimRight(get(envTable), "/"),
		CertFile:      get(envCert),
		AccountName:   DevAccount,
	}
	accounts := get(envAccounts)
	if len(missing) > 0 {
		t.Fatalf("this test needs the local Azurite, but the environment lacks %s: run it with `make test` "+
			"(or `make test PKGS=./path/to/pkg`), which starts Azurite and sets the environment",
			strings.Join(missing, ", "))
	}
	for name, v := range map[string]string{envBlob: e.BlobEndpoint, envQueue: e.QueueEndpoint, envTable: e.TableEndpoint} {
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" {
			t.Fatalf("%s=%q: want an https service root such as https://127.0.0.1:10100", name, v)
		}
	}
	e.Accounts = make(map[string]string)
	for _, entry := range strings.Split(accounts, ";") {
		name, key, ok := strings.Cut(entry, ":")
		if !ok || name == "" || key == "" {
			t.Fatalf("%s: entry %q is not <account>:<key>", envAccounts, entry)
		}
		e.Accounts[name] = key
	}
	e.AccountKey = e.Accounts[DevAccount]
	if e.AccountKey == "" {
		t.Fatalf("%s does not list %s", envAccounts, DevAccount)
	}
	e.ConnString = e.ConnectionString(DevAccount)
	return e
}

// ConnectionString returns a shared-key connection string for account with explicit
// path-style https endpoints (the Go SDKs refuse UseDevelopmentStorage=true). It panics for an
// account that Azurite does not serve.
func (e Env) ConnectionString(account string) string {
	key, ok := e.Accounts[account]
	if !ok {
		names := make([]string, 0, len(e.Accounts))
		for n := range e.Accounts {
			names = append(names, n)
		}
		slices.Sort(names)
		panic(fmt.Sprintf("testenv: Azurite has no account %q (it has %s)", account, strings.Join(names, ", ")))
	}
	return stack.Endpoints{Blob: e.BlobEndpoint, Queue: e.QueueEndpoint, Table: e.TableEndpoint}.
		ConnectionString(stack.Account{Name: account, Key: key})
}

// BlobURL returns the path-style blob service URL of account, e.g.
// "https://127.0.0.1:10100/devstoreaccount1".
func (e Env) BlobURL(account string) string { return e.BlobEndpoint + "/" + account }

// QueueURL returns the path-style queue service URL of account.
func (e Env) QueueURL(account string) string { return e.QueueEndpoint + "/" + account }

// TableURL returns the path-style table service URL of account.
func (e Env) TableURL(account string) string { return e.TableEndpoint + "/" + account }

const (
	nameLen   = 40 // at most, so that suffixes such as "-poison" still fit
	suffixLen = 12 // 60 random bits
)

// UniqueName returns a new name on every call: prefix reduced to lowercase letters and
// digits (starting with a letter, at most 28 characters) followed by 12 random ones. It is
// valid as a table, queue and blob container name alike, and at most 40 characters long.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		}
	}
	p := b.String()
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "t" + p
	}
	p = p[:min(len(p), nameLen-suffixLen)]
	return p + strings.ToLower(rand.Text()[:suffixLen])
}
