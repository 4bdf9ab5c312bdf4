package auth

import (
	"log/slog"
	"slices"
)

// Principal is the caller a verified token speaks for.
type Principal struct {
	// Subject is the token's sub claim.
	Subject string
	// Orgs are the organization ids of the token's orgs claim.
	Orgs []string
}

// CanAccess reports whether the principal may act in org. The match is exact and
// case-sensitive; there is no wildcard, and the empty org is never accessible.
func (p Principal) CanAccess(org string) bool {
	return org != "" && slices.Contains(p.Orgs, org)
}

// LogValue keeps log lines short and structured; a Principal holds no secret.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject", p.Subject),
		slog.Any("orgs", p.Orgs),
	)
}

// Workload is a customer's workload identity that a verified Entra token speaks for: an
// Azure managed identity of the customer's tenant. The ids are lower-case GUIDs, as Entra
// writes them.
//
// It says who the caller is, not what it may do: a workload acts for an organization only
// if that organization registered its Key, so a caller looks the Key up in the
// organization named by the request and refuses with 403 (the token is good, the identity
// is not registered there) when it is not found.
type Workload struct {
	// TenantID is the token's tid: the customer's tenant, which issued the token.
	TenantID string
	// ClientID is the token's azp: the managed identity's client id.
	ClientID string
	// ObjectID is the token's oid: the managed identity's service principal (object) id.
	ObjectID string
}

// WorkloadKey is what a workload identity's registration matches: the tenant and client
// id of its tokens. The object id is not part of it: the customer registers the client id
// and tenant the portal shows.
type WorkloadKey struct {
	TenantID string
	ClientID string
}

// Key is the registration the workload must match; comparable, so it can key a cache.
func (w Workload) Key() WorkloadKey { return WorkloadKey{TenantID: w.TenantID, ClientID: w.ClientID} }

// String names the identity in messages and logs: "client id X in tenant Y".
func (w Workload) String() string {
	return "client id " + w.ClientID + " in tenant " + w.TenantID
}

// LogValue keeps log lines short and structured; a Workload holds no secret.
func (w Workload) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant_id", w.TenantID),
		slog.String("client_id", w.ClientID),
		slog.String("object_id", w.ObjectID),
	)
}

// CallerKind says which kind of token a [Caller] presented.
type CallerKind string

const (
	// CallerUser presented a platform API token: a [Principal].
	CallerUser CallerKind = "user"
	// CallerWorkload presented an Entra token of a customer's managed identity: a [Workload].
	CallerWorkload CallerKind = "workload"
)

// Caller is whoever a verified bearer token speaks for: a platform user (Kind CallerUser,
// User set) or a customer's workload identity (Kind CallerWorkload, Workload set). The
// zero Caller is neither and may do nothing.
type Caller struct {
	Kind     CallerKind
	User     Principal
	Workload Workload
}

// LogValue names the kind and the identity, never a token.
func (c Caller) LogValue() slog.Value {
	switch c.Kind {
	case CallerUser:
		return slog.GroupValue(slog.String("kind", string(c.Kind)), slog.Any("user", c.User))
	case CallerWorkload:
		return slog.GroupValue(slog.String("kind", string(c.Kind)), slog.Any("workload", c.Workload))
	default:
		return slog.GroupValue(slog.String("kind", "none"))
	}
}
