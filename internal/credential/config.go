package credential

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Defaults of the onboarding's waiting windows. These, DefaultPollInterval and
// DefaultCreateGuardDelay are defined here alone: a zero Config field takes them, and
// internal/config gives them to the settings left out.
const (
	DefaultSPPollWindow      = 10 * time.Minute
	DefaultAccessProbeWindow = 5 * time.Minute
	DefaultPropagationGrace  = 2 * time.Minute
	// AppNamePrefix names app registrations: "deeplake-<credential name>".
	AppNamePrefix = "deeplake-"
)

// Cloud is what the domain needs to know of the Azure cloud it runs in (internal/config
// has the table of clouds): where Entra ID's sign-in pages are, who issues the managed
// identity's tokens, the audience of those tokens that federated identity credentials
// trust, and the Azure portal. A zero field takes PublicCloud's.
type Cloud struct {
	// LoginEndpoint is Entra ID's authority host with a trailing slash, e.g.
	// https://login.microsoftonline.com/: the admin consent URL's host (on the local stack
	// the stand-in, which serves the same endpoint).
	LoginEndpoint string
	// TokenIssuerAuthority is the authority in the iss of the v2.0 tokens Entra ID issues
	// in the cloud, with a trailing slash: the managed identity's token-exchange token
	// names <it><home tenant>/v2.0, which every federated identity credential must name as
	// its issuer.
	TokenIssuerAuthority string
	// TokenExchangeAudience is the audience of that token, which the federated identity
	// credentials name: api://AzureADTokenExchange in the public cloud.
	TokenExchangeAudience string
	// Portal is the Azure portal, e.g. https://portal.azure.com, without a trailing slash.
	Portal string
}

// PublicCloud is Azure's public cloud.
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity
var PublicCloud = Cloud{
	LoginEndpoint:         "https://login.microsoftonline.com/",
	TokenIssuerAuthority:  "https://login.microsoftonline.com/",
	TokenExchangeAudience: "api://AzureADTokenExchange",
	Portal:                "https://portal.azure.com",
}

// withDefaults gives each zero field PublicCloud's.
func (c *Cloud) withDefaults() {
	if c.LoginEndpoint == "" {
		c.LoginEndpoint = PublicCloud.LoginEndpoint
	}
	if c.TokenIssuerAuthority == "" {
		c.TokenIssuerAuthority = PublicCloud.TokenIssuerAuthority
	}
	if c.TokenExchangeAudience == "" {
		c.TokenExchangeAudience = PublicCloud.TokenExchangeAudience
	}
	if c.Portal == "" {
		c.Portal = PublicCloud.Portal
	}
	c.LoginEndpoint = strings.TrimSuffix(c.LoginEndpoint, "/") + "/"
	c.TokenIssuerAuthority = strings.TrimSuffix(c.TokenIssuerAuthority, "/") + "/"
	c.Portal = strings.TrimSuffix(c.Portal, "/")
}

// Config is what the job types need to know about the platform; each reads its part.
type Config struct {
	// HomeTenantID is the platform's own Entra tenant, where app registrations live.
	HomeTenantID string
	// ManagedIdentityObjectID is the object (principal) id of the backend's user-assigned
	// managed identity: the subject every federated identity credential trusts.
	ManagedIdentityObjectID string
	// Cloud is the Azure cloud's endpoints and token-exchange audience; PublicCloud's by
	// default.
	Cloud Cloud
	// AdminConsentRedirectURI is where Entra ID sends an administrator back after the admin
	// consent (the wizard's page): every app registration lists it as a web redirect URI,
	// and the admin consent URL names it. Empty: neither does, and Entra ID shows its own
	// page after the consent.
	AdminConsentRedirectURI string
	SPPollWindow            time.Duration
	AccessProbeWindow       time.Duration
	PropagationGrace        time.Duration
	// SPPollInterval and AccessProbeInterval space the attempts of the two windows.
	SPPollInterval      time.Duration
	AccessProbeInterval time.Duration
	// EnvironmentDefault is the platform's own storage for workspaces with no credential.
	EnvironmentDefault EnvironmentDefault
	// ResolutionCacheTTL keeps a locked workspace's storage resolution this long (0: off);
	// it is the TTL of the instance's ResolutionCache (NewResolutionCache).
	ResolutionCacheTTL time.Duration
	// HealthSpread spreads a health sweep's probes over this long (0: all at once).
	HealthSpread time.Duration
	// HealthRecheck is when a credential whose health check failed once is checked again
	// (HealthMonitor): only a second failure in a row marks it degraded.
	HealthRecheck time.Duration
	// MaxDeliveries is how often the queue delivers a failing job's message before it sets
	// it aside in the poison queue (the host's maxDequeueCount): the Runner notes the
	// failure of the last delivery for the reconciler to show.
	MaxDeliveries int
	// CreateGuardDelay is when a create's guard runs (Jobs.CleanUpApp); creating the app
	// registration gets half of it.
	CreateGuardDelay time.Duration
	// WindowBackstop is when a submit's backstop becomes visible (windows.backstop); 0:
	// the longer of a minute and three poll intervals.
	WindowBackstop time.Duration
	// CreateRate limits how fast one organization creates credentials, per instance (each
	// instance has its own buckets); the zero Rate: no limit. The per-organization quota
	// (the store's) is the hard bound.
	CreateRate Rate
	// APIAppID is the client id of the platform API's own app registration, which a
	// customer installs in their tenant before their workload identities can get tokens
	// for the API ("": workload identities are off).
	APIAppID string
	// WorkloadIdentityCacheTTL keeps the answer of a workload identity's registry lookup
	// this long (0: nothing is kept); it bounds how long another instance still admits a
	// removed identity (WorkloadIdentities).
	WorkloadIdentityCacheTTL time.Duration
}

// DefaultCreateGuardDelay is when a create's guard looks for an app registration the
// create left behind: far beyond any create, which gets half of it.
const DefaultCreateGuardDelay = 10 * time.Minute

// UniqueAppName is the unique name (Graph's alternate key) of credential id's app
// registration: a create can be repeated without making a second app, and the app of a
// create that died half-way can be found.
func UniqueAppName(credentialID string) string { return "azcreds-" + credentialID }

// DefaultHealthRecheck is when a first failed health check is checked again: soon, so a
// real loss of access shows within minutes, and not at once, so a passing fault does not.
const DefaultHealthRecheck = time.Minute

// DefaultMaxDeliveries is the Functions host's maxDequeueCount (host.json), which the
// standalone worker applies too.
const DefaultMaxDeliveries = 5

// DefaultPollInterval spaces poll attempts: Entra and RBAC usually settle within seconds
// to a minute, and the wizard polls the credential every 3 to 5 seconds.
const DefaultPollInterval = 5 * time.Second

// withDefaults gives each zero window, interval and delay its default.
func (c *Config) withDefaults() {
	orDefault(&c.SPPollWindow, DefaultSPPollWindow)
	orDefault(&c.AccessProbeWindow, DefaultAccessProbeWindow)
	orDefault(&c.PropagationGrace, DefaultPropagationGrace)
	orDefault(&c.SPPollInterval, DefaultPollInterval)
	orDefault(&c.AccessProbeInterval, DefaultPollInterval)
	orDefault(&c.CreateGuardDelay, DefaultCreateGuardDelay)
	orDefault(&c.HealthRecheck, DefaultHealthRecheck)
	orDefault(&c.MaxDeliveries, DefaultMaxDeliveries)
	if c.EnvironmentDefault.ContainerPrefix == "" {
		c.EnvironmentDefault.ContainerPrefix = DefaultContainerPrefix
	}
	c.Cloud.withDefaults()
}

// orDefault sets *v to d when it is zero or less.
func orDefault[T time.Duration | int](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// FederatedCredentialIssuer is the home tenant's v2.0 issuer in the cloud, which issues
// the managed identity tokens that the app registrations trust:
// <token issuer authority><home tenant>/v2.0 (in Azure China
// https://login.partner.microsoftonline.cn/<tenant>/v2.0, as its tokens name it).
func (c Config) FederatedCredentialIssuer() string {
	cl := c.Cloud
	cl.withDefaults()
	return cl.TokenIssuerAuthority + c.HomeTenantID + "/v2.0"
}

// federatedCredential is the trust every app registration places in the backend's
// managed identity: its token-exchange tokens, issued in the home tenant, for the cloud's
// token-exchange audience.
func (c Config) federatedCredential(credentialID, orgID string) FederatedCredential {
	cl := c.Cloud
	cl.withDefaults()
	return FederatedCredential{
		Name:        "azcreds-backend",
		Issuer:      c.FederatedCredentialIssuer(),
		Subject:     c.ManagedIdentityObjectID,
		Audiences:   []string{cl.TokenExchangeAudience},
		Description: fmt.Sprintf("Trusts the platform backend for credential %s of organization %s", credentialID, orgID),
	}
}

// Option adjusts a job type; tests use it to inject a clock.
type Option func(*options)

// options are what every job type may have adjusted.
type options struct {
	now   func() time.Time
	newID func() string
	rows  *RecentRows
}

// WithClock makes a job type read time from now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRecentRows makes Onboarding and Jobs remember the rows they read and write in rows,
// and start submits and window attempts from them (RecentRows). Give both the same rows:
// a submit's job then finds the row its submit wrote.
func WithRecentRows(rows *RecentRows) Option { return func(o *options) { o.rows = rows } }

func newOptions(opts []Option) options {
	o := options{now: time.Now, newID: uuid.NewString}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// required fails naming every one of deps that is nil: a job type takes only the ports it
// uses and works with none missing.
func required(owner string, deps map[string]any) error {
	var missing []string
	for name, d := range deps {
		if d == nil {
			missing = append(missing, name)
			continue
		}
		switch v := reflect.ValueOf(d); v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice, reflect.Chan:
			if v.IsNil() {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%s: missing %s", owner, strings.Join(missing, ", "))
}

// errNoIdentity refuses a Config without the platform's tenant and identity.
var errNoIdentity = errors.New("home tenant id and managed identity object id are required")
