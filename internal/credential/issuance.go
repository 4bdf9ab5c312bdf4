package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Issuance serves storage to workspaces: it registers and links them, resolves where a
// workspace's tables go (its link, the org default, the environment default), pins a
// workspace to that at its first table, and issues the container SAS for a table,
// creating an organization's environment-default container at its first SAS. A short
// per-instance cache keeps busy locked workspaces' resolutions.
type Issuance struct {
	env         EnvironmentDefault
	store       Store
	workspaces  WorkspaceStore
	signer      Signer
	containers  ContainerCreator
	resolutions *ResolutionCache
	transitions transitioner
	log         *slog.Logger
	now         func() time.Time
}

// NewIssuance returns storage issuance on its ports; resolutions is the instance's cache
// of workspace resolutions, shared with Onboarding.
func NewIssuance(cfg Config, store Store, workspaces WorkspaceStore, signer Signer, containers ContainerCreator,
	resolutions *ResolutionCache, log *slog.Logger, opts ...Option) (*Issuance, error) {
	if err := required("credential issuance", map[string]any{"store": store, "workspace store": workspaces, "signer": signer,
		"container creator": containers, "resolution cache": resolutions, "log": log}); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	if err := cfg.EnvironmentDefault.validate(); err != nil {
		return nil, fmt.Errorf("credential issuance: environment default: %w", err)
	}
	o := newOptions(opts)
	return &Issuance{env: cfg.EnvironmentDefault, store: store, workspaces: workspaces, signer: signer, containers: containers,
		resolutions: resolutions, transitions: transitioner{store: store, now: o.now}, log: log, now: o.now}, nil
}

// SASLifetime is how long an issued SAS is valid; SASClockSkew is how far back it starts,
// for clocks that run behind.
const (
	SASLifetime  = time.Hour
	SASClockSkew = 5 * time.Minute
)

// EnvironmentDefault is the platform's own storage, used when neither the workspace nor
// the organization names a credential. It is signed with the backend's managed identity.
// Every organization has a container of its own there (OrgContainer), created by the
// managed identity at the organization's first SAS.
type EnvironmentDefault struct {
	Account string
	// ContainerPrefix starts every organization's container name; DefaultContainerPrefix
	// when empty.
	ContainerPrefix string
	Prefix          string
}

// Configured reports whether an environment default exists.
func (e EnvironmentDefault) Configured() bool { return e.Account != "" }

// OrgContainer is organization orgID's container in the environment default's account.
func (e EnvironmentDefault) OrgContainer(orgID string) string {
	return OrgContainerName(e.ContainerPrefix, orgID)
}

// Resolution is where a workspace's storage comes from.
type Resolution struct {
	Workspace  *Workspace // nil for a workspace never registered nor used
	Source     Source
	Credential *Credential // nil for the environment default
	// Deleted is the tombstone of the credential a locked workspace is pinned to, when
	// that credential was deleted: nothing serves the workspace then, and Account,
	// Container and Prefix say where its tables are.
	Deleted   *DeletedCredential
	Account   string
	Container string
	Prefix    string // the base path's prefix, without slashes
}

// Issued is an issued SAS and where it may write.
type Issued struct {
	Resolution
	AccountURL string
	PathPrefix string // <prefix>/<org>/<workspace>/<table>/
	SAS        Secret
	ExpiresAt  time.Time
}

// SASError is a SAS that could not be issued because Azure refused the key or the token;
// it carries the provider's code for support.
type SASError struct {
	CredentialID string
	State        State
	Provider     *ProviderError
	Err          error
}

func (e *SASError) Error() string {
	code := "unknown"
	if e.Provider != nil && e.Provider.Code != "" {
		code = e.Provider.Code
	}
	if e.CredentialID == "" {
		return fmt.Sprintf("could not issue a SAS for the environment default storage (Azure said %s)", code)
	}
	return fmt.Sprintf("could not issue a SAS with credential %s in state %s (Azure said %s); the credential keeps its state", e.CredentialID, e.State, code)
}

func (e *SASError) Unwrap() error { return e.Err }

// RegisterWorkspace records a workspace and links it: to credentialID when given; else to
// the organization's one verified credential; with several, the caller must name one
// (a *CandidatesError lists them); with none, the workspace falls back to the org default.
func (is *Issuance) RegisterWorkspace(ctx context.Context, orgID, wsID, credentialID string) (*Resolution, error) {
	if err := ValidateWorkspaceID(wsID); err != nil {
		return nil, err
	}
	var link *Credential
	if credentialID != "" {
		c, err := is.usable(ctx, orgID, credentialID, "link a workspace to it")
		if err != nil {
			return nil, err
		}
		link = c
	} else {
		cs, err := is.store.List(ctx, orgID)
		if err != nil {
			return nil, err
		}
		var verified []*Credential
		for _, c := range cs {
			if c.State == StateVerified {
				verified = append(verified, c)
			}
		}
		switch len(verified) {
		case 0:
		case 1:
			link = verified[0]
		default:
			return nil, &CandidatesError{Candidates: verified}
		}
	}
	now := is.now().UTC()
	w := &Workspace{OrgID: orgID, ID: wsID, CreatedAt: now, UpdatedAt: now}
	if link != nil {
		w.CredentialID = link.ID
	}
	if err := is.workspaces.InsertWorkspace(ctx, w, link); err != nil {
		if errors.Is(err, ErrConflict) {
			if _, gerr := is.workspaces.GetWorkspace(ctx, orgID, wsID); gerr == nil {
				return nil, &ConflictError{Message: fmt.Sprintf("workspace %q is already registered; change its link with PUT .../workspaces/%s/credential", wsID, wsID)}
			}
		}
		return nil, fmt.Errorf("register workspace %s: %w", wsID, err)
	}
	return is.resolve(ctx, orgID, w)
}

// usable reads a credential that can serve SAS requests (verified or unverified_saved).
func (is *Issuance) usable(ctx context.Context, orgID, id, action string) (*Credential, error) {
	c, err := is.store.Get(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if !c.State.Usable() {
		return nil, &TransitionError{Action: action, State: c.State, Allowed: []State{StateVerified, StateUnverifiedSaved}}
	}
	return c, nil
}

// Workspace reads a workspace and where its storage comes from.
func (is *Issuance) Workspace(ctx context.Context, orgID, wsID string) (*Resolution, error) {
	if err := ValidateWorkspaceID(wsID); err != nil {
		return nil, err
	}
	w, err := is.getWorkspace(ctx, orgID, wsID)
	if err != nil {
		return nil, err
	}
	return is.resolve(ctx, orgID, w)
}

// getWorkspace reads a workspace; a missing one is a *NotFoundError naming it.
func (is *Issuance) getWorkspace(ctx context.Context, orgID, wsID string) (*Workspace, error) {
	w, err := is.workspaces.GetWorkspace(ctx, orgID, wsID)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{What: "workspace", ID: wsID}
	}
	return w, err
}

// LinkWorkspace points a workspace at a credential, or at none ("" falls back to the org
// default). Once the workspace has a table the link is locked (*LockedError).
func (is *Issuance) LinkWorkspace(ctx context.Context, orgID, wsID, credentialID string) (*Resolution, error) {
	if err := ValidateWorkspaceID(wsID); err != nil {
		return nil, err
	}
	w, err := is.getWorkspace(ctx, orgID, wsID)
	if err != nil {
		return nil, err
	}
	if w.Locked() {
		return is.repoint(ctx, orgID, w, credentialID)
	}
	var c *Credential
	if credentialID != "" {
		if c, err = is.usable(ctx, orgID, credentialID, "link a workspace to it"); err != nil {
			return nil, err
		}
	}
	w.CredentialID = credentialID
	w.UpdatedAt = is.now().UTC()
	is.resolutions.forget(orgID)
	if err := is.workspaces.UpdateWorkspace(ctx, w, c); err != nil {
		return nil, fmt.Errorf("link workspace %s: %w", wsID, err)
	}
	return is.resolve(ctx, orgID, w)
}

// repoint re-links a locked workspace whose credential was deleted: only to a usable
// credential of the organization with the deleted one's account, container and prefix,
// so the workspace's tables stay where they are and reachable. Every other change of a
// locked link is a *LockedError.
func (is *Issuance) repoint(ctx context.Context, orgID string, w *Workspace, credentialID string) (*Resolution, error) {
	locked := &LockedError{Workspace: w.ID, FirstTable: w.FirstTable}
	id := w.pinnedCredential()
	if id == "" {
		return nil, locked
	}
	if _, err := is.store.Get(ctx, orgID, id); !errors.Is(err, ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("read credential %s of workspace %s: %w", id, w.ID, err)
		}
		return nil, locked // the pinned credential still exists
	}
	d, err := is.tombstone(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	deleted := d.ID
	if d.Name != "" {
		deleted = fmt.Sprintf("%s (%q)", d.ID, d.Name)
	}
	switch {
	case d.BasePath == (BasePath{}):
		locked.Why = fmt.Sprintf("its credential %s was deleted with no record of where it kept the workspace's tables, "+
			"so no other credential can be shown to reach them", deleted)
		return nil, locked
	case credentialID == "":
		locked.Why = fmt.Sprintf("its credential %s was deleted and its tables stay in %s; removing the link would send new tables "+
			"elsewhere. Re-point it with PUT to a credential with the same account, container and prefix", deleted, d.BasePath)
		return nil, locked
	}
	c, err := is.usable(ctx, orgID, credentialID, "re-point a workspace to it")
	if err != nil {
		return nil, err
	}
	if c.BasePath != d.BasePath {
		locked.Why = fmt.Sprintf("its deleted credential %s kept the workspace's tables in %s, but credential %s (%q) uses %s; "+
			"re-point it only to a credential with the same account, container and prefix", deleted, d.BasePath, c.ID, c.Name, c.BasePath)
		return nil, locked
	}
	w.CredentialID, w.Pin, w.UpdatedAt = c.ID, SourceWorkspace, is.now().UTC()
	is.resolutions.forget(orgID)
	if err := is.workspaces.UpdateWorkspace(ctx, w, c); err != nil {
		return nil, fmt.Errorf("re-point workspace %s: %w", w.ID, err)
	}
	return is.resolve(ctx, orgID, w)
}

// tombstone reads a deleted credential's tombstone; one deleted before tombstones were
// kept is known by its id alone.
func (is *Issuance) tombstone(ctx context.Context, orgID, id string) (*DeletedCredential, error) {
	d, err := is.store.Tombstone(ctx, orgID, id)
	if errors.Is(err, ErrNotFound) {
		return &DeletedCredential{OrgID: orgID, ID: id}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the tombstone of credential %s: %w", id, err)
	}
	return d, nil
}

// resolve finds a workspace's storage. A locked workspace stays where it locked: on its
// credential (r.Deleted when that was deleted) or on the environment default. An unlocked
// one uses its link, else the org default, else the environment default.
func (is *Issuance) resolve(ctx context.Context, orgID string, w *Workspace) (*Resolution, error) {
	r := &Resolution{Workspace: w}
	id, err := is.pick(ctx, orgID, r)
	if err != nil {
		return nil, err
	}
	if id == "" {
		if !is.env.Configured() {
			r.Source = SourceNone
			return r, nil
		}
		e := is.env
		r.Source, r.Account, r.Container, r.Prefix = SourceEnvironmentDefault, e.Account, e.OrgContainer(orgID), strings.Trim(e.Prefix, "/")
		return r, nil
	}
	bp := BasePath{}
	if r.Credential != nil {
		bp = r.Credential.BasePath
	} else if r.Deleted != nil {
		bp = r.Deleted.BasePath
	}
	r.Account, r.Container, r.Prefix = bp.Account, bp.Container, bp.Prefix
	return r, nil
}

// pick sets the source and the credential of r and returns that credential's id, "" for
// the environment default. A locked workspace never reads the org default, so no change
// of the default moves it. A deleted credential (missing, or a tombstone) is "deleted"
// for a locked workspace and absent for an unlocked one, whose link its clean-up clears
// later.
func (is *Issuance) pick(ctx context.Context, orgID string, r *Resolution) (string, error) {
	w := r.Workspace
	if w != nil && w.Locked() {
		r.Source = SourceWorkspace
		id := w.pinnedCredential()
		if id == "" {
			return "", nil
		}
		c, err := is.store.Get(ctx, orgID, id)
		switch {
		case err == nil:
			r.Credential = c
		case errors.Is(err, ErrNotFound):
			r.Deleted, err = is.tombstone(ctx, orgID, id)
		default:
			err = fmt.Errorf("read workspace credential %s: %w", id, err)
		}
		return id, err
	}
	if w != nil && w.CredentialID != "" {
		c, err := is.store.Get(ctx, orgID, w.CredentialID)
		if err == nil {
			r.Source, r.Credential = SourceWorkspace, c
			return c.ID, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("read workspace credential %s: %w", w.CredentialID, err)
		}
		w.CredentialID = "" // deleted: its clean-up clears the stored link too

	}
	r.Source = SourceOrgDefault
	def, err := is.store.OrgDefault(ctx, orgID)
	if err != nil {
		return "", fmt.Errorf("read org default: %w", err)
	}
	if def == "" {
		return "", nil
	}
	c, err := is.store.Get(ctx, orgID, def)
	if errors.Is(err, ErrNotFound) {
		return "", nil // deleted since the default was read: the delete removed the default too
	}
	if err != nil {
		return "", fmt.Errorf("read org default credential %s: %w", def, err)
	}
	r.Credential = c
	return def, nil
}

// IssueSAS answers the SDK's request for a table's storage: it resolves the workspace's
// storage, records the table (which locks the workspace's link), and signs a one-hour
// user delegation SAS for the container. A credential in unverified_saved that signs
// successfully becomes verified.
func (is *Issuance) IssueSAS(ctx context.Context, orgID, wsID, table, requestID string) (*Issued, error) {
	if err := ValidateWorkspaceID(wsID); err != nil {
		return nil, err
	}
	if err := ValidateTableName(table); err != nil {
		return nil, err
	}
	r, err := is.resolveForTable(ctx, orgID, wsID, table)
	if err != nil {
		return nil, err
	}
	// A SAS carries its times in whole seconds; so does the answer's expiry.
	now := is.now().UTC().Truncate(time.Second)
	req := SASRequest{Account: r.Account, Container: r.Container, Start: now.Add(-SASClockSkew), Expiry: now.Add(SASLifetime)}
	if c := r.Credential; c != nil {
		req.Identity = SignerIdentity{TenantID: c.TenantID, AppID: c.App.AppID}
	} else {
		req.Identity = SignerIdentity{Platform: true}
		// The organization's own container is created at its first SAS (remembered after).
		if err := is.containers.EnsureContainer(ctx, r.Account, r.Container); err != nil {
			return nil, sasError(r, err)
		}
	}
	sas, err := is.signer.ContainerSAS(ctx, req)
	if err != nil {
		return nil, sasError(r, err)
	}
	if c := r.Credential; c != nil && c.State == StateUnverifiedSaved {
		is.promote(ctx, c.OrgID, c.ID, requestID)
	}
	prefix := orgID + "/" + wsID + "/" + table + "/"
	if r.Prefix != "" {
		prefix = r.Prefix + "/" + prefix
	}
	return &Issued{Resolution: *r, AccountURL: sas.AccountURL, PathPrefix: prefix, SAS: sas.Token, ExpiresAt: req.Expiry}, nil
}

// sasError is a SAS that Azure refused to sign (or whose container it refused to create)
// for r.
func sasError(r *Resolution, err error) *SASError {
	se := &SASError{Err: err}
	errors.As(err, &se.Provider)
	if c := r.Credential; c != nil {
		se.CredentialID, se.State = c.ID, c.State
	}
	return se
}

// resolveForTable resolves a workspace's storage for one of its tables and records the
// table (which locks the link). A busy locked workspace's resolution comes from the
// short cache.
func (is *Issuance) resolveForTable(ctx context.Context, orgID, wsID, table string) (*Resolution, error) {
	if r, ok := is.resolutions.get(orgID, wsID, is.now()); ok {
		return &r, nil
	}
	// Concurrent first calls for a new workspace or table race to record it; the losers
	// read again and find it recorded (or the link that beat them), so they get the same
	// answer instead of a conflict.
	for attempt := 1; ; attempt++ {
		r, err := is.resolveAndLock(ctx, orgID, wsID, table)
		if !errors.Is(err, errLockRaced) {
			return r, err
		}
		if attempt == lockAttempts {
			return nil, &ConflictError{Message: fmt.Sprintf("workspace %q kept changing while its first table was being recorded; retry", wsID)}
		}
	}
}

// lockAttempts bounds how often a /creds call reads again after losing the race to
// record a workspace's first table.
const lockAttempts = 3

// errLockRaced is a first-table record that lost to a concurrent write of the workspace.
var errLockRaced = errors.New("the workspace changed while its first table was being recorded")

func (is *Issuance) resolveAndLock(ctx context.Context, orgID, wsID, table string) (*Resolution, error) {
	w, err := is.workspaces.GetWorkspace(ctx, orgID, wsID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if errors.Is(err, ErrNotFound) {
		w = nil
	}
	r, err := is.resolve(ctx, orgID, w)
	if err != nil {
		return nil, err
	}
	if r.Deleted != nil {
		return nil, &CredentialDeletedError{Workspace: wsID, Deleted: *r.Deleted}
	}
	if r.Source == SourceNone {
		return nil, &ConflictError{Message: "no storage for this workspace: it has no credential link, the organization has no default credential, and no environment default is configured"}
	}
	if c := r.Credential; c != nil && !c.State.Usable() {
		return nil, &TransitionError{Action: "issue a SAS with credential " + c.Name, State: c.State, Allowed: []State{StateVerified, StateUnverifiedSaved}}
	}
	if err := is.lockOnFirstTable(ctx, orgID, wsID, w, r, table); err != nil {
		return nil, err
	}
	is.resolutions.put(orgID, wsID, r, is.now())
	return r, nil
}

// lockOnFirstTable records a workspace's first table, which pins the workspace to what it
// resolved to: its link, the org default's credential (which becomes its link) or the
// environment default (no link). Nothing moves a pinned workspace afterwards. A
// workspace never registered is recorded now. Conditional writes make the lock safe
// against a concurrent link change, and a pin on the org default's credential checks
// that credential in the same transaction: whichever lands first wins, the other sees it.
func (is *Issuance) lockOnFirstTable(ctx context.Context, orgID, wsID string, w *Workspace, r *Resolution, table string) error {
	if w != nil && w.Locked() {
		return nil
	}
	is.resolutions.forget(orgID)
	now := is.now().UTC()
	link := ""
	if r.Credential != nil {
		link = r.Credential.ID
	}
	var pin *Credential
	if r.Source == SourceOrgDefault {
		pin = r.Credential
	}
	if w == nil {
		nw := &Workspace{OrgID: orgID, ID: wsID, CredentialID: link, FirstTable: table, LockedAt: now, Pin: r.Source, CreatedAt: now, UpdatedAt: now}
		err := is.workspaces.InsertWorkspace(ctx, nw, pin)
		if err == nil {
			r.Workspace = nw
			return nil
		}
		if errors.Is(err, ErrConflict) {
			return errLockRaced
		}
		return fmt.Errorf("record workspace %s: %w", wsID, err)
	}
	w.FirstTable, w.LockedAt, w.UpdatedAt, w.Pin, w.CredentialID = table, now, now, r.Source, link
	if err := is.workspaces.UpdateWorkspace(ctx, w, pin); err != nil {
		if errors.Is(err, ErrConflict) {
			return errLockRaced
		}
		return fmt.Errorf("lock workspace %s: %w", wsID, err)
	}
	return nil
}

// promote moves an unverified_saved credential to verified after its first SAS. It reads
// the row again (the lock may have written it) and leaves it alone when another request
// promoted it or its state moved on.
func (is *Issuance) promote(ctx context.Context, orgID, id, requestID string) {
	c, err := is.store.Get(ctx, orgID, id)
	if err == nil && c.State == StateUnverifiedSaved {
		err = is.transitions.apply(ctx, c, EventSASIssued, requestID, nil)
	}
	if err != nil && !errors.Is(err, ErrConflict) {
		is.log.WarnContext(ctx, "SAS issued but the promotion to verified failed", "org", orgID, "credential", id, "err", err)
	}
}
