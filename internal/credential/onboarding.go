package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Onboarding runs the wizard's commands on credentials: create (with its app
// registration), the tenant and storage submits that start the waiting windows, save
// unverified, the org default, and delete; and the reads of credentials and their
// transition logs, which those commands answer with too. The background jobs that the
// windows and the delete queue are Jobs'.
type Onboarding struct {
	cfg         Config
	store       Store
	index       WindowIndex
	directory   Directory
	scheduler   Scheduler
	windows     windows
	transitions transitioner
	resolutions *ResolutionCache
	creates     *limiter
	rows        *RecentRows // nil: every command reads its row
	log         *slog.Logger
	now         func() time.Time
	newID       func() string
}

// NewOnboarding returns the onboarding commands on their ports. resolutions is the
// instance's cache of workspace resolutions, shared with Issuance: a delete or a new org
// default drops the organization's entries. index is the open-window index, which every
// create and submit writes to before it begins (Reconciler).
func NewOnboarding(cfg Config, store Store, index WindowIndex, directory Directory, scheduler Scheduler, resolutions *ResolutionCache,
	log *slog.Logger, opts ...Option) (*Onboarding, error) {
	if err := required("credential onboarding", map[string]any{"store": store, "window index": index, "directory": directory,
		"scheduler": scheduler, "resolution cache": resolutions, "log": log}); err != nil {
		return nil, err
	}
	if cfg.HomeTenantID == "" || cfg.ManagedIdentityObjectID == "" {
		return nil, fmt.Errorf("credential onboarding: %w", errNoIdentity)
	}
	cfg.withDefaults()
	o := newOptions(opts)
	store = remembering(store, o.rows)
	return &Onboarding{cfg: cfg, store: store, index: index, directory: directory, scheduler: scheduler,
		windows:     windows{scheduler: scheduler, index: index, cfg: cfg, now: o.now, log: log},
		transitions: transitioner{store: store, now: o.now},
		resolutions: resolutions, creates: newLimiter(cfg.CreateRate), rows: o.rows, log: log, now: o.now, newID: o.newID}, nil
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
func (o *Onboarding) Create(ctx context.Context, orgID string, in CreateInput, requestID string) (*Credential, error) {
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
	now := o.now().UTC()
	if wait, ok := o.creates.take(orgID, now); !ok {
		return nil, &RateLimitError{Rate: o.cfg.CreateRate, RetryAfter: wait}
	}
	c := &Credential{
		OrgID: orgID, ID: o.newID(), Name: in.Name, StorageType: in.StorageType, BasePath: bp,
		State: StateDraft, CreatedAt: now, UpdatedAt: now,
	}
	// The index first: the reconciler watches the create from before it begins, so a
	// guard whose message is lost is scheduled again.
	if err := o.windows.open(ctx, c, 0); err != nil {
		return nil, err
	}
	// The row goes first: it reserves the name, so a duplicate never creates an app.
	if err := o.store.Insert(ctx, c, EventRecord{Time: now, To: StateDraft, Cause: EventCreated, RequestID: requestID,
		Actor: ActorOf(ctx)}); err != nil {
		return nil, fmt.Errorf("store credential %s: %w", c.ID, err)
	}
	// The guard goes before the app: whatever becomes of this request from here on (a
	// crash, a lost answer, a failed clean-up), a queued job finds the app by its unique
	// name later and deletes it unless the row records it.
	guard := Job{Kind: JobAppCleanup, OrgID: orgID, CredentialID: c.ID}
	if err := o.scheduler.Schedule(ctx, guard, o.cfg.CreateGuardDelay); err != nil {
		o.discard(ctx, c, App{})
		return nil, fmt.Errorf("schedule the guard of credential %s: %w", c.ID, err)
	}
	pctx, cancel := context.WithTimeout(ctx, o.cfg.CreateGuardDelay/2)
	defer cancel()
	app, err := o.provision(pctx, c)
	if err != nil {
		o.discard(ctx, c, App{})
		return nil, err
	}
	c.App = app
	c.UpdatedAt = o.now().UTC()
	if err := o.store.Update(ctx, c, nil); err != nil {
		o.discard(ctx, c, app)
		return nil, fmt.Errorf("record app of credential %s: %w", c.ID, err)
	}
	return o.shown(c), nil
}

// shown fills in what an answer shows of c beside its row: its links (Links).
func (o *Onboarding) shown(c *Credential) *Credential {
	c.Links = o.cfg.links(c)
	return c
}

func (o *Onboarding) provision(ctx context.Context, c *Credential) (App, error) {
	spec := AppSpec{DisplayName: AppNamePrefix + c.Name, UniqueName: UniqueAppName(c.ID)}
	if o.cfg.AdminConsentRedirectURI != "" {
		spec.RedirectURIs = []string{o.cfg.AdminConsentRedirectURI}
	}
	app, err := o.directory.CreateApp(ctx, spec)
	if err != nil {
		return App{}, fmt.Errorf("create app registration: %w", err)
	}
	if err := o.directory.AddFederatedCredential(ctx, app.ObjectID, o.cfg.federatedCredential(c.ID, c.OrgID)); err != nil {
		o.removeApp(ctx, c, app)
		return App{}, fmt.Errorf("add federated credential to app %s: %w", app.AppID, err)
	}
	return app, nil
}

// discard undoes a half-done create: the app (when there is one) and the row.
func (o *Onboarding) discard(ctx context.Context, c *Credential, app App) {
	ctx = context.WithoutCancel(ctx)
	if app.ObjectID != "" {
		o.removeApp(ctx, c, app)
	}
	for attempt := 1; ; attempt++ {
		err := o.store.Delete(ctx, c)
		if err == nil || errors.Is(err, ErrNotFound) {
			return
		}
		// A conflict is the row, or the organization's credential count (another create),
		// moved since it was read: delete the row as it is now. The create's guard removes
		// a row left behind, but it would hold its name and its place until then.
		if errors.Is(err, ErrConflict) && attempt < maxDeleteAttempts {
			fresh, gerr := o.store.Get(ctx, c.OrgID, c.ID)
			if errors.Is(gerr, ErrNotFound) {
				return
			}
			if gerr == nil {
				c = fresh
				continue
			}
		}
		o.log.ErrorContext(ctx, "could not remove the row of a failed create", "org", c.OrgID, "credential", c.ID, "err", err)
		return
	}
}

// removeApp deletes an app registration now, or schedules its deletion when Graph fails.
func (o *Onboarding) removeApp(ctx context.Context, c *Credential, app App) {
	ctx = context.WithoutCancel(ctx)
	err := o.directory.DeleteApp(ctx, app.ObjectID)
	if err == nil {
		return
	}
	o.log.WarnContext(ctx, "app registration not deleted; scheduling its clean-up", "org", c.OrgID, "credential", c.ID, "app_id", app.AppID, "err", err)
	job := Job{Kind: JobAppCleanup, OrgID: c.OrgID, CredentialID: c.ID, AppObjectID: app.ObjectID}
	if err := o.scheduler.Schedule(ctx, job, 0); err != nil {
		o.log.ErrorContext(ctx, "orphaned app registration: clean-up could not be scheduled", "org", c.OrgID, "credential", c.ID, "app_id", app.AppID, "app_object_id", app.ObjectID, "err", err)
	}
}

// Get reads one credential with its org-default flag (the store's reads carry it).
func (o *Onboarding) Get(ctx context.Context, orgID, id string) (*Credential, error) {
	c, err := o.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return o.shown(c), nil
}

// List reads the organization's credentials with their org-default flags.
func (o *Onboarding) List(ctx context.Context, orgID string) ([]*Credential, error) {
	cs, err := o.store.List(ctx, orgID)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		o.shown(c)
	}
	return cs, nil
}

// Events reads a credential's transition log.
func (o *Onboarding) Events(ctx context.Context, orgID, id string) ([]EventRecord, error) {
	if _, err := o.store.Get(ctx, orgID, id); err != nil {
		return nil, err
	}
	return o.store.Events(ctx, orgID, id)
}

// SubmitTenant records the customer's tenant and starts (or restarts) the service
// principal poll window.
func (o *Onboarding) SubmitTenant(ctx context.Context, orgID, id string, in TenantInput, requestID string) (*Credential, error) {
	if err := ValidateUUID("tenant_id", in.TenantID); err != nil {
		return nil, err
	}
	return o.onRecentRow(ctx, orgID, id, func(c *Credential) (*Credential, error) {
		if c.App.AppID == "" {
			return nil, &ConflictError{Message: "the credential's app registration is still being created; try again in a moment"}
		}
		return o.submit(ctx, c, EventSubmitTenant, JobSPPoll, o.cfg.SPPollWindow, requestID, func(c *Credential, now time.Time) {
			c.TenantID = in.TenantID
			c.SPObjectID = ""
			c.Storage = StorageTarget{}
			c.Progress = Progress{Kind: WindowSPPoll, StartedAt: now, Deadline: now.Add(o.cfg.SPPollWindow), Status: StatusPolling}
		})
	})
}

// SubmitStorage records the customer's storage details and starts (or restarts) the
// access probe window.
func (o *Onboarding) SubmitStorage(ctx context.Context, orgID, id string, in StorageInput, requestID string) (*Credential, error) {
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
	return o.onRecentRow(ctx, orgID, id, func(c *Credential) (*Credential, error) {
		if in.StorageAccount != c.BasePath.Account {
			return nil, invalid("storage_account", "storage account %q does not match the account %q of the credential's base path %s",
				in.StorageAccount, c.BasePath.Account, c.BasePath)
		}
		if in.ContainerName != c.BasePath.Container {
			return nil, invalid("container_name", "container %q does not match the container %q of the credential's base path %s",
				in.ContainerName, c.BasePath.Container, c.BasePath)
		}
		return o.submit(ctx, c, EventSubmitStorage, JobAccessProbe, o.cfg.AccessProbeWindow, requestID, func(c *Credential, now time.Time) {
			c.Storage = StorageTarget{SubscriptionID: in.SubscriptionID, ResourceGroup: in.ResourceGroup,
				Account: in.StorageAccount, Container: in.ContainerName}
			c.Progress = Progress{Kind: WindowAccessProbe, StartedAt: now, Deadline: now.Add(o.cfg.AccessProbeWindow),
				GraceUntil: now.Add(o.cfg.PropagationGrace), Status: StatusProbing}
		})
	})
}

// submit moves c by ev into a new window of kind, lasting window, with change (given the
// window's start): refused before anything is written when c's state does not allow ev;
// else the window's index row and backstop first, then the transition, then the window's
// first job.
func (o *Onboarding) submit(ctx context.Context, c *Credential, ev Event, kind JobKind, window time.Duration, requestID string,
	change func(c *Credential, now time.Time)) (*Credential, error) {
	if _, err := Next(c.State, ev); err != nil {
		return nil, err
	}
	now := o.now().UTC()
	if err := o.windows.open(ctx, c, c.Generation+1); err != nil {
		return nil, err
	}
	if err := o.windows.backstop(ctx, c, kind, now.Add(window)); err != nil {
		return nil, err
	}
	if err := o.transitions.apply(ctx, c, ev, requestID, func(c *Credential) { change(c, now) }); err != nil {
		return nil, err
	}
	o.windows.start(ctx, c, kind)
	return o.shown(c), nil
}

// onRecentRow runs step on the credential's row as RecentRows remembers it, and again on a
// fresh read when it fails the way a stale row makes it fail (its conditional write meets
// a conflict or no row, or the row's state refuses it): the answer is then the one the row
// as it is gives. Without a remembered row step runs once, on a fresh read. step may run
// twice, so what it does before its write must bear repeating (the index row is
// rewritten, a second backstop is dropped as a replay).
func (o *Onboarding) onRecentRow(ctx context.Context, orgID, id string, step func(*Credential) (*Credential, error)) (*Credential, error) {
	c, cached, err := recent(ctx, o.store, o.rows, orgID, id)
	if err != nil {
		return nil, err
	}
	out, err := step(c)
	if !cached || !(errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)) {
		return out, err
	}
	o.log.DebugContext(ctx, "a remembered row did not hold; reading it again", "org", orgID, "credential", id, "err", err)
	if c, err = o.store.Get(ctx, orgID, id); err != nil {
		return nil, err
	}
	return step(c)
}

// SaveUnverified keeps a credential whose access probe ran out of time ("Save anyway").
func (o *Onboarding) SaveUnverified(ctx context.Context, orgID, id, requestID string) (*Credential, error) {
	c, err := o.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	// From the deadline on, as the probe's time-out counts it (a probe that timed out has
	// reached it).
	if c.State == StateAccessPending && o.now().Before(c.Progress.Deadline) && c.Progress.Status != StatusTimedOut {
		deadline := c.Progress.Deadline.UTC().Format(time.RFC3339)
		return nil, &TransitionError{Action: "save unverified", State: c.State, Allowed: []State{StateAccessPending},
			Now: "with the access probe running until " + deadline, Condition: "after the access probe's deadline (" + deadline + ")"}
	}
	if err := o.transitions.apply(ctx, c, EventSaveUnverified, requestID, nil); err != nil {
		return nil, err
	}
	return o.shown(c), nil
}

// SetOrgDefault makes a verified or unverified_saved credential the organization's default.
func (o *Onboarding) SetOrgDefault(ctx context.Context, orgID, id string) (*Credential, error) {
	if id == "" {
		return nil, invalid("credential_id", "credential_id is required")
	}
	// A default changed by another request meanwhile (or a write of the credential) makes
	// the store's write conflict: read again and set it, the request's word is the last.
	for attempt := 1; ; attempt++ {
		c, err := o.Get(ctx, orgID, id)
		if err != nil {
			return nil, err
		}
		if !c.State.Usable() {
			return nil, &TransitionError{Action: "set the org default", State: c.State, Allowed: []State{StateVerified, StateUnverifiedSaved}}
		}
		o.resolutions.forget(orgID)
		err = o.store.SetOrgDefault(ctx, c)
		if err == nil {
			c.IsOrgDefault = true
			return o.shown(c), nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxDeleteAttempts {
			return nil, fmt.Errorf("set org default %s: %w", id, err)
		}
	}
}

// ClearOrgDefault leaves the organization without a default credential (the wizard's
// toggle switched off): workspaces without a link of their own fall back to the
// environment default, while locked ones stay where their tables are. None at all is
// success, so a repeated request changes nothing. A default set again meanwhile is read
// and cleared too: the request's word is the last.
func (o *Onboarding) ClearOrgDefault(ctx context.Context, orgID string) error {
	for attempt := 1; ; attempt++ {
		def, err := o.store.OrgDefault(ctx, orgID)
		if err != nil {
			return fmt.Errorf("read org default: %w", err)
		}
		if def == "" {
			return nil
		}
		o.resolutions.forget(orgID)
		err = o.store.ClearOrgDefault(ctx, orgID, def)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxDeleteAttempts {
			return fmt.Errorf("clear org default %s: %w", def, err)
		}
	}
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
// clean-up job (Jobs.CleanUpApp) clears the unlocked workspaces' links and then deletes the
// app registration in the background. A poller writing the row meanwhile does not fail
// the delete: it reads the row again and deletes that. The job is scheduled before the
// row changes, so a crash in between leaves the job, never an orphaned app; the job
// deletes nothing while the row still holds the app, and looks again for
// AppCleanupSettle. A credential already deleted is not found: a second delete answers
// ErrNotFound while the first one's job finishes by its own retries.
func (o *Onboarding) Delete(ctx context.Context, orgID, id string) error {
	scheduled := ""
	for attempt := 1; ; attempt++ {
		c, err := o.store.Get(ctx, orgID, id)
		if err != nil {
			if attempt > 1 && errors.Is(err, ErrNotFound) {
				break // deleted meanwhile by another request
			}
			return err
		}
		if c.App.ObjectID != "" && c.App.ObjectID != scheduled {
			// The index first: should the clean-up's message be lost, the reconciler queues
			// another until one has deleted the app (and removed the row).
			if err := o.windows.open(ctx, c, c.Generation); err != nil {
				return err
			}
			job := Job{Kind: JobAppCleanup, OrgID: orgID, CredentialID: id, AppObjectID: c.App.ObjectID,
				Deadline: o.now().Add(AppCleanupSettle)}
			if err := o.scheduler.Schedule(ctx, job, 0); err != nil {
				return fmt.Errorf("schedule app clean-up for credential %s: %w", id, err)
			}
			scheduled = c.App.ObjectID
		}
		err = o.store.Delete(ctx, c)
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
	o.resolutions.forget(orgID)
	return nil
}

// maxDeleteAttempts bounds how often a delete reads the row again after it changed.
const maxDeleteAttempts = 5
