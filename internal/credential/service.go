package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Defaults of the waiting windows. These, DefaultPollInterval and DefaultCreateGuardDelay
// are defined here alone: a zero Config field takes them, and internal/config gives them to
// the settings left out.
const (
	DefaultSPPollWindow      = 10 * time.Minute
	DefaultAccessProbeWindow = 5 * time.Minute
	DefaultPropagationGrace  = 2 * time.Minute
	// TokenExchangeAudience is the audience of managed identity tokens used as federated
	// client assertions.
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// AppNamePrefix names app registrations: "deeplake-<credential name>".
	AppNamePrefix = "deeplake-"
)

// Config is what the service needs to know about the platform.
type Config struct {
	// HomeTenantID is the platform's own Entra tenant, where app registrations live.
	HomeTenantID string
	// ManagedIdentityObjectID is the object (principal) id of the backend's user-assigned
	// managed identity: the subject every federated identity credential trusts.
	ManagedIdentityObjectID string
	SPPollWindow            time.Duration
	AccessProbeWindow       time.Duration
	PropagationGrace        time.Duration
	// SPPollInterval and AccessProbeInterval space the attempts of the two windows.
	SPPollInterval      time.Duration
	AccessProbeInterval time.Duration
	// EnvironmentDefault is the platform's own storage for workspaces with no credential.
	EnvironmentDefault EnvironmentDefault
	// ResolutionCacheTTL keeps a locked workspace's storage resolution this long (0: off).
	ResolutionCacheTTL time.Duration
	// HealthSpread spreads a health sweep's probes over this long (0: all at once).
	HealthSpread time.Duration
	// CreateGuardDelay is when a create's guard runs (see CleanUpApp); creating the app
	// registration gets half of it.
	CreateGuardDelay time.Duration
	// WindowBackstop is when a submit's backstop becomes visible (see backstop); 0: the
	// longer of a minute and three poll intervals.
	WindowBackstop time.Duration
	// CreateRate limits how fast one organization creates credentials, per instance (each
	// instance has its own buckets); the zero Rate: no limit. The per-organization quota
	// (the store's) is the hard bound.
	CreateRate Rate
}

// DefaultCreateGuardDelay is when a create's guard looks for an app registration the
// create left behind: far beyond any create, which gets half of it.
const DefaultCreateGuardDelay = 10 * time.Minute

// UniqueAppName is the unique name (Graph's alternate key) of credential id's app
// registration: a create can be repeated without making a second app, and the app of a
// create that died half-way can be found.
func UniqueAppName(credentialID string) string { return "azcreds-" + credentialID }

// DefaultPollInterval spaces poll attempts: Entra and RBAC usually settle within seconds
// to a minute, and the wizard polls the credential every 3 to 5 seconds.
const DefaultPollInterval = 5 * time.Second

// withDefaults gives each zero window, interval and delay its default.
func (c *Config) withDefaults() {
	if c.SPPollWindow <= 0 {
		c.SPPollWindow = DefaultSPPollWindow
	}
	if c.AccessProbeWindow <= 0 {
		c.AccessProbeWindow = DefaultAccessProbeWindow
	}
	if c.PropagationGrace <= 0 {
		c.PropagationGrace = DefaultPropagationGrace
	}
	if c.SPPollInterval <= 0 {
		c.SPPollInterval = DefaultPollInterval
	}
	if c.AccessProbeInterval <= 0 {
		c.AccessProbeInterval = DefaultPollInterval
	}
	if c.CreateGuardDelay <= 0 {
		c.CreateGuardDelay = DefaultCreateGuardDelay
	}
	if c.EnvironmentDefault.ContainerPrefix == "" {
		c.EnvironmentDefault.ContainerPrefix = DefaultContainerPrefix
	}
}

// FederatedCredentialIssuer is the home tenant's v2.0 issuer, which signs the managed
// identity tokens that the app registrations trust.
func (c Config) FederatedCredentialIssuer() string {
	return "https://login.microsoftonline.com/" + c.HomeTenantID + "/v2.0"
}

// Deps are the adapters the service works through. Finder and Prober are needed only by
// the background jobs.
type Deps struct {
	Store     Store
	Directory Directory
	Scheduler Scheduler
	Finder    Finder
	Prober    Prober
	// Workspaces serves workspace links and SAS issuance, and a delete's clean-up clears
	// the links of its credential's unlocked workspaces through it.
	Workspaces WorkspaceStore
	// Signer signs SAS tokens; needed only by SAS issuance.
	Signer Signer
	// Containers creates the environment default's containers; needed when one is
	// configured.
	Containers ContainerCreator
	// Health keeps the health re-probe's results; needed only by the health sweep and probe.
	Health HealthStore
}

// Service is the credential API's domain logic.
type Service struct {
	cfg         Config
	store       Store
	directory   Directory
	scheduler   Scheduler
	finder      Finder
	prober      Prober
	workspaces  WorkspaceStore
	signer      Signer
	containers  ContainerCreator
	health      HealthStore
	resolutions *resolutionCache
	creates     *limiter
	log         *slog.Logger
	now         func() time.Time
	newID       func() string
}

// Option adjusts a Service; tests use it to inject a clock.
type Option func(*Service)

// WithClock makes the service read time from now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService wires the domain to its adapters.
func NewService(cfg Config, deps Deps, log *slog.Logger, opts ...Option) (*Service, error) {
	if cfg.HomeTenantID == "" || cfg.ManagedIdentityObjectID == "" {
		return nil, errors.New("credential service: home tenant id and managed identity object id are required")
	}
	if deps.Store == nil || deps.Directory == nil || deps.Scheduler == nil || deps.Workspaces == nil {
		return nil, errors.New("credential service: store, directory, scheduler and workspaces are required")
	}
	cfg.withDefaults()
	if err := cfg.EnvironmentDefault.validate(deps.Containers); err != nil {
		return nil, fmt.Errorf("credential service: environment default: %w", err)
	}
	s := &Service{cfg: cfg, store: deps.Store, directory: deps.Directory, scheduler: deps.Scheduler,
		finder: deps.Finder, prober: deps.Prober, workspaces: deps.Workspaces, signer: deps.Signer,
		containers: deps.Containers, health: deps.Health, log: log,
		resolutions: newResolutionCache(cfg.ResolutionCacheTTL), creates: newLimiter(cfg.CreateRate),
		now: time.Now, newID: func() string { return uuid.NewString() }}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// CreateInput is the body of a create request.
type CreateInput struct {
	Name        string
	StorageType string
	BasePath    string
}

// TenantInput is the body of a tenant submit.
type TenantInput struct {
	TenantID string
}

// StorageInput is the body of a storage submit.
type StorageInput struct {
	SubscriptionID string
	ResourceGroup  string
	StorageAccount string
	ContainerName  string
}

// Create validates the input, reserves the name, provisions the app registration and its
// federated identity credential, and stores the credential in draft. A failure after the
// app exists removes the app again (or schedules its removal): no orphan is left behind.
// An organization over its create rate gets a *RateLimitError; one at its credential limit
// the store's *QuotaError.
func (s *Service) Create(ctx context.Context, orgID string, in CreateInput, requestID string) (*Credential, error) {
	if err := ValidateName(in.Name); err != nil {
		return nil, err
	}
	if in.StorageType != StorageTypeAzureFederated {
		return nil, invalid("storage_type", "storage_type must be %q", StorageTypeAzureFederated)
	}
	bp, err := ParseBasePath(in.BasePath)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if wait, ok := s.creates.take(orgID, now); !ok {
		return nil, &RateLimitError{Rate: s.cfg.CreateRate, RetryAfter: wait}
	}
	c := &Credential{
		OrgID: orgID, ID: s.newID(), Name: in.Name, StorageType: in.StorageType, BasePath: bp,
		State: StateDraft, CreatedAt: now, UpdatedAt: now,
	}
	// The row goes first: it reserves the name, so a duplicate never creates an app.
	if err := s.store.Insert(ctx, c, EventRecord{Time: now, To: StateDraft, Cause: EventCreated, RequestID: requestID}); err != nil {
		return nil, fmt.Errorf("store credential %s: %w", c.ID, err)
	}
	// The guard goes before the app: whatever becomes of this request from here on (a
	// crash, a lost answer, a failed clean-up), a queued job finds the app by its unique
	// name later and deletes it unless the row records it.
	guard := Job{Kind: JobAppCleanup, OrgID: orgID, CredentialID: c.ID}
	if err := s.scheduler.Schedule(ctx, guard, s.cfg.CreateGuardDelay); err != nil {
		s.discard(ctx, c, App{})
		return nil, fmt.Errorf("schedule the guard of credential %s: %w", c.ID, err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.CreateGuardDelay/2)
	defer cancel()
	app, err := s.provision(pctx, c)
	if err != nil {
		s.discard(ctx, c, App{})
		return nil, err
	}
	c.App = app
	c.UpdatedAt = s.now().UTC()
	if err := s.store.Update(ctx, c, nil); err != nil {
		s.discard(ctx, c, app)
		return nil, fmt.Errorf("record app of credential %s: %w", c.ID, err)
	}
	return c, nil
}

func (s *Service) provision(ctx context.Context, c *Credential) (App, error) {
	app, err := s.directory.CreateApp(ctx, AppNamePrefix+c.Name, UniqueAppName(c.ID))
	if err != nil {
		return App{}, fmt.Errorf("create app registration: %w", err)
	}
	fc := FederatedCredential{
		Name:        "azcreds-backend",
		Issuer:      s.cfg.FederatedCredentialIssuer(),
		Subject:     s.cfg.ManagedIdentityObjectID,
		Audiences:   []string{TokenExchangeAudience},
		Description: fmt.Sprintf("Trusts the platform backend for credential %s of organization %s", c.ID, c.OrgID),
	}
	if err := s.directory.AddFederatedCredential(ctx, app.ObjectID, fc); err != nil {
		s.removeApp(ctx, c, app)
		return App{}, fmt.Errorf("add federated credential to app %s: %w", app.AppID, err)
	}
	return app, nil
}

// discard undoes a half-done create: the app (when there is one) and the row.
func (s *Service) discard(ctx context.Context, c *Credential, app App) {
	ctx = context.WithoutCancel(ctx)
	if app.ObjectID != "" {
		s.removeApp(ctx, c, app)
	}
	for attempt := 1; ; attempt++ {
		err := s.store.Delete(ctx, c)
		if err == nil || errors.Is(err, ErrNotFound) {
			return
		}
		// A conflict is the row, or the organization's credential count (another create),
		// moved since it was read: delete the row as it is now. The create's guard removes
		// a row left behind, but it would hold its name and its place until then.
		if errors.Is(err, ErrConflict) && attempt < maxDeleteAttempts {
			fresh, gerr := s.store.Get(ctx, c.OrgID, c.ID)
			if errors.Is(gerr, ErrNotFound) {
				return
			}
			if gerr == nil {
				c = fresh
				continue
			}
		}
		s.log.ErrorContext(ctx, "could not remove the row of a failed create", "org", c.OrgID, "credential", c.ID, "err", err)
		return
	}
}

// removeApp deletes an app registration now, or schedules its deletion when Graph fails.
func (s *Service) removeApp(ctx context.Context, c *Credential, app App) {
	ctx = context.WithoutCancel(ctx)
	err := s.directory.DeleteApp(ctx, app.ObjectID)
	if err == nil {
		return
	}
	s.log.WarnContext(ctx, "app registration not deleted; scheduling its clean-up", "org", c.OrgID, "credential", c.ID, "app_id", app.AppID, "err", err)
	job := Job{Kind: JobAppCleanup, OrgID: c.OrgID, CredentialID: c.ID, AppObjectID: app.ObjectID}
	if err := s.scheduler.Schedule(ctx, job, 0); err != nil {
		s.log.ErrorContext(ctx, "orphaned app registration: clean-up could not be scheduled", "org", c.OrgID, "credential", c.ID, "app_id", app.AppID, "app_object_id", app.ObjectID, "err", err)
	}
}

// Get reads one credential with its org-default flag.
func (s *Service) Get(ctx context.Context, orgID, id string) (*Credential, error) {
	c, err := s.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	def, err := s.store.OrgDefault(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("read org default: %w", err)
	}
	c.IsOrgDefault = def == c.ID
	return c, nil
}

// List reads the organization's credentials with their org-default flags.
func (s *Service) List(ctx context.Context, orgID string) ([]*Credential, error) {
	cs, err := s.store.List(ctx, orgID)
	if err != nil {
		return nil, err
	}
	def, err := s.store.OrgDefault(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("read org default: %w", err)
	}
	for _, c := range cs {
		c.IsOrgDefault = def == c.ID
	}
	return cs, nil
}

// Events reads a credential's transition log.
func (s *Service) Events(ctx context.Context, orgID, id string) ([]EventRecord, error) {
	if _, err := s.store.Get(ctx, orgID, id); err != nil {
		return nil, err
	}
	return s.store.Events(ctx, orgID, id)
}

// SubmitTenant records the customer's tenant and starts (or restarts) the service
// principal poll window.
func (s *Service) SubmitTenant(ctx context.Context, orgID, id string, in TenantInput, requestID string) (*Credential, error) {
	if err := ValidateUUID("tenant_id", in.TenantID); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if c.App.AppID == "" {
		return nil, &ConflictError{Message: "the credential's app registration is still being created; try again in a moment"}
	}
	now := s.now().UTC()
	if err := s.backstop(ctx, c, JobSPPoll, now.Add(s.cfg.SPPollWindow)); err != nil {
		return nil, err
	}
	err = s.transition(ctx, c, EventSubmitTenant, requestID, func(c *Credential) {
		c.TenantID = in.TenantID
		c.SPObjectID = ""
		c.Storage = StorageTarget{}
		c.Progress = Progress{Kind: WindowSPPoll, StartedAt: now, Deadline: now.Add(s.cfg.SPPollWindow), Status: StatusPolling}
	})
	if err != nil {
		return nil, err
	}
	s.startWindow(ctx, c, JobSPPoll)
	return c, nil
}

// SubmitStorage records the customer's storage details and starts (or restarts) the
// access probe window.
func (s *Service) SubmitStorage(ctx context.Context, orgID, id string, in StorageInput, requestID string) (*Credential, error) {
	if err := ValidateUUID("subscription_id", in.SubscriptionID); err != nil {
		return nil, err
	}
	if err := ValidateResourceGroup("resource_group", in.ResourceGroup); err != nil {
		return nil, err
	}
	if err := ValidateStorageAccount("storage_account", in.StorageAccount); err != nil {
		return nil, err
	}
	if err := ValidateContainer("container_name", in.ContainerName); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if in.StorageAccount != c.BasePath.Account {
		return nil, invalid("storage_account", "storage account %q does not match the account %q of the credential's base path %s",
			in.StorageAccount, c.BasePath.Account, c.BasePath)
	}
	if in.ContainerName != c.BasePath.Container {
		return nil, invalid("container_name", "container %q does not match the container %q of the credential's base path %s",
			in.ContainerName, c.BasePath.Container, c.BasePath)
	}
	now := s.now().UTC()
	if err := s.backstop(ctx, c, JobAccessProbe, now.Add(s.cfg.AccessProbeWindow)); err != nil {
		return nil, err
	}
	err = s.transition(ctx, c, EventSubmitStorage, requestID, func(c *Credential) {
		c.Storage = StorageTarget{SubscriptionID: in.SubscriptionID, ResourceGroup: in.ResourceGroup,
			Account: in.StorageAccount, Container: in.ContainerName}
		c.Progress = Progress{Kind: WindowAccessProbe, StartedAt: now, Deadline: now.Add(s.cfg.AccessProbeWindow),
			GraceUntil: now.Add(s.cfg.PropagationGrace), Status: StatusProbing}
	})
	if err != nil {
		return nil, err
	}
	s.startWindow(ctx, c, JobAccessProbe)
	return c, nil
}

// SaveUnverified keeps a credential whose access probe ran out of time ("Save anyway").
func (s *Service) SaveUnverified(ctx context.Context, orgID, id, requestID string) (*Credential, error) {
	c, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if c.State == StateAccessPending && !s.now().After(c.Progress.Deadline) {
		return nil, &ConflictError{Message: fmt.Sprintf(
			"cannot save unverified: the access probe is still running until %s; save-unverified is allowed only after its deadline",
			c.Progress.Deadline.UTC().Format(time.RFC3339))}
	}
	if err := s.transition(ctx, c, EventSaveUnverified, requestID, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// SetOrgDefault makes a verified or unverified_saved credential the organization's default.
func (s *Service) SetOrgDefault(ctx context.Context, orgID, id string) (*Credential, error) {
	if id == "" {
		return nil, invalid("credential_id", "credential_id is required")
	}
	c, err := s.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if !c.State.Usable() {
		return nil, &TransitionError{Action: "set the org default", State: c.State, Allowed: []State{StateVerified, StateUnverifiedSaved}}
	}
	s.resolutions.forget(orgID)
	if err := s.store.SetOrgDefault(ctx, c); err != nil {
		return nil, fmt.Errorf("set org default %s: %w", id, err)
	}
	c.IsOrgDefault = true
	return c, nil
}

// AppCleanupSettle is how long a delete's clean-up job keeps looking while the row still
// holds the app: the job is queued before the row goes and may run first, so it looks
// again every AppCleanupRecheck until the delete has surely ended (deleted the row, or
// failed and left it, when the app must stay).
const (
	AppCleanupSettle  = 2 * time.Minute
	AppCleanupRecheck = 5 * time.Second
)

// Delete replaces a credential by its tombstone and removes its name and the org default
// pointing at it, in one transaction: from then on the credential is not found, unlocked
// workspaces linked to it fall back, and locked ones answer CredentialDeletedError. The
// clean-up job (CleanUpApp) clears the unlocked workspaces' links and then deletes the
// app registration in the background. A poller writing the row meanwhile does not fail
// the delete: it reads the row again and deletes that. The job is scheduled before the
// row changes, so a crash in between leaves the job, never an orphaned app; the job
// deletes nothing while the row still holds the app, and looks again for
// AppCleanupSettle. A credential already deleted is not found: a second delete answers
// ErrNotFound while the first one's job finishes by its own retries.
func (s *Service) Delete(ctx context.Context, orgID, id string) error {
	scheduled := ""
	for attempt := 1; ; attempt++ {
		c, err := s.store.Get(ctx, orgID, id)
		if err != nil {
			if attempt > 1 && errors.Is(err, ErrNotFound) {
				break // deleted meanwhile by another request
			}
			return err
		}
		if c.App.ObjectID != "" && c.App.ObjectID != scheduled {
			job := Job{Kind: JobAppCleanup, OrgID: orgID, CredentialID: id, AppObjectID: c.App.ObjectID,
				Deadline: s.now().Add(AppCleanupSettle)}
			if err := s.scheduler.Schedule(ctx, job, 0); err != nil {
				return fmt.Errorf("schedule app clean-up for credential %s: %w", id, err)
			}
			scheduled = c.App.ObjectID
		}
		err = s.store.Delete(ctx, c)
		if err == nil || errors.Is(err, ErrNotFound) {
			// Not found: the storage SDK retried a delete whose answer was lost, and the
			// retry found the row already gone.
			break
		}
		// A conflict is a poller (or a link) that moved the row on since it was read: the
		// delete still stands, on the row as it is now.
		if !errors.Is(err, ErrConflict) || attempt == maxDeleteAttempts {
			return fmt.Errorf("delete credential %s: %w", id, err)
		}
	}
	s.resolutions.forget(orgID)
	return nil
}

// maxDeleteAttempts bounds how often a delete reads the row again after it changed.
const maxDeleteAttempts = 5

// transition moves c by ev, applies change, and writes it with its event, conditional on
// the ETag c was read with. A window-starting event bumps the generation.
func (s *Service) transition(ctx context.Context, c *Credential, ev Event, requestID string, change func(*Credential)) error {
	to, err := Next(c.State, ev)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	rec := EventRecord{Time: now, From: c.State, To: to, Cause: ev, RequestID: requestID}
	c.State = to
	c.UpdatedAt = now
	if ev == EventSubmitTenant || ev == EventSubmitStorage {
		c.Generation++
		c.LastError = Problem{}
	}
	if to == StateVerified && c.VerifiedAt.IsZero() {
		c.VerifiedAt = now
	}
	if change != nil {
		change(c)
	}
	rec.Generation = c.Generation
	if err := s.store.Update(ctx, c, &rec); err != nil {
		return fmt.Errorf("%s for credential %s: %w", ev, c.ID, err)
	}
	return nil
}

// startWindow hands the first job of a new window to the workers. It runs after the row
// is written, so the job finds its generation. When it fails, the backstop queued before
// the write starts the window a little later.
func (s *Service) startWindow(ctx context.Context, c *Credential, kind JobKind) {
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation, Deadline: c.Progress.Deadline}
	if err := s.scheduler.Schedule(ctx, job, 0); err != nil {
		s.log.WarnContext(ctx, "first job of a window not queued; its backstop starts the window", "kind", kind,
			"org", c.OrgID, "credential", c.ID, "generation", c.Generation, "backstop", s.backstopDelay(kind).String(), "err", err)
	}
}

// backstop queues, before a submit writes its new window, a delayed copy of the window's
// first job (the generation the write will give it, attempt 0). Should the process die
// between the write and startWindow, or startWindow's job fail to queue, the copy starts
// the window late instead of never. When the first job did run, the copy finds the attempt
// counted and is dropped as a replay; when the write fails, the copy's generation never
// comes, or is another submit's whose own first job counts the attempt first. Failing
// here fails the submit before anything changed.
func (s *Service) backstop(ctx context.Context, c *Credential, kind JobKind, deadline time.Time) error {
	job := Job{Kind: kind, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation + 1, Deadline: deadline}
	if err := s.scheduler.Schedule(ctx, job, s.backstopDelay(kind)); err != nil {
		return fmt.Errorf("start %s for credential %s: %w", kind, c.ID, errors.Join(ErrUnavailable, err))
	}
	return nil
}

// backstopDelay leaves the window's first job, queued right after the write, time to run,
// and the write itself time to finish: a write whose answer was lost is retried by the
// storage SDK for several seconds, and a backstop that moved the row meanwhile would make
// the retry's check find someone else's write and report a conflict for a submit that
// landed.
func (s *Service) backstopDelay(kind JobKind) time.Duration {
	if s.cfg.WindowBackstop > 0 {
		return s.cfg.WindowBackstop
	}
	return max(time.Minute, 3*s.interval(kind))
}
