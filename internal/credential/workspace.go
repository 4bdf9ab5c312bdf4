package credential

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Workspace is a workspace of an organization as far as storage is concerned: the
// credential it is linked to, and whether it has tables, which locks that link.
type Workspace struct {
	OrgID        string
	ID           string
	CredentialID string // the link; "" when the workspace falls back to the org default
	FirstTable   string // the table whose first /creds call locked the link; "" while unlocked
	LockedAt     time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ETag         string
}

// Locked reports whether the workspace has a table, which fixes its credential link.
func (w *Workspace) Locked() bool { return !w.LockedAt.IsZero() }

// Source says where a workspace's storage comes from.
type Source string

// The resolution order: workspace link, then org default, then environment default.
const (
	SourceWorkspace          Source = "workspace"
	SourceOrgDefault         Source = "org_default"
	SourceEnvironmentDefault Source = "environment_default"
	// SourceNone: nothing resolves (no link, no org default, no environment default).
	SourceNone Source = "none"
)

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
}

// ErrWorkspaceLocked is a link change on a workspace that has tables.
var ErrWorkspaceLocked = errors.New("workspace credential link is locked")

// workspacePattern bounds workspace ids and table names to safe row-key and path segments.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidateWorkspaceID checks a workspace id.
func ValidateWorkspaceID(id string) error {
	if !namePattern.MatchString(id) || strings.Contains(id, "..") {
		return invalid("workspace_id", "workspace id %q must be 1 to 128 letters, digits, '_', '-' or '.', starting with a letter or digit", id)
	}
	return nil
}

// ValidateTableName checks a table name, which becomes a path segment of blob names.
func ValidateTableName(name string) error {
	if !namePattern.MatchString(name) || strings.Contains(name, "..") {
		return invalid("table", "table name %q must be 1 to 128 letters, digits, '_', '-' or '.', starting with a letter or digit", name)
	}
	return nil
}

// CandidatesError is a registration that must name one of several verified credentials.
type CandidatesError struct {
	Candidates []*Credential
}

func (e *CandidatesError) Error() string {
	names := make([]string, len(e.Candidates))
	for i, c := range e.Candidates {
		names[i] = fmt.Sprintf("%s (%s)", c.Name, c.ID)
	}
	return "the organization has several verified credentials; name one with credential_id: " + strings.Join(names, ", ")
}

// Is makes a CandidatesError match ErrConflict (HTTP 409).
func (e *CandidatesError) Is(target error) bool { return target == ErrConflict }

// LockedError explains why a workspace's link cannot change.
type LockedError struct {
	Workspace  string
	FirstTable string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("the credential link of workspace %q is locked: the workspace already has tables (the first was %q). "+
		"Pointing it at another credential would make new data land in another storage location while the existing data "+
		"stayed unreachable under the new one", e.Workspace, e.FirstTable)
}

// Is makes a LockedError match ErrWorkspaceLocked.
func (e *LockedError) Is(target error) bool { return target == ErrWorkspaceLocked }
