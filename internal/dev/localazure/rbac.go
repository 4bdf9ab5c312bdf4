package localazure

import (
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Role is a built-in Azure data-plane role for blob storage, named as Azure names it.
type Role string

// The Storage Blob Data roles a customer can grant.
const (
	RoleBlobDataReader      Role = "Storage Blob Data Reader"
	RoleBlobDataContributor Role = "Storage Blob Data Contributor"
	RoleBlobDataOwner       Role = "Storage Blob Data Owner"
)

// roleDefinitionIDs are the built-in role definition ids, the same in every subscription.
var roleDefinitionIDs = map[Role]string{
	RoleBlobDataReader:      "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
	RoleBlobDataContributor: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
	RoleBlobDataOwner:       "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
}

// ParseRole accepts a role by name (case-insensitive, as az does) or by definition id.
func ParseRole(s string) (Role, bool) {
	s = strings.TrimSpace(s)
	for r, id := range roleDefinitionIDs {
		if strings.EqualFold(s, string(r)) || strings.EqualFold(s, id) {
			return r, true
		}
	}
	return "", false
}

// DefinitionID is the role's built-in definition id.
func (r Role) DefinitionID() string { return roleDefinitionIDs[r] }

// CanRead reports whether the role grants reading and listing blobs. Every Storage Blob
// Data role also grants generateUserDelegationKey, but only at account scope or above.
func (r Role) CanRead() bool { _, ok := roleDefinitionIDs[r]; return ok }

// CanWrite reports whether the role grants writing and deleting blobs.
func (r Role) CanWrite() bool { return r == RoleBlobDataContributor || r == RoleBlobDataOwner }

// Scope is a parsed ARM scope at or above a blob container.
type Scope struct {
	SubscriptionID string
	ResourceGroup  string // empty for a subscription scope
	Account        string // empty above an account
	Container      string // empty above a container
}

var (
	resourceGroupPattern = regexp.MustCompile(`^[-\w.()]{1,90}$`)
	accountPattern       = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerPattern     = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
)

// validContainer applies Azure's container naming rules: 3-63 lowercase letters, digits
// and single hyphens, starting and ending with a letter or digit.
func validContainer(name string) bool {
	return len(name) >= 3 && len(name) <= 63 && containerPattern.MatchString(name)
}

// ParseScope parses an ARM scope exactly as Azure spells them for blob data roles:
//
//	/subscriptions/{s}
//	/subscriptions/{s}/resourceGroups/{rg}
//	/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{a}
//	/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{a}/blobServices/default/containers/{c}
//
// The fixed segments are case-insensitive, as in ARM.
func ParseScope(scope string) (Scope, error) {
	bad := func(why string) (Scope, error) {
		return Scope{}, badRequest("InvalidScope", "scope %q is not valid: %s", scope, why)
	}
	parts := strings.Split(strings.TrimSuffix(scope, "/"), "/")
	if len(parts) < 3 || parts[0] != "" || !strings.EqualFold(parts[1], "subscriptions") {
		return bad("it must start with /subscriptions/{subscriptionId}")
	}
	parts = parts[1:]
	expect := func(i int, literal string) bool { return len(parts) > i && strings.EqualFold(parts[i], literal) }
	var sc Scope
	if !isGUID(parts[1]) {
		return bad("the subscription id must be a GUID")
	}
	sc.SubscriptionID = strings.ToLower(parts[1])
	switch len(parts) {
	case 2, 4, 8, 12:
	default:
		return bad("it must name a subscription, a resource group, a storage account or a blob container")
	}
	if len(parts) >= 4 {
		if !expect(2, "resourceGroups") {
			return bad("expected resourceGroups after the subscription")
		}
		if !resourceGroupPattern.MatchString(parts[3]) || strings.HasSuffix(parts[3], ".") {
			return bad("invalid resource group name")
		}
		sc.ResourceGroup = parts[3]
	}
	if len(parts) >= 8 {
		if !expect(4, "providers") || !expect(5, "Microsoft.Storage") || !expect(6, "storageAccounts") {
			return bad("expected providers/Microsoft.Storage/storageAccounts/{account} after the resource group")
		}
		if !accountPattern.MatchString(parts[7]) {
			return bad("invalid storage account name")
		}
		sc.Account = parts[7]
	}
	if len(parts) == 12 {
		if !expect(8, "blobServices") || !expect(9, "default") || !expect(10, "containers") {
			return bad("expected blobServices/default/containers/{container} after the storage account")
		}
		if !validContainer(parts[11]) {
			return bad("invalid container name")
		}
		sc.Container = parts[11]
	}
	return sc, nil
}

// String is the scope as Azure writes it.
func (sc Scope) String() string {
	s := "/subscriptions/" + sc.SubscriptionID
	if sc.ResourceGroup != "" {
		s += "/resourceGroups/" + sc.ResourceGroup
	}
	if sc.Account != "" {
		s += "/providers/Microsoft.Storage/storageAccounts/" + sc.Account
	}
	if sc.Container != "" {
		s += "/blobServices/default/containers/" + sc.Container
	}
	return s
}

// covers reports whether a grant at sc applies to container of acct; an empty container
// asks about the account itself (as for generateUserDelegationKey), which a container
// scope does not cover.
func (sc Scope) covers(acct StorageAccount, container string) bool {
	switch {
	case sc.SubscriptionID != acct.SubscriptionID:
		return false
	case sc.ResourceGroup != "" && !strings.EqualFold(sc.ResourceGroup, acct.ResourceGroup):
		return false
	case sc.Account != "" && sc.Account != acct.Name:
		return false
	case sc.Container != "" && sc.Container != container:
		return false
	}
	return true
}

// StorageAccount is a customer storage account registered with the stand-in, so that ARM
// scopes naming it resolve.
type StorageAccount struct {
	Name           string `json:"name"`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	// TenantID, when set, is the tenant whose principals may be granted roles on it.
	TenantID string `json:"tenant_id,omitempty"`
}

// RegisterStorageAccount records a. Registering the same account again is a no-op;
// registering its name under another subscription or resource group is a conflict
// (account names are global in Azure).
func (s *Server) RegisterStorageAccount(a StorageAccount) (StorageAccount, bool, error) {
	if !accountPattern.MatchString(a.Name) {
		return StorageAccount{}, false, badRequest("AccountNameInvalid", "%q is not a valid storage account name: 3-24 lowercase letters and digits", a.Name)
	}
	if !isGUID(a.SubscriptionID) {
		return StorageAccount{}, false, badRequest("InvalidSubscriptionId", "subscription id %q is not a GUID", a.SubscriptionID)
	}
	if !resourceGroupPattern.MatchString(a.ResourceGroup) || strings.HasSuffix(a.ResourceGroup, ".") {
		return StorageAccount{}, false, badRequest("InvalidResourceGroup", "%q is not a valid resource group name", a.ResourceGroup)
	}
	a.SubscriptionID = strings.ToLower(a.SubscriptionID)
	a.TenantID = strings.ToLower(a.TenantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.TenantID != "" {
		if _, ok := s.tenants[a.TenantID]; !ok {
			return StorageAccount{}, false, notFound("TenantNotFound", "tenant %q does not exist", a.TenantID)
		}
	}
	if old, ok := s.accounts[a.Name]; ok {
		if old.SubscriptionID == a.SubscriptionID && strings.EqualFold(old.ResourceGroup, a.ResourceGroup) && (a.TenantID == "" || a.TenantID == old.TenantID) {
			return old, false, nil
		}
		return StorageAccount{}, false, conflict("StorageAccountAlreadyTaken", "the storage account named %s is already taken", a.Name)
	}
	s.accounts[a.Name] = a
	return a, true, nil
}

// StorageAccounts lists the registered accounts by name.
func (s *Server) StorageAccounts() []StorageAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StorageAccount, 0, len(s.accounts))
	for _, name := range sortedKeys(s.accounts) {
		out = append(out, s.accounts[name])
	}
	return out
}

// RoleAssignment is a role granted to a principal at a scope. Fields Azure returns keep
// its camelCase names; the propagation times are the stand-in's own (snake_case).
type RoleAssignment struct {
	ID                 string `json:"id"`   // full ARM id
	Name               string `json:"name"` // the assignment's GUID
	PrincipalID        string `json:"principalId"`
	PrincipalType      string `json:"principalType"`
	RoleDefinitionID   string `json:"roleDefinitionId"`
	RoleDefinitionName Role   `json:"roleDefinitionName"`
	Scope              string `json:"scope"`
	// CreatedAt is when the grant was made; EffectiveAt when data-plane checks start to
	// honour it (CreatedAt + PropagationDelay).
	CreatedAt   time.Time `json:"created_at"`
	EffectiveAt time.Time `json:"effective_at"`
	// RevokedAt is when the grant was deleted; RevokeEffectiveAt when checks stop
	// honouring it (RevokedAt + PropagationDelay). Nil while the grant stands.
	RevokedAt         *time.Time `json:"revoked_at,omitempty"`
	RevokeEffectiveAt *time.Time `json:"revoke_effective_at,omitempty"`

	scope Scope
}

// ActiveAt reports whether data-plane checks honour the assignment at t.
func (a RoleAssignment) ActiveAt(t time.Time) bool {
	return !t.Before(a.EffectiveAt) && (a.RevokeEffectiveAt == nil || t.Before(*a.RevokeEffectiveAt))
}

// State describes the assignment at t: propagating, active, revoking or revoked.
func (a RoleAssignment) State(t time.Time) string {
	switch {
	case a.RevokedAt == nil && t.Before(a.EffectiveAt):
		return "propagating"
	case a.RevokedAt == nil:
		return "active"
	case t.Before(*a.RevokeEffectiveAt):
		return "revoking"
	default:
		return "revoked"
	}
}

// GrantRole assigns role (a name or definition id) to the principal at scope, like
// `az role assignment create --assignee-object-id --role --scope`. The principal must be
// a service principal the stand-in knows (or the managed identity), in the account's
// tenant when the account names one; an account or container scope must name a registered
// account under its own subscription and resource group. The grant takes effect after the
// propagation delay. Granting what already stands is 409 RoleAssignmentExists.
func (s *Server) GrantRole(principalID, role, scope string) (RoleAssignment, error) {
	r, ok := ParseRole(role)
	if !ok {
		return RoleAssignment{}, badRequest("RoleDefinitionDoesNotExist", "role %q is not one of %q, %q, %q",
			role, RoleBlobDataReader, RoleBlobDataContributor, RoleBlobDataOwner)
	}
	sc, err := ParseScope(scope)
	if err != nil {
		return RoleAssignment{}, err
	}
	principalID = strings.ToLower(principalID)
	if !isGUID(principalID) {
		return RoleAssignment{}, badRequest("InvalidPrincipalId", "principal id %q is not a GUID", principalID)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolveScope(sc); err != nil {
		return RoleAssignment{}, err
	}
	tenantID := ""
	if sc.Account != "" {
		tenantID = s.accounts[sc.Account].TenantID
	}
	if !s.principalExists(principalID, tenantID) {
		return RoleAssignment{}, badRequest("PrincipalNotFound", "principal %s does not exist in the directory %s", principalID, tenantID)
	}
	for _, a := range s.assignments {
		if a.RevokedAt == nil && a.PrincipalID == principalID && a.RoleDefinitionName == r && a.Scope == sc.String() {
			return RoleAssignment{}, conflict("RoleAssignmentExists", "the role assignment already exists (%s)", a.Name)
		}
	}
	now := s.now()
	name := uuid.NewString()
	a := &RoleAssignment{
		ID:                 sc.String() + "/providers/Microsoft.Authorization/roleAssignments/" + name,
		Name:               name,
		PrincipalID:        principalID,
		PrincipalType:      "ServicePrincipal",
		RoleDefinitionID:   "/subscriptions/" + sc.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + r.DefinitionID(),
		RoleDefinitionName: r,
		Scope:              sc.String(),
		CreatedAt:          now,
		EffectiveAt:        now.Add(s.roleDelay),
		scope:              sc,
	}
	s.assignments = append(s.assignments, a)
	s.log.Info("role granted", "principal_id", principalID, "role", string(r), "scope", a.Scope, "effective_at", a.EffectiveAt)
	return *a, nil
}

// resolveScope checks that what sc names exists. Called with s.mu held.
func (s *Server) resolveScope(sc Scope) error {
	if sc.Account == "" {
		for _, a := range s.accounts {
			if a.SubscriptionID == sc.SubscriptionID && (sc.ResourceGroup == "" || strings.EqualFold(a.ResourceGroup, sc.ResourceGroup)) {
				return nil
			}
		}
		if sc.ResourceGroup != "" {
			return notFound("ResourceGroupNotFound", "resource group '%s' could not be found in subscription %s", sc.ResourceGroup, sc.SubscriptionID)
		}
		return notFound("SubscriptionNotFound", "subscription %s could not be found", sc.SubscriptionID)
	}
	a, ok := s.accounts[sc.Account]
	if !ok || a.SubscriptionID != sc.SubscriptionID || !strings.EqualFold(a.ResourceGroup, sc.ResourceGroup) {
		return notFound("ResourceNotFound", "the Resource 'Microsoft.Storage/storageAccounts/%s' under resource group '%s' was not found", sc.Account, sc.ResourceGroup)
	}
	return nil
}

// principalExists reports whether id is a service principal (or the managed identity),
// in tenantID when it is not empty. Called with s.mu held.
func (s *Server) principalExists(id, tenantID string) bool {
	if id == s.mi.ObjectID && (tenantID == "" || tenantID == s.home) {
		return true
	}
	for tid, t := range s.tenants {
		if tenantID != "" && tid != tenantID {
			continue
		}
		for _, sp := range t.sps {
			if sp.objectID == id {
				return true
			}
		}
	}
	return false
}

// RevokeRole deletes the assignment named id (its GUID or full ARM id). Checks keep
// honouring it until the propagation delay has passed.
func (s *Server) RevokeRole(id string) (RoleAssignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.assignments {
		if a.RevokedAt == nil && (strings.EqualFold(a.Name, id) || strings.EqualFold(a.ID, id)) {
			s.revoke(a)
			return *a, nil
		}
	}
	return RoleAssignment{}, notFound("RoleAssignmentNotFound", "role assignment %s does not exist", id)
}

// RevokeRoleOf deletes the standing assignment of role to principalID at scope, like
// `az role assignment delete --assignee --role --scope`.
func (s *Server) RevokeRoleOf(principalID, role, scope string) (RoleAssignment, error) {
	r, ok := ParseRole(role)
	if !ok {
		return RoleAssignment{}, badRequest("RoleDefinitionDoesNotExist", "role %q does not exist", role)
	}
	sc, err := ParseScope(scope)
	if err != nil {
		return RoleAssignment{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.assignments {
		if a.RevokedAt == nil && a.PrincipalID == strings.ToLower(principalID) && a.RoleDefinitionName == r && a.Scope == sc.String() {
			s.revoke(a)
			return *a, nil
		}
	}
	return RoleAssignment{}, notFound("RoleAssignmentNotFound", "no role assignment of %q to %s at %s", r, principalID, sc)
}

// revoke marks a revoked now. Called with s.mu held.
func (s *Server) revoke(a *RoleAssignment) {
	now := s.now()
	until := now.Add(s.roleDelay)
	a.RevokedAt, a.RevokeEffectiveAt = &now, &until
	s.log.Info("role revoked", "principal_id", a.PrincipalID, "role", string(a.RoleDefinitionName), "scope", a.Scope, "revoke_effective_at", until)
}

// RoleAssignments lists assignments, revoked ones included, optionally only those of
// principalID and at scope (either may be empty).
func (s *Server) RoleAssignments(principalID, scope string) ([]RoleAssignment, error) {
	want := ""
	if scope != "" {
		sc, err := ParseScope(scope)
		if err != nil {
			return nil, err
		}
		want = sc.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []RoleAssignment{}
	for _, a := range s.assignments {
		if (principalID == "" || a.PrincipalID == strings.ToLower(principalID)) && (want == "" || a.Scope == want) {
			out = append(out, *a)
		}
	}
	return out, nil
}

// EffectiveRoles returns the assignments that data-plane checks honour at time at for the
// principal on container of account: grants at the container, the account or above, past
// their propagation delay and not yet revoked (or revoked less than the delay ago). An
// empty container asks about the account itself, which container-scope grants do not
// cover: this is why a container-scope grant cannot get a user delegation key.
// An unregistered account has no effective roles.
func (s *Server) EffectiveRoles(principalObjectID, account, container string, at time.Time) []RoleAssignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, ok := s.accounts[account]
	if !ok {
		return nil
	}
	var out []RoleAssignment
	for _, a := range s.assignments {
		if a.PrincipalID == strings.ToLower(principalObjectID) && a.ActiveAt(at) && a.scope.covers(acct, container) {
			out = append(out, *a)
		}
	}
	return out
}
