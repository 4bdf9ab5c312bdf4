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
