package credential

import (
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
	// Pin is what the workspace resolved to when it locked: SourceWorkspace or
	// SourceOrgDefault (the credential is then CredentialID) or SourceEnvironmentDefault.
	// "" while unlocked, and on rows locked before pins were recorded (see Pinned).
	Pin       Source
	CreatedAt time.Time
	UpdatedAt time.Time
	ETag      string
}

// Locked reports whether the workspace has a table, which fixes its credential link.
func (w *Workspace) Locked() bool { return !w.LockedAt.IsZero() }

// Pinned is where a locked workspace's tables stay: "" while unlocked. A row locked before
// pins were recorded is pinned to its credential when it has one, else it locked on the
// environment default (such a lock never wrote a link).
func (w *Workspace) Pinned() Source {
	switch {
	case !w.Locked():
		return ""
	case w.Pin != "":
		return w.Pin
	case w.CredentialID != "":
		return SourceWorkspace
	}
	return SourceEnvironmentDefault
}

// pinnedCredential is the credential a locked workspace is pinned to, "" for none.
func (w *Workspace) pinnedCredential() string {
	if p := w.Pinned(); p == SourceWorkspace || p == SourceOrgDefault {
		return w.CredentialID
	}
	return ""
}

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
	// Why replaces the general explanation when the workspace's credential was deleted
	// and a re-point was refused for a reason of its own.
	Why string
}

func (e *LockedError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("the credential link of workspace %q is locked: %s", e.Workspace, e.Why)
	}
	return fmt.Sprintf("the credential link of workspace %q is locked: the workspace already has tables (the first was %q). "+
		"Pointing it at another credential would make new data land in another storage location while the existing data "+
		"stayed unreachable under the new one", e.Workspace, e.FirstTable)
}

// Is makes a LockedError match ErrWorkspaceLocked.
func (e *LockedError) Is(target error) bool { return target == ErrWorkspaceLocked }

// CredentialDeletedError is a locked workspace whose credential was deleted: its tables
// stay in that credential's storage, so no SAS is issued for any other. It matches
// ErrConflict.
type CredentialDeletedError struct {
	Workspace string
	Deleted   DeletedCredential // only the ID is known when no tombstone was found
}

func (e *CredentialDeletedError) Error() string {
	d := e.Deleted
	if d.Name == "" {
		return fmt.Sprintf("the credential %s of workspace %q was deleted: the workspace's tables stay in that credential's storage, "+
			"so no SAS is issued for other storage", d.ID, e.Workspace)
	}
	return fmt.Sprintf("the credential %s (%q) of workspace %q was deleted: the workspace's tables stay in %s, so no SAS is issued "+
		"for other storage. Re-point the workspace with PUT .../workspaces/%s/credential to a credential of this organization "+
		"with the same account, container and prefix", d.ID, d.Name, e.Workspace, d.BasePath, e.Workspace)
}

// Is makes a CredentialDeletedError match ErrConflict (HTTP 409).
func (e *CredentialDeletedError) Is(target error) bool { return target == ErrConflict }
