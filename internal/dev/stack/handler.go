package stack

import (
	"net"
	"net/url"

	"github.com/activeloopai/azcreds/internal/config"
)

// HandlerConfig is what differs between the handlers of local stacks.
type HandlerConfig struct {
	// Storage is AzureWebJobsStorage: a connection string to the handler's own tables and
	// queues (Azurite's, or the fault proxy's in front of it).
	Storage          string
	StandInURL       string // the stand-in's base URL
	StorageFrontAddr string // host:port of the stand-in's storage front
	// Listen is the handler's host:port.
	Listen         string
	CertFile       string // the local certificate, which the handler trusts
	PublicKeyFile  string // verifies API tokens
	SigningKeyFile string // signs them, for `handler token`; optional
	// Settings are further KEY=VALUE settings, which win over the stack's own: a test's
	// short windows, a table of its own.
	Settings []string
}

// HandlerEnv is the environment of a handler in the local stack: every setting it needs
// to reach the stand-in for Entra ID, Graph and the managed identity, Azurite for its own
// storage, and the stand-in's storage front for the customers' accounts. `make run`,
// `make load` and the end-to-end tests all start the handler with it, so a setting the
// local stack needs is added here and nowhere else.
func HandlerEnv(c HandlerConfig) []string {
	_, frontPort, _ := net.SplitHostPort(c.StorageFrontAddr)
	env := []string{
		// The local stack's endpoints and local-only settings below are refused without it.
		config.KeyLocalStack + "=true",
		"SSL_CERT_FILE=" + c.CertFile,
		config.KeyStorage + "=" + c.Storage,
		config.KeyHomeTenantID + "=" + HomeTenantID,
		config.KeyManagedIdentityClientID + "=" + ManagedIdentityClientID,
		config.KeyManagedIdentityObjectID + "=" + ManagedIdentityObjectID,
		config.KeyAuthorityHost + "=" + c.StandInURL + "/",
		config.KeyGraphBaseURL + "=" + c.StandInURL + "/v1.0",
		// The App Service managed identity source, which the Functions host provides.
		"IDENTITY_ENDPOINT=" + c.StandInURL + "/msi/token",
		"IDENTITY_HEADER=" + IdentityHeader,
		config.KeyAuthIssuer + "=" + AuthIssuer,
		config.KeyAuthAudience + "=" + AuthAudience,
		config.KeyAuthPublicKeyFile + "=" + c.PublicKeyFile,
		// Workload identities: the stand-in, the authority above, issues their tokens.
		config.KeyAPIAppID + "=" + APIAppID,
		config.KeyBlobEndpointTemplate + "=https://%s.blob.localhost:" + frontPort + "/",
		config.KeyLocalBlobAddr + "=" + c.StorageFrontAddr,
		config.KeyLocalBlobAccounts + "=" + accountNames(Accounts()),
		// The environment default: the platform's own account, where the managed identity
		// creates one container per organization and signs its SAS.
		config.KeyDefaultStorageAccount + "=" + PlatformAccountName,
		config.KeyListenAddr + "=" + c.Listen,
		// The wizard page at /wizard/, whose customer panel plays the customer through the
		// stand-in (the authority host above).
		config.KeyLocalWizard + "=true",
		// The wizard page the handler serves, where the stand-in's admin consent sends the
		// administrator back: every app registration lists it.
		config.KeyAdminConsentRedirectURI + "=http://" + c.Listen + "/wizard/",
	}
	if c.SigningKeyFile != "" {
		env = append(env, config.KeyAuthSigningKeyFile+"="+c.SigningKeyFile)
	}
	return append(env, c.Settings...)
}

// Names of the environment that tells tests where the shared test Azurite is;
// internal/dev/testenv reads it.
const (
	EnvTestAzuriteBlob     = "AZCREDS_TEST_AZURITE_BLOB"
	EnvTestAzuriteQueue    = "AZCREDS_TEST_AZURITE_QUEUE"
	EnvTestAzuriteTable    = "AZCREDS_TEST_AZURITE_TABLE"
	EnvTestAzuriteAccounts = "AZCREDS_TEST_AZURITE_ACCOUNTS"
	EnvCertFile            = "SSL_CERT_FILE"
)

// TestEnv is the environment of `go test` against a's Azurite.
func TestEnv(a *Azurite) []string {
	e := a.Endpoints()
	return []string{
		EnvCertFile + "=" + a.CertFile,
		EnvTestAzuriteBlob + "=" + e.Blob,
		EnvTestAzuriteQueue + "=" + e.Queue,
		EnvTestAzuriteTable + "=" + e.Table,
		EnvTestAzuriteAccounts + "=" + AzuriteAccounts(a.Accounts),
	}
}

// WizardURL opens the wizard page of the handler at handlerURL signed in for org: the
// token rides in the URL fragment, which the browser never sends to a server (so no log
// records it); the page moves it into the tab's sessionStorage and clears the address bar.
func WizardURL(handlerURL, org, token string) string {
	return handlerURL + "/wizard/#" + url.Values{"org": {org}, "token": {token}}.Encode()
}
