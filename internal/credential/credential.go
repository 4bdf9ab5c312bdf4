package credential

import (
	"fmt"
	"time"
)

// Credential is one managed Azure credential of an organization.
type Credential struct {
	OrgID       string
	ID          string
	Name        string
	StorageType string
	BasePath    BasePath
	State       State

	CreatedAt  time.Time
	UpdatedAt  time.Time
	VerifiedAt time.Time // zero until the credential first reaches verified

	App        App    // the app registration in the home tenant; empty while it is being created
	TenantID   string // the customer's tenant, once submitted
	SPObjectID string // the service principal's object id in the customer tenant, once found
	Storage    StorageTarget

	// Generation numbers the current poll window. Starting a window increments it, and a
	// background message carrying another generation changes nothing.
	Generation int64
	Progress   Progress
	LastError  Problem
	// Health is the last re-probe of a verified credential's access (health.go); zero
	// before the first. It is apart from State: a degraded credential stays verified.
	Health Health

	// IsOrgDefault says whether the credential is its organization's default, as the
	// store read it (a mark on the credential's row, changed in the same transaction as
	// the default). Resolution reads the default itself (Store.OrgDefault), not this.
	IsOrgDefault bool
	// Links are not stored either: Onboarding's answers fill them in from its Config.
	Links Links

	// Revision counts the writes of the row; events are keyed by it.
	Revision int64
	// ETag is the store's concurrency token of the row as it was read.
	ETag string
}

// StorageTarget is the customer's storage account as submitted in the storage form.
type StorageTarget struct {
	SubscriptionID string
	ResourceGroup  string
	Account        string
	Container      string
}

// WindowKind names what a poll window waits for.
type WindowKind string

// The two waiting windows of onboarding.
const (
	WindowSPPoll      WindowKind = "sp_poll"
	WindowAccessProbe WindowKind = "access_probe"
)

// Status is the progress status the wizard shows for the current window.
type Status string

// Statuses of the service principal poll and the access probe.
const (
	StatusPolling                   Status = "polling"
	StatusFound                     Status = "found"
	StatusNotFound                  Status = "not_found"
	StatusTenantNotFound            Status = "tenant_not_found"
	StatusProbing                   Status = "probing"
	StatusConnected                 Status = "connected"
	StatusWaitingForRolePropagation Status = "waiting_for_role_propagation"
	StatusRoleNotSufficient         Status = "role_not_sufficient"
	StatusContainerNotFound         Status = "container_not_found"
	StatusStorageAccountNotFound    Status = "storage_account_not_found"
	StatusNetworkBlocked            Status = "network_blocked"
	StatusUnexpectedError           Status = "unexpected_error"
	StatusTimedOut                  Status = "timed_out"
)

// Progress is the state of the current (or last) poll window.
type Progress struct {
	Kind       WindowKind
	Attempts   int
	StartedAt  time.Time
	Deadline   time.Time
	GraceUntil time.Time // access probe only: until then 403/404 mean "not propagated yet"
	Status     Status
	Checks     []Check
}

// Check is the result of one step of the access probe.
type Check struct {
	Name         string // user_delegation_key, write, list_read, delete
	Result       string // pass, fail, skip
	ProviderCode string
}

// Problem is the last error shown to the user, with what support needs to trace it.
type Problem struct {
	Message       string // user-facing text
	Code          string // our classification
	Hint          string // which way a role is not sufficient, or what to allow
	ProviderError string // the raw Azure or Entra code, e.g. ContainerNotFound, AADSTS700016
	RequestID     string
}

// EventRecord is one entry of a credential's append-only transition log.
type EventRecord struct {
	Time       time.Time
	From       State // empty for the creation
	To         State
	Cause      Event
	RequestID  string
	Generation int64
	// Actor is who made the request that caused the transition (ActorOf its context);
	// zero for the background jobs' transitions and for events recorded before actors.
	Actor Actor
}

// EventCreated is the cause recorded for a credential's creation.
const EventCreated Event = "created"

// InstallCommand is the Azure CLI command that installs the app's service principal in
// the customer's tenant. Empty until the app registration exists.
func (c *Credential) InstallCommand() string {
	if c.App.AppID == "" {
		return ""
	}
	return "az ad sp create --id " + c.App.AppID
}

// AccountScope is the ARM resource id of the storage account, the scope of the role grant.
func (c *Credential) AccountScope() string {
	s := c.Storage
	if s.SubscriptionID == "" || s.ResourceGroup == "" || s.Account == "" {
		return ""
	}
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s",
		s.SubscriptionID, s.ResourceGroup, s.Account)
}

// RoleAssignmentCommand is the two Azure CLI commands of the wizard's step 4 with the
// account name and the service principal's object id filled in. Empty until both are known.
func (c *Credential) RoleAssignmentCommand() string {
	account := c.Storage.Account
	if account == "" {
		account = c.BasePath.Account
	}
	if account == "" || c.SPObjectID == "" {
		return ""
	}
	return fmt.Sprintf(`ACCOUNT_ID="$(az storage account show --name %s --query id --output tsv)"
az role assignment create --assignee-object-id %s --assignee-principal-type ServicePrincipal --role "Storage Blob Data Contributor" --scope "${ACCOUNT_ID}"`,
		account, c.SPObjectID)
}

// RoleCheckCommand is the Azure CLI command that lists the roles of the service principal
// spObjectID wherever they are (the wizard's troubleshooting for a role that is not
// sufficient, or not visible yet).
func RoleCheckCommand(spObjectID string) string {
	return fmt.Sprintf("az role assignment list --assignee %s --all --query '[].{role:roleDefinitionName, scope:scope}' -o table", spObjectID)
}
