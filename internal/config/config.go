package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// The settings the binary reads, named as they appear in app settings, in
// local.settings.json and in the environment.
const (
	KeyCustomHandlerPort = "FUNCTIONS_CUSTOMHANDLER_PORT"
	KeyListenAddr        = "AZCREDS_LISTEN_ADDR"
	KeyLogLevel          = "AZCREDS_LOG_LEVEL"

	// KeyLocalStack (true) runs the handler against the local stack: it allows endpoints
	// that are not Microsoft's and the local-only settings (LocalOnly). Without it the
	// handler is in Azure mode; under the Functions host it is refused.
	KeyLocalStack = "AZCREDS_LOCAL_STACK"
	// KeyLocalInvocations (true, local stack only) serves the Functions host's invocation
	// endpoints on the standalone listener and runs no queue worker or health ticker, so a
	// test can play the host.
	KeyLocalInvocations = "AZCREDS_LOCAL_INVOCATIONS"
	// KeyLocalWizard (true, local stack only) serves the onboarding wizard page at /wizard/
	// beside the API, with the customer's side played through the stand-in's control
	// endpoints (internal/wizard).
	KeyLocalWizard = "AZCREDS_LOCAL_WIZARD"
	// KeyLocalPprofAddr (local stack only) serves net/http/pprof on a loopback listener of
	// its own, never on the API's, to profile the handler under load.
	KeyLocalPprofAddr = "AZCREDS_LOCAL_PPROF_ADDR"

	KeyStorage                = "AzureWebJobsStorage"
	KeyStorageTableServiceURI = "AzureWebJobsStorage__tableServiceUri"
	KeyStorageQueueServiceURI = "AzureWebJobsStorage__queueServiceUri"
	KeyStorageClientID        = "AzureWebJobsStorage__clientId"
	KeyTableName              = "AZCREDS_TABLE_NAME"
	// KeyQueuePrefix (local stack only) goes before every job queue's name, so that
	// handlers sharing one storage account (tests) never take one another's jobs. Under the
	// Functions host the queue triggers name the queues without one.
	KeyQueuePrefix = "AZCREDS_QUEUE_PREFIX"

	KeyHomeTenantID            = "AZCREDS_HOME_TENANT_ID"
	KeyManagedIdentityClientID = "AZCREDS_MANAGED_IDENTITY_CLIENT_ID"
	KeyManagedIdentityObjectID = "AZCREDS_MANAGED_IDENTITY_OBJECT_ID"
	KeyAuthorityHost           = "AZCREDS_AUTHORITY_HOST"
	KeyGraphBaseURL            = "AZCREDS_GRAPH_BASE_URL"

	KeyBlobEndpointTemplate = "AZCREDS_BLOB_ENDPOINT_TEMPLATE"
	// KeyLocalBlobAddr and KeyLocalBlobAccounts are for the local stack only: where
	// <account>.blob.localhost connects, and which account names resolve.
	KeyLocalBlobAddr     = "AZCREDS_LOCAL_BLOB_ADDR"
	KeyLocalBlobAccounts = "AZCREDS_LOCAL_BLOB_ACCOUNTS"

	// The environment default: the platform's own storage for workspaces without a
	// credential, signed with the backend's managed identity. Each organization gets a
	// container of its own there, named by KeyDefaultContainerPrefix and a hash of its id.
	KeyDefaultStorageAccount  = "AZCREDS_DEFAULT_STORAGE_ACCOUNT"
	KeyDefaultContainerPrefix = "AZCREDS_DEFAULT_CONTAINER_PREFIX"
	KeyDefaultPrefix          = "AZCREDS_DEFAULT_PREFIX"
	// KeyDelegationKeyCache switches the user delegation key cache (on by default); off
	// only to measure what it saves.
	KeyDelegationKeyCache = "AZCREDS_DELEGATION_KEY_CACHE"
	// KeyResolutionCacheTTL keeps a locked workspace's storage resolution this long (0s: off).
	KeyResolutionCacheTTL = "AZCREDS_RESOLUTION_CACHE_TTL"
	// KeyWorkloadIdentityCacheTTL keeps the answer of a workload identity's registry lookup
	// this long (0s: off): how long another instance may still admit a removed identity.
	KeyWorkloadIdentityCacheTTL = "AZCREDS_WORKLOAD_IDENTITY_CACHE_TTL"

	KeyAuthIssuer        = "AZCREDS_AUTH_ISSUER"
	KeyAuthAudience      = "AZCREDS_AUTH_AUDIENCE"
	KeyAuthJWKSURL       = "AZCREDS_AUTH_JWKS_URL"
	KeyAuthPublicKeyFile = "AZCREDS_AUTH_PUBLIC_KEY_FILE"
	// KeyAuthSigningKeyFile is read only by `handler token`, which mints local tokens.
	KeyAuthSigningKeyFile = "AZCREDS_AUTH_SIGNING_KEY_FILE"
	// KeyAPIAppID is the client (application) id of the platform API's own Entra app
	// registration: the audience of the Entra tokens with which customers' workload
	// identities (managed identities) call the API, and the id a customer installs in their
	// tenant. Empty: workload identities are off, and only the platform's tokens are accepted.
	KeyAPIAppID = "AZCREDS_API_APP_ID"
	// KeyAdminConsentRedirectURI is the wizard page an administrator returns to from Entra
	// ID's admin consent: every app registration lists it as a web redirect URI, and each
	// credential's admin_consent_url names it. https in Azure; empty: neither does, and Entra
	// shows its own page after the consent.
	KeyAdminConsentRedirectURI = "AZCREDS_ADMIN_CONSENT_REDIRECT_URI"

	KeySPPollWindow        = "AZCREDS_SP_POLL_WINDOW"
	KeyAccessProbeWindow   = "AZCREDS_ACCESS_PROBE_WINDOW"
	KeyPropagationGrace    = "AZCREDS_PROPAGATION_GRACE"
	KeySPPollInterval      = "AZCREDS_SP_POLL_INTERVAL"
	KeyAccessProbeInterval = "AZCREDS_ACCESS_PROBE_INTERVAL"
	KeyCreateGuardDelay    = "AZCREDS_CREATE_GUARD_DELAY"
)

// The per-organization limits.
const (
	// KeyMaxCredentials and KeyMaxWorkspaces cap what one organization holds (counted
	// in its partition, enforced in the create's transaction).
	KeyMaxCredentials = "AZCREDS_MAX_CREDENTIALS"
	KeyMaxWorkspaces  = "AZCREDS_MAX_WORKSPACES"
	// KeyMaxWorkloadIdentities caps the workload identities one organization registers.
	KeyMaxWorkloadIdentities = "AZCREDS_MAX_WORKLOAD_IDENTITIES"
	// KeyCreateRate limits how fast one organization creates credentials, per instance:
	// "30/1m" (a burst of 30), "30/1m,burst=60", or "off".
	KeyCreateRate = "AZCREDS_CREATE_RATE"
)

// The health sweep's settings (internal/credential, health.go).
const (
	// KeyHealthSchedule is the health-sweep timer function's NCRONTAB schedule, which the
	// Functions host reads (functions/health-sweep); the binary checks its shape at start.
	KeyHealthSchedule = "AZCREDS_HEALTH_SCHEDULE"
	// KeyHealthInterval is the standalone twin of that schedule: how often `serve` without
	// the host sweeps (0 or off: never).
	KeyHealthInterval = "AZCREDS_HEALTH_INTERVAL"
	// KeyHealthSpread spreads one sweep's probes over this long (0s: all at once).
	KeyHealthSpread = "AZCREDS_HEALTH_SPREAD"
	// KeyHealthRecheck is when a credential whose health check failed once is checked
	// again: only a second failure in a row marks it degraded.
	KeyHealthRecheck = "AZCREDS_HEALTH_RECHECK"
)

// The reconciler's settings (internal/credential, reconcile.go).
const (
	// KeyReconcileSchedule is the reconcile timer function's NCRONTAB schedule, which the
	// Functions host reads (functions/reconcile); the binary checks its shape at start.
	KeyReconcileSchedule = "AZCREDS_RECONCILE_SCHEDULE"
	// KeyReconcileInterval is its standalone twin: how often `serve` without the host
	// reconciles (0 or off: never). Instances take a lease, so one reconciles per period.
	KeyReconcileInterval = "AZCREDS_RECONCILE_INTERVAL"
)

// Defaults for the settings that have one.
const (
	DefaultListenAddr    = "127.0.0.1:7071"
	DefaultTableName     = "credentials"
	DefaultAuthorityHost = "https://login.microsoftonline.com/"
	DefaultGraphBaseURL  = "https://graph.microsoft.com/v1.0"
	// DefaultBlobEndpointTemplate is a customer account's blob endpoint in Azure's public
	// cloud; %s is the account name.
	DefaultBlobEndpointTemplate = "https://%s.blob.core.windows.net/"
	// The background work's windows, intervals and guard are the domain's own defaults, which
	// a zero credential.Config field takes too: one definition, so the two cannot disagree.
	DefaultSPPollWindow        = credential.DefaultSPPollWindow
	DefaultAccessProbeWindow   = credential.DefaultAccessProbeWindow
	DefaultPropagationGrace    = credential.DefaultPropagationGrace
	DefaultSPPollInterval      = credential.DefaultPollInterval
	DefaultAccessProbeInterval = credential.DefaultPollInterval
	DefaultCreateGuardDelay    = credential.DefaultCreateGuardDelay
	// DefaultResolutionCacheTTL keeps a locked workspace's resolution a few seconds: a burst
	// of /creds calls costs one lookup, and a change is seen soon everywhere.
	DefaultResolutionCacheTTL = 5 * time.Second
	// DefaultWorkloadIdentityCacheTTL: a busy workload's calls cost no registry read, and a
	// removed identity is refused everywhere within half a minute (at once on the instance
	// that removed it).
	DefaultWorkloadIdentityCacheTTL = 30 * time.Second
	// DefaultHealthSchedule sweeps every 15 minutes, on the quarter hour.
	DefaultHealthSchedule = "0 */15 * * * *"
	DefaultHealthInterval = 15 * time.Minute
	DefaultHealthSpread   = 5 * time.Minute
	DefaultHealthRecheck  = credential.DefaultHealthRecheck
	// DefaultReconcileSchedule reconciles every minute, at second 0.
	DefaultReconcileSchedule = "0 * * * * *"
	DefaultReconcileInterval = time.Minute
	// DefaultContainerPrefix starts the environment default's container names.
	DefaultContainerPrefix = credential.DefaultContainerPrefix
	// DefaultMaxCredentials: each credential is an app registration in the platform's
	// tenant, whose directory objects are finite and shared by every organization.
	DefaultMaxCredentials = 50
	// DefaultMaxWorkspaces: far more than an organization registers by hand, while a
	// client that sends /creds for made-up workspace ids (each writes a row) stops at one
	// page of a Table query (1,000 entities).
	DefaultMaxWorkspaces = 1000
	// DefaultMaxWorkloadIdentities: an organization's jobs rarely need more than a few
	// identities; each is a row its callers are looked up in.
	DefaultMaxWorkloadIdentities = 20
	// DefaultCreateRate: 30 creates a minute, in bursts of up to 30.
	DefaultCreateRate = "30/1m"
	// maxLimit bounds the limits to what one partition sensibly holds.
	maxLimit = 1_000_000
)

// retiredDefaultContainer named the one container every organization shared; each has its
// own now, so a deployment that still sets it is told so rather than silently ignored.
const retiredDefaultContainer = "AZCREDS_DEFAULT_CONTAINER"

// Storage says how to reach the backend's own Table and Queue storage: a connection string
// (Azurite, local work) or service URIs reached with the managed identity (Azure).
type Storage struct {
	ConnectionString string
	TableServiceURI  string
	QueueServiceURI  string
	ClientID         string // the user-assigned identity for storage; empty: the default
}

// Config is the validated settings of the binary.
type Config struct {
	ListenAddr string
	// FunctionsHost is set when the Azure Functions host started the binary.
	FunctionsHost bool
	LogLevel      slog.Level

	// LocalStack is set when the handler runs against the local stack (KeyLocalStack);
	// otherwise it is in Azure mode, under the Functions host, with Microsoft's endpoints.
	LocalStack bool
	// LocalInvocations mounts the Functions host's invocation endpoints on the standalone
	// listener instead of running the queue worker (local stack only).
	LocalInvocations bool
	// LocalWizard serves the wizard page and its customer panel at /wizard/ (local stack
	// only); the panel reaches the stand-in's control endpoints at AuthorityHost.
	LocalWizard bool
	// LocalPprofAddr, when set, is the loopback address of the profiling listener (local
	// stack only).
	LocalPprofAddr string
	// Cloud is the Azure cloud whose endpoints the handler uses. In Azure mode the authority
	// host, Graph base URL and blob endpoint template are this cloud's; on the local stack,
	// whose stand-in plays the public cloud, it is the public cloud.
	Cloud Cloud

	Storage   Storage
	TableName string
	// QueuePrefix goes before every job queue's name (local stack only).
	QueuePrefix string

	HomeTenantID            string
	ManagedIdentityClientID string
	ManagedIdentityObjectID string
	AuthorityHost           string
	GraphBaseURL            string

	// BlobEndpointTemplate is a customer account's blob endpoint, %s the account name.
	BlobEndpointTemplate string
	// LocalBlobAddr, when set, is where <account>.blob.localhost connects (the local
	// stack's storage front), and LocalBlobAccounts the account names that resolve there;
	// every other name fails as a missing account's does.
	LocalBlobAddr     string
	LocalBlobAccounts []string

	// DefaultStorageAccount is the environment default's account ("": none);
	// DefaultContainerPrefix starts each organization's container name there.
	DefaultStorageAccount  string
	DefaultContainerPrefix string
	DefaultPrefix          string
	DelegationKeyCache     bool
	ResolutionCacheTTL     time.Duration
	// WorkloadIdentityCacheTTL keeps a workload identity's registry lookup (0: off).
	WorkloadIdentityCacheTTL time.Duration

	AuthIssuer        string
	AuthAudience      string
	AuthJWKSURL       string
	AuthPublicKeyFile string

	// APIAppID is the platform API's app registration client id, lower case: the audience
	// of workload identities' Entra tokens ("": workload identities off).
	APIAppID string
	// WorkloadIssuerAuthority and WorkloadKeysURL follow the cloud: a workload identity's
	// token names <WorkloadIssuerAuthority><tid>/v2.0 as its issuer and is signed by a key
	// published at WorkloadKeysURL (Entra's tenant-independent v2.0 keys). On the local
	// stack both are the stand-in's, which plays the authority.
	WorkloadIssuerAuthority string
	WorkloadKeysURL         string

	// AdminConsentRedirectURI is the wizard page an administrator returns to after the
	// admin consent ("": none).
	AdminConsentRedirectURI string

	SPPollWindow      time.Duration
	AccessProbeWindow time.Duration
	PropagationGrace  time.Duration
	// SPPollInterval and AccessProbeInterval space the attempts of the two windows.
	SPPollInterval      time.Duration
	AccessProbeInterval time.Duration

	// HealthSchedule is the host's NCRONTAB schedule of the health sweep; HealthInterval
	// its standalone twin (0: off); HealthSpread spreads one sweep's probes.
	HealthSchedule string
	HealthInterval time.Duration
	HealthSpread   time.Duration
	// HealthRecheck is when a first failed health check is checked again.
	HealthRecheck time.Duration
	// ReconcileSchedule is the host's NCRONTAB schedule of the reconciler;
	// ReconcileInterval its standalone twin (0: off).
	ReconcileSchedule string
	ReconcileInterval time.Duration
	// CreateGuardDelay is when a create's guard checks that no app registration of the
	// create outlived it unrecorded.
	CreateGuardDelay time.Duration

	// MaxCredentials and MaxWorkspaces cap one organization; CreateRate limits its
	// creates per instance (the zero Rate: off).
	MaxCredentials int
	MaxWorkspaces  int
	CreateRate     credential.Rate
	// MaxWorkloadIdentities caps the workload identities one organization registers.
	MaxWorkloadIdentities int
}

// Source looks settings up by name.
type Source func(key string) (string, bool)

// Load reads local.settings.json at path (a missing file is fine) and the environment over
// it, and validates the result.
func Load(path string) (Config, error) {
	get, err := Lookup(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(get)
}

// Lookup returns how every command of the binary looks a setting up: the environment
// first, then the Values of local.settings.json at path (a missing file is fine).
func Lookup(path string) (Source, error) {
	values, err := ReadLocalSettings(path)
	if err != nil {
		return nil, err
	}
	return func(key string) (string, bool) {
		if v, ok := os.LookupEnv(key); ok {
			return v, true
		}
		v, ok := values[key]
		return v, ok
	}, nil
}

// Minting is what `handler token` reads: the local stack's key for API tokens and the
// issuer and audience the tokens carry (the ones serve verifies).
type Minting struct {
	SigningKeyFile string
	Issuer         string
	Audience       string
}

// LoadMinting reads the settings of `handler token` as Load does. Only the local stack
// mints tokens: the signing key is a local-only setting.
func LoadMinting(path string) (Minting, error) {
	get, err := Lookup(path)
	if err != nil {
		return Minting{}, err
	}
	p := parser{get: get}
	if !p.boolean(KeyLocalStack, false) {
		return Minting{}, fmt.Errorf("tokens are minted for the local stack only: set %s=true", KeyLocalStack)
	}
	m := Minting{SigningKeyFile: p.required(KeyAuthSigningKeyFile), Issuer: p.str(KeyAuthIssuer, ""), Audience: p.str(KeyAuthAudience, "")}
	if len(p.errs) > 0 {
		return Minting{}, fmt.Errorf("invalid settings: %w", errors.Join(p.errs...))
	}
	return m, nil
}

// ReadLocalSettings returns the Values of a local.settings.json file; none when it is missing.
func ReadLocalSettings(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var file struct {
		Values map[string]string `json:"Values"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return file.Values, nil
}

// Parse builds and validates a Config from settings. Every problem is reported at once.
func Parse(get Source) (Config, error) {
	p := parser{get: get}
	c := Config{
		ListenAddr:               p.str(KeyListenAddr, DefaultListenAddr),
		TableName:                p.str(KeyTableName, DefaultTableName),
		HomeTenantID:             p.required(KeyHomeTenantID),
		ManagedIdentityClientID:  p.str(KeyManagedIdentityClientID, ""),
		ManagedIdentityObjectID:  p.required(KeyManagedIdentityObjectID),
		AuthorityHost:            p.url(KeyAuthorityHost, DefaultAuthorityHost),
		GraphBaseURL:             p.url(KeyGraphBaseURL, DefaultGraphBaseURL),
		BlobEndpointTemplate:     p.endpointTemplate(KeyBlobEndpointTemplate, DefaultBlobEndpointTemplate),
		LocalBlobAddr:            p.hostPort(KeyLocalBlobAddr),
		LocalBlobAccounts:        p.accounts(KeyLocalBlobAccounts),
		LocalPprofAddr:           p.hostPort(KeyLocalPprofAddr),
		DefaultStorageAccount:    p.str(KeyDefaultStorageAccount, ""),
		DefaultContainerPrefix:   p.str(KeyDefaultContainerPrefix, DefaultContainerPrefix),
		DefaultPrefix:            strings.Trim(p.str(KeyDefaultPrefix, ""), "/"),
		DelegationKeyCache:       p.boolean(KeyDelegationKeyCache, true),
		ResolutionCacheTTL:       p.durationOrZero(KeyResolutionCacheTTL, DefaultResolutionCacheTTL),
		WorkloadIdentityCacheTTL: p.durationOrZero(KeyWorkloadIdentityCacheTTL, DefaultWorkloadIdentityCacheTTL),
		AuthIssuer:               p.required(KeyAuthIssuer),
		AuthAudience:             p.required(KeyAuthAudience),
		AuthJWKSURL:              p.str(KeyAuthJWKSURL, ""),
		AuthPublicKeyFile:        p.str(KeyAuthPublicKeyFile, ""),
		APIAppID:                 p.guid(KeyAPIAppID),
		AdminConsentRedirectURI:  p.redirectURI(KeyAdminConsentRedirectURI),
		SPPollWindow:             p.duration(KeySPPollWindow, DefaultSPPollWindow),
		AccessProbeWindow:        p.duration(KeyAccessProbeWindow, DefaultAccessProbeWindow),
		PropagationGrace:         p.duration(KeyPropagationGrace, DefaultPropagationGrace),
		SPPollInterval:           p.duration(KeySPPollInterval, DefaultSPPollInterval),
		AccessProbeInterval:      p.duration(KeyAccessProbeInterval, DefaultAccessProbeInterval),
		HealthSchedule:           p.ncrontab(KeyHealthSchedule, DefaultHealthSchedule),
		HealthInterval:           p.intervalOrOff(KeyHealthInterval, DefaultHealthInterval),
		HealthSpread:             p.spread(KeyHealthSpread, DefaultHealthSpread),
		HealthRecheck:            p.duration(KeyHealthRecheck, DefaultHealthRecheck),
		ReconcileSchedule:        p.ncrontab(KeyReconcileSchedule, DefaultReconcileSchedule),
		ReconcileInterval:        p.intervalOrOff(KeyReconcileInterval, DefaultReconcileInterval),
		QueuePrefix:              p.queuePrefix(KeyQueuePrefix),
		CreateGuardDelay:         p.duration(KeyCreateGuardDelay, DefaultCreateGuardDelay),
		MaxCredentials:           p.limit(KeyMaxCredentials, DefaultMaxCredentials),
		MaxWorkspaces:            p.limit(KeyMaxWorkspaces, DefaultMaxWorkspaces),
		MaxWorkloadIdentities:    p.limit(KeyMaxWorkloadIdentities, DefaultMaxWorkloadIdentities),
		CreateRate:               p.rate(KeyCreateRate, DefaultCreateRate),
		Storage: Storage{
			ConnectionString: p.str(KeyStorage, ""),
			TableServiceURI:  p.str(KeyStorageTableServiceURI, ""),
			QueueServiceURI:  p.str(KeyStorageQueueServiceURI, ""),
			ClientID:         p.str(KeyStorageClientID, ""),
		},
	}
	if port := p.str(KeyCustomHandlerPort, ""); port != "" {
		c.ListenAddr = "127.0.0.1:" + port
		c.FunctionsHost = true
	}
	c.LocalStack = p.boolean(KeyLocalStack, false)
	c.LocalInvocations = p.boolean(KeyLocalInvocations, false)
	c.LocalWizard = p.boolean(KeyLocalWizard, false)
	if c.LocalStack {
		p.localStack(&c)
	} else {
		p.azure(&c)
	}
	if err := c.LogLevel.UnmarshalText([]byte(p.str(KeyLogLevel, "info"))); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", KeyLogLevel, err))
	}
	p.related(&c)
	if len(p.errs) > 0 {
		return Config{}, fmt.Errorf("invalid settings: %w", errors.Join(p.errs...))
	}
	return c, nil
}

// related checks what no single setting can tell by itself: settings that go together, and
// the environment default's names.
func (p *parser) related(c *Config) {
	if (c.AuthJWKSURL == "") == (c.AuthPublicKeyFile == "") {
		p.errs = append(p.errs, fmt.Errorf("set exactly one of %s and %s", KeyAuthJWKSURL, KeyAuthPublicKeyFile))
	}
	s := c.Storage
	switch {
	case s.ConnectionString != "" || (s.TableServiceURI != "" && s.QueueServiceURI != ""):
	case c.LocalStack:
		p.errs = append(p.errs, fmt.Errorf("set %s (a connection string) or both %s and %s",
			KeyStorage, KeyStorageTableServiceURI, KeyStorageQueueServiceURI))
	default:
		p.errs = append(p.errs, fmt.Errorf("set both %s and %s (reached with the managed identity)",
			KeyStorageTableServiceURI, KeyStorageQueueServiceURI))
	}
	if c.DefaultStorageAccount != "" {
		if err := credential.ValidateStorageAccount(KeyDefaultStorageAccount, c.DefaultStorageAccount); err != nil {
			p.errs = append(p.errs, fmt.Errorf("%s: %w", KeyDefaultStorageAccount, err))
		}
	}
	if err := credential.ValidateContainerPrefix(KeyDefaultContainerPrefix, c.DefaultContainerPrefix); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", KeyDefaultContainerPrefix, err))
	}
	if v := p.str(retiredDefaultContainer, ""); v != "" {
		p.errs = append(p.errs, fmt.Errorf("%s is no longer read: each organization gets its own container in %s, named %s (default %q) and a hash of the organization id; remove it",
			retiredDefaultContainer, KeyDefaultStorageAccount, KeyDefaultContainerPrefix, DefaultContainerPrefix))
	}
	if (c.LocalBlobAddr == "") != (len(c.LocalBlobAccounts) == 0) {
		p.errs = append(p.errs, fmt.Errorf("set both %s and %s (local stack), or neither", KeyLocalBlobAddr, KeyLocalBlobAccounts))
	}
	if c.AccessProbeWindow > 0 && c.PropagationGrace > c.AccessProbeWindow {
		p.errs = append(p.errs, fmt.Errorf("%s (%s) must not be longer than %s (%s)",
			KeyPropagationGrace, c.PropagationGrace, KeyAccessProbeWindow, c.AccessProbeWindow))
	}
	if c.HealthInterval > 0 && c.HealthSpread > c.HealthInterval {
		p.errs = append(p.errs, fmt.Errorf("%s (%s) must not be longer than %s (%s): one sweep's probes would overlap the next's",
			KeyHealthSpread, c.HealthSpread, KeyHealthInterval, c.HealthInterval))
	}
}

type parser struct {
	get  Source
	errs []error
}

func (p *parser) str(key, def string) string {
	if v, ok := p.get(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (p *parser) required(key string) string {
	v := p.str(key, "")
	if v == "" {
		p.errs = append(p.errs, fmt.Errorf("%s is required", key))
	}
	return v
}

func (p *parser) url(key, def string) string {
	v := p.str(key, def)
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		p.errs = append(p.errs, fmt.Errorf("%s must be an https URL, got %q", key, v))
	}
	return v
}

// endpointTemplate reads an https URL with exactly one %s, for a storage account's name.
func (p *parser) endpointTemplate(key, def string) string {
	v := p.str(key, def)
	u, err := url.Parse(strings.Replace(v, "%s", "account", 1))
	if strings.Count(v, "%s") != 1 || strings.Count(v, "%") != 1 || err != nil || u.Scheme != "https" || u.Host == "" {
		p.errs = append(p.errs, fmt.Errorf("%s must be an https URL with one %%s for the account name, like %s, got %q", key, DefaultBlobEndpointTemplate, v))
	}
	return v
}

var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// guid reads an optional GUID in its 8-4-4-4-12 spelling, as Entra shows ids, lower-cased
// the way Entra writes them into tokens.
func (p *parser) guid(key string) string {
	v := p.str(key, "")
	if v == "" {
		return ""
	}
	if !guidPattern.MatchString(v) {
		p.errs = append(p.errs, fmt.Errorf("%s must be a GUID like 00000000-0000-0000-0000-000000000000 (an application's client id), got %q", key, v))
		return ""
	}
	return strings.ToLower(v)
}

// redirectURI reads an optional redirect URI as Entra ID takes one for a web app: an
// absolute http(s) URL with a host, without credentials or a fragment, at most 256
// characters (https://learn.microsoft.com/entra/identity-platform/reply-url). Azure mode
// wants https (parser.azure).
func (p *parser) redirectURI(key string) string {
	v := p.str(key, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" ||
		u.Opaque != "" || len(v) > 256 {
		p.errs = append(p.errs, fmt.Errorf("%s must be an absolute https URL without a fragment, at most 256 characters (the wizard page, e.g. https://azcreds.example.com/wizard/), got %q", key, v))
		return ""
	}
	return v
}

// DomainCloud is what the domain needs of the cloud: the login endpoint is the authority
// host (the local stand-in on the local stack, which serves the admin consent endpoint),
// the rest the cloud's.
func (c Config) DomainCloud() credential.Cloud {
	return credential.Cloud{LoginEndpoint: c.AuthorityHost, TokenIssuerAuthority: c.Cloud.TokenIssuerAuthority,
		TokenExchangeAudience: c.Cloud.TokenExchangeAudience, Portal: c.Cloud.PortalURL}
}

// hostPort reads an optional host:port.
func (p *parser) hostPort(key string) string {
	v := p.str(key, "")
	if v == "" {
		return ""
	}
	if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
		p.errs = append(p.errs, fmt.Errorf("%s must be host:port, got %q", key, v))
	}
	return v
}

var accountName = regexp.MustCompile(`^[a-z0-9]{3,24}$`)

// accounts reads an optional comma-separated list of storage account names.
func (p *parser) accounts(key string) []string {
	var out []string
	for _, a := range strings.Split(p.str(key, ""), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !accountName.MatchString(a) {
			p.errs = append(p.errs, fmt.Errorf("%s: %q is not a storage account name (3-24 lowercase letters and digits)", key, a))
			continue
		}
		out = append(out, a)
	}
	return out
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s must be true or false, got %q", key, v))
		return def
	}
	return b
}

// durationOrZero is duration with 0 allowed (a switch-off).
func (p *parser) durationOrZero(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Minute {
		p.errs = append(p.errs, fmt.Errorf("%s must be a duration from 0s (off) to 1m, got %q", key, v))
		return def
	}
	return d
}

// intervalOrOff reads a positive duration, or 0 / "off" for none.
func (p *parser) intervalOrOff(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	switch {
	case v == "":
		return def
	case strings.EqualFold(v, "off") || v == "0":
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.errs = append(p.errs, fmt.Errorf("%s must be a positive duration like 15m, or 0 or off, got %q", key, v))
		return def
	}
	return d
}

// spread reads a duration from 0s to a day.
func (p *parser) spread(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > 24*time.Hour {
		p.errs = append(p.errs, fmt.Errorf("%s must be a duration from 0s to 24h, got %q", key, v))
		return def
	}
	return d
}

// ncrontabField is one field of an NCRONTAB expression: *, a number, a range, a list or a
// step of those; numbers of one or two digits, names of three letters (MON, JAN).
var ncrontabField = regexp.MustCompile(`^(\*|(?:[0-9]{1,2}|[A-Za-z]{3})(?:-(?:[0-9]{1,2}|[A-Za-z]{3}))?)(/[0-9]{1,2})?(,(\*|(?:[0-9]{1,2}|[A-Za-z]{3})(?:-(?:[0-9]{1,2}|[A-Za-z]{3}))?)(/[0-9]{1,2})?)*$`)

// ncrontab reads the Functions timer's six-field schedule ({second} {minute} {hour} {day}
// {month} {day-of-week}). The host reads the setting itself; checking it here makes a
// typo fail at start instead of leaving the timer function unindexed.
// https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
func (p *parser) ncrontab(key, def string) string {
	v := p.str(key, def)
	fields := strings.Fields(v)
	ok := len(fields) == 6
	for _, f := range fields {
		ok = ok && ncrontabField.MatchString(f)
	}
	if !ok {
		p.errs = append(p.errs, fmt.Errorf("%s must be an NCRONTAB expression of six fields ({second} {minute} {hour} {day} {month} {day-of-week}) like %q, got %q",
			key, def, v))
	}
	return v
}

// queueName is what Azure allows in a queue name: lowercase letters, digits and single
// hyphens, starting with a letter or digit.
var queueName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*-?$`)

// maxQueuePrefix leaves room in a queue name (63 characters) for the longest job queue and
// its poison suffix.
const maxQueuePrefix = 40

// queuePrefix reads an optional prefix of the job queues' names.
func (p *parser) queuePrefix(key string) string {
	v := p.str(key, "")
	if v != "" && (len(v) > maxQueuePrefix || !queueName.MatchString(v)) {
		p.errs = append(p.errs, fmt.Errorf("%s must be at most %d lowercase letters, digits and single hyphens, starting with a letter or digit, got %q",
			key, maxQueuePrefix, v))
		return ""
	}
	return v
}

// limit reads a count from 1 to maxLimit.
func (p *parser) limit(key string, def int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		p.errs = append(p.errs, fmt.Errorf("%s must be a whole number from 1 to %d, got %q", key, maxLimit, v))
		return def
	}
	return n
}

// rate reads "<count>/<period>[,burst=<n>]" (the period a Go duration; a bare unit such as
// "m" is one of it), or "off". The burst is the count unless given.
func (p *parser) rate(key, def string) credential.Rate {
	v := p.str(key, def)
	if strings.EqualFold(v, "off") {
		return credential.Rate{}
	}
	r, ok := parseRate(v)
	if !ok {
		p.errs = append(p.errs, fmt.Errorf("%s must be creates per period like %s (30 a minute, in bursts of up to 30) or 30/1m,burst=60, or off; got %q",
			key, DefaultCreateRate, v))
		r, _ = parseRate(def)
	}
	return r
}

func parseRate(v string) (credential.Rate, bool) {
	spec, burst, hasBurst := strings.Cut(strings.ReplaceAll(v, " ", ""), ",")
	count, period, ok := strings.Cut(spec, "/")
	if !ok {
		return credential.Rate{}, false
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > maxLimit {
		return credential.Rate{}, false
	}
	if period != "" && !strings.ContainsAny(period[:1], "0123456789") {
		period = "1" + period
	}
	per, err := time.ParseDuration(period)
	if err != nil || per < time.Second || per > 24*time.Hour {
		return credential.Rate{}, false
	}
	r := credential.Rate{Count: n, Per: per, Burst: n}
	if hasBurst {
		b, ok := strings.CutPrefix(burst, "burst=")
		if r.Burst, err = strconv.Atoi(b); !ok || err != nil || r.Burst < 1 || r.Burst > maxLimit {
			return credential.Rate{}, false
		}
	}
	return r, true
}

func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.errs = append(p.errs, fmt.Errorf("%s must be a positive duration like 10m or 30s, got %q", key, v))
		return def
	}
	return d
}

// Keys lists every setting the binary reads.
func Keys() []string {
	return []string{
		KeyCustomHandlerPort, KeyListenAddr, KeyLogLevel, KeyLocalStack, KeyLocalInvocations, KeyLocalWizard, KeyLocalPprofAddr,
		KeyStorage, KeyStorageTableServiceURI, KeyStorageQueueServiceURI, KeyStorageClientID, KeyTableName,
		KeyHomeTenantID, KeyManagedIdentityClientID, KeyManagedIdentityObjectID, KeyAuthorityHost, KeyGraphBaseURL,
		KeyBlobEndpointTemplate, KeyLocalBlobAddr, KeyLocalBlobAccounts,
		KeyDefaultStorageAccount, KeyDefaultContainerPrefix, KeyDefaultPrefix, KeyDelegationKeyCache, KeyResolutionCacheTTL,
		KeyWorkloadIdentityCacheTTL,
		KeyAuthIssuer, KeyAuthAudience, KeyAuthJWKSURL, KeyAuthPublicKeyFile, KeyAuthSigningKeyFile, KeyAPIAppID,
		KeyAdminConsentRedirectURI,
		KeySPPollWindow, KeyAccessProbeWindow, KeyPropagationGrace, KeySPPollInterval, KeyAccessProbeInterval,
		KeyHealthSchedule, KeyHealthInterval, KeyHealthSpread, KeyHealthRecheck,
		KeyReconcileSchedule, KeyReconcileInterval, KeyQueuePrefix,
		KeyCreateGuardDelay,
		KeyMaxCredentials, KeyMaxWorkspaces, KeyCreateRate, KeyMaxWorkloadIdentities,
	}
}
