package credential

import (
	"context"
	"time"
)

// The ports: every interface the domain consumes, with the values that cross them.
// Adapters in other packages implement them (internal/store, internal/queue,
// internal/azure/...); internal/credential/credentialtest has in-memory ones for tests.

// App is an app registration in the platform's home tenant, as the domain needs it.
type App struct {
	// ObjectID is the application object's id (used to manage it through Graph).
	ObjectID string
	// AppID is the application (client) id the customer installs as a service principal.
	AppID string
}

// AppSpec is the app registration a credential gets.
type AppSpec struct {
	DisplayName string
	// UniqueName is the app's unique key (Graph's uniqueName alternate key): UniqueAppName.
	UniqueName string
	// RedirectURIs are the app's web redirect URIs: where Entra ID may send an administrator
	// back after the admin consent (Config.AdminConsentRedirectURI); none when empty.
	RedirectURIs []string
}

// FederatedCredential is the trust an app registration places in the backend's managed
// identity: tokens from Issuer for Subject with one of Audiences may be exchanged for the
// app's tokens, so no client secret ever exists.
type FederatedCredential struct {
	Name        string
	Issuer      string
	Subject     string
	Audiences   []string
	Description string
}

// Directory manages app registrations in the home tenant (Microsoft Graph).
//
// Implementations wrap ErrUnavailable for throttling and server errors, and treat a
// missing application on delete as success.
type Directory interface {
	// CreateApp registers a multi-tenant app as spec says, or returns the app that already
	// has spec's unique name: repeating it never makes a second app.
	CreateApp(ctx context.Context, spec AppSpec) (App, error)
	// FindApp returns the app registered under uniqueName; ok is false when there is none.
	FindApp(ctx context.Context, uniqueName string) (app App, ok bool, err error)
	AddFederatedCredential(ctx context.Context, appObjectID string, fc FederatedCredential) error
	DeleteApp(ctx context.Context, appObjectID string) error
}

// ContainerCreator creates the environment default's containers in the platform's own
// storage account, as the backend's managed identity. It is asked before every
// environment-default SAS: implementations remember the containers that exist, so a warm
// call costs no round trip, and concurrent calls for one container make one request.
// A container that already exists is success. Failures wrap a *ProviderError with the
// storage code (Kind ErrUnavailable when asking again later may help).
type ContainerCreator interface {
	EnsureContainer(ctx context.Context, account, container string) error
}

// Store keeps credentials. Every write is conditional on the credential's ETag; a stale
// write fails with an error matching ErrConflict and changes nothing.
type Store interface {
	// Insert writes a new credential and its creation event; a name already used in the
	// organization fails with an error matching ErrConflict, an organization at its
	// credential limit with a *QuotaError. The limit holds against concurrent inserts.
	Insert(ctx context.Context, c *Credential, ev EventRecord) error
	// Get reads one credential; a missing one (or one of another org) is ErrNotFound.
	// Every read of credentials (Get, List, HealthStore.EachVerified) fills in
	// IsOrgDefault, and Update writes it back as read.
	Get(ctx context.Context, orgID, id string) (*Credential, error)
	// List reads every credential of an organization, oldest first.
	List(ctx context.Context, orgID string) ([]*Credential, error)
	// Update writes c if it is unchanged since it was read, appending ev to its event log in
	// the same transaction when ev is not nil. It refreshes c.ETag (or, should a
	// transaction's answer not name it, clears it: c is then read again before its next
	// write).
	Update(ctx context.Context, c *Credential, ev *EventRecord) error
	// Delete replaces c by its tombstone if c is unchanged since it was read, and removes
	// its name reservation and the org default when it points at c, in one transaction.
	// From then on Get, List and every other read of credentials treat c as missing;
	// workspace links to c stay until a clean-up clears them (Jobs.CleanUpApp). c no longer
	// counts toward the credential limit.
	Delete(ctx context.Context, c *Credential) error
	// Tombstone reads what remains of a deleted credential; ErrNotFound when the
	// credential exists or never did.
	Tombstone(ctx context.Context, orgID, id string) (*DeletedCredential, error)
	// Events reads a credential's event log, oldest first.
	Events(ctx context.Context, orgID, id string) ([]EventRecord, error)
	// OrgDefault returns the id of the organization's default credential, "" when none.
	OrgDefault(ctx context.Context, orgID string) (string, error)
	// SetOrgDefault makes c the organization's default if c is unchanged since it was read
	// (and may fail with ErrConflict when the default changes meanwhile). The credential
	// it points at before and c are both written (their ETags move on), so their
	// IsOrgDefault marks change with the default.
	SetOrgDefault(ctx context.Context, c *Credential) error
	// ClearOrgDefault removes the organization's default if it still points at id, as
	// read: one that points elsewhere meanwhile fails with an error matching ErrConflict
	// and stays; none at all is success. id's row is written too (its mark).
	ClearOrgDefault(ctx context.Context, orgID, id string) error
}

// DeletedCredential is the tombstone of a deleted credential: enough to name it, to say
// where the tables of the workspaces locked on it are, and to check which app
// registration its clean-up may delete.
type DeletedCredential struct {
	OrgID     string
	ID        string
	Name      string
	BasePath  BasePath
	App       App
	DeletedAt time.Time
}

// JobKind names a kind of background work.
type JobKind string

// The background jobs, one queue each: a kind is scheduled here and has one row in the job
// table (internal/queue), which names its queue and its Functions host function.
const (
	JobSPPoll      JobKind = "sp_poll"
	JobAccessProbe JobKind = "access_probe"
	JobAppCleanup  JobKind = "app_cleanup"
	// JobHealthProbe re-probes a verified credential's access (health.go).
	JobHealthProbe JobKind = "health_probe"
)

// Job is one message of background work. Jobs are idempotent: a job whose generation is no
// longer the credential's changes nothing.
type Job struct {
	Kind         JobKind
	OrgID        string
	CredentialID string
	Generation   int64
	Deadline     time.Time
	Attempt      int // the window's attempt this job makes; a replayed job is dropped
	// AppObjectID is the app an app_cleanup job deletes; empty, the job is a create's
	// guard, which finds the credential's app by its unique name (UniqueAppName).
	AppObjectID string
	// IssuedAt is when a health sweep scheduled the job (health_probe only): a credential
	// checked since then is not probed again, so a duplicate delivery changes nothing.
	IssuedAt time.Time
	// Delivery is how often the queue has delivered this message, counting this delivery
	// (its dequeue count; 0 when unknown). It is not part of the message: a delivery
	// after the first may follow one that died before it scheduled the window's next attempt.
	Delivery int
	// RequestID names this delivery in the logs (the invocation's request id); not part of
	// the message. A failure that has no request id of its own is traced by it.
	RequestID string
}

// Scheduler hands jobs to the background workers, visible after delay.
type Scheduler interface {
	Schedule(ctx context.Context, job Job, delay time.Duration) error
}

// Finder looks for a credential's service principal in the customer's tenant, signed in
// as the app itself (managed identity -> federated assertion -> customer tenant).
type Finder interface {
	FindServicePrincipal(ctx context.Context, tenantID, appID string) (objectID string, err error)
}

// ProbeTarget is what the access probe checks, as the credential's service principal.
type ProbeTarget struct {
	TenantID  string
	AppID     string
	Account   string
	Container string
	Prefix    string
	// FreshToken asks for a new storage token instead of a cached one: after a 403 a
	// cached token could hide a role that has arrived since.
	FreshToken bool
}

// The checks of the access probe, in the order they run.
const (
	CheckUserDelegationKey = "user_delegation_key"
	CheckWrite             = "write"
	CheckListRead          = "list_read"
	CheckDelete            = "delete"
)

// Results of one check.
const (
	ResultPass = "pass"
	ResultFail = "fail"
	ResultSkip = "skip"
)

// CheckResult is one check as the prober saw it.
type CheckResult struct {
	Name      string
	Result    string
	Status    int    // HTTP status of the failure
	Code      string // the storage error code, e.g. AuthorizationPermissionMismatch
	RequestID string
}

// ProbeReport is everything one probe attempt found.
type ProbeReport struct {
	Checks []CheckResult
	// AccountNotFound: the account's blob endpoint did not resolve.
	AccountNotFound bool
}

// Prober runs the access probe: user delegation key, write a probe blob under the prefix,
// list and read it back, delete it.
type Prober interface {
	Probe(ctx context.Context, t ProbeTarget) ProbeReport
}

// SignerIdentity is who signs a SAS: a credential's service principal in the customer's
// tenant, or the platform's own managed identity (the environment default).
type SignerIdentity struct {
	TenantID string
	AppID    string
	Platform bool // the backend's managed identity; TenantID and AppID are empty
}

// SASRequest asks for a user delegation SAS on one container.
type SASRequest struct {
	Identity  SignerIdentity
	Account   string
	Container string
	Start     time.Time
	Expiry    time.Time
}

// SAS is a signed container SAS.
type SAS struct {
	AccountURL string // e.g. https://bloblake.blob.core.windows.net
	Token      Secret // the query string, without '?'
}

// Signer issues user delegation SAS tokens: read, add, create, write, delete and list on
// one container, signed with a user delegation key of the identity. Failures wrap a
// *ProviderError with the storage code (or ErrUnavailable).
type Signer interface {
	ContainerSAS(ctx context.Context, r SASRequest) (SAS, error)
}

// WorkspaceStore keeps workspaces beside the credentials of their organization.
type WorkspaceStore interface {
	// InsertWorkspace writes a new workspace; an existing one fails matching ErrConflict
	// (also at the limit), a new one in an organization at its workspace limit with a
	// *QuotaError. When c is not nil, the write also checks that c is unchanged since it
	// was read.
	InsertWorkspace(ctx context.Context, w *Workspace, c *Credential) error
	// GetWorkspace reads one; a missing one is ErrNotFound.
	GetWorkspace(ctx context.Context, orgID, id string) (*Workspace, error)
	// UpdateWorkspace writes w if it is unchanged since it was read. When c is not nil,
	// the write also checks that c is unchanged since it was read (one transaction), so
	// a link never points at a credential deleted meanwhile.
	UpdateWorkspace(ctx context.Context, w *Workspace, c *Credential) error
	// UnlockedLinks reads up to max unlocked workspaces linked to credential id (a
	// deleted credential's clean-up clears their links a page at a time).
	UnlockedLinks(ctx context.Context, orgID, credentialID string, max int) ([]*Workspace, error)
}

// HealthStore keeps the health re-probe's results beside the credentials.
type HealthStore interface {
	// EachVerified calls fn with every verified credential of every organization, a page
	// at a time; an error from fn stops the walk and is returned.
	EachVerified(ctx context.Context, fn func(*Credential) error) error
	// UpdateHealth writes c if it is unchanged since it was read, appending ev to its
	// health log in the same transaction when ev is not nil. A stale write fails with an
	// error matching ErrConflict.
	UpdateHealth(ctx context.Context, c *Credential, ev *HealthEvent) error
	// HealthEvents reads a credential's health log, oldest first.
	HealthEvents(ctx context.Context, orgID, id string) ([]HealthEvent, error)
}

// OpenWindow is one row of the open-window index: a credential whose background work the
// reconciler watches, from a create until its guard has had its time, from a submit until
// its window closes, and from a delete until its clean-up deleted the app. The row is
// written before the work begins, so no work goes unwatched, and removed lazily after it ends; a row that outlives its work costs one read
// per reconciliation, since the reconciler reads the credential before it acts.
type OpenWindow struct {
	OrgID        string
	CredentialID string
	// Generation is the generation the submit gives the credential (0 for a create): a
	// credential still below it has a write under way, or one that failed.
	Generation int64
	OpenedAt   time.Time
	// Failure is what the last delivery of one of the window's jobs met (Runner), for the
	// reconciler to show when the job's message turns up in a poison queue.
	Failure JobFailure
	// ETag is the row as it was read: CloseWindow removes only a row unchanged since.
	ETag string
}

// JobFailure is a job that failed on its last delivery.
type JobFailure struct {
	Kind       JobKind
	Generation int64
	Attempt    int
	At         time.Time
	Problem    Problem
}

// WindowIndex keeps the open-window index in a partition of its own, so the reconciler
// reads the few open windows without scanning every credential.
type WindowIndex interface {
	// OpenWindow writes w's row, replacing the credential's row if it has one.
	OpenWindow(ctx context.Context, w OpenWindow) error
	// OpenWindows calls fn with every row, a page at a time; an error from fn stops the
	// walk and is returned.
	OpenWindows(ctx context.Context, fn func(OpenWindow) error) error
	// NoteFailure records f on the credential's row; without a row it records nothing.
	NoteFailure(ctx context.Context, orgID, id string, f JobFailure) error
	// CloseWindow removes w's row if it is unchanged since it was read (whatever it is
	// when w.ETag is empty); a changed or missing row is left as it is, and is no error.
	CloseWindow(ctx context.Context, w OpenWindow) error
}

// PoisonedJob is a job whose message the queue set aside after its last delivery failed
// (the Functions host's maxDequeueCount, and the standalone worker's), as the reconciler
// reads it from the poison queue.
type PoisonedJob struct {
	Job        Job
	Queue      string // the poison queue, for logs
	MessageID  string
	Receipt    string // removes it
	Text       string // the message as stored, which Release writes back
	PoisonedAt time.Time
	// Err is set when the message held no job: it is logged and removed.
	Err error
}

// PoisonQueue reads the poison queues of the job queues.
type PoisonQueue interface {
	// Poisoned takes up to max poisoned messages, hidden from other readers for a while:
	// one not removed comes back later.
	Poisoned(ctx context.Context, max int) ([]PoisonedJob, error)
	// Remove deletes a handled poisoned message.
	Remove(ctx context.Context, p PoisonedJob) error
	// Release makes a message that could not be handled visible again at once, so the
	// next reconciliation meets it before it looks at the window.
	Release(ctx context.Context, p PoisonedJob) error
}

// WorkloadIdentityStore keeps an organization's registry of workload identities in its
// partition, beside its credentials. Registrations are never changed, only inserted and
// deleted, each with its event in the same transaction.
type WorkloadIdentityStore interface {
	// InsertWorkloadIdentity writes w and its registration event ev at once. A tenant and
	// client id pair already registered in the organization fails with the *ConflictError
	// of WorkloadIdentityConflict, a new one in an organization at its limit with a
	// *QuotaError. The limit holds against concurrent inserts.
	InsertWorkloadIdentity(ctx context.Context, w *WorkloadIdentity, ev WorkloadIdentityEvent) error
	// FindWorkloadIdentity reads the registration of the pair (tenantID, clientID) in the
	// organization, in one point read; ErrNotFound when there is none.
	FindWorkloadIdentity(ctx context.Context, orgID, tenantID, clientID string) (*WorkloadIdentity, error)
	// GetWorkloadIdentity reads a registration by its id; ErrNotFound when there is none
	// (or it is another organization's).
	GetWorkloadIdentity(ctx context.Context, orgID, id string) (*WorkloadIdentity, error)
	// ListWorkloadIdentities reads the organization's registrations, oldest first.
	ListWorkloadIdentities(ctx context.Context, orgID string) ([]*WorkloadIdentity, error)
	// DeleteWorkloadIdentity removes w, if it is unchanged since it was read, with its
	// removal event ev in the same transaction, and frees its place under the limit. A
	// registration already gone is ErrNotFound; one that changed, ErrConflict.
	DeleteWorkloadIdentity(ctx context.Context, w *WorkloadIdentity, ev WorkloadIdentityEvent) error
	// WorkloadIdentityEvents reads the organization's registry log, oldest first.
	WorkloadIdentityEvents(ctx context.Context, orgID string) ([]WorkloadIdentityEvent, error)
}
