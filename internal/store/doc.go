// Package store keeps credentials in Azure Table Storage.
//
// One table holds everything of an organization in one partition (PartitionKey = org id),
// so that the writes that must happen together are one entity group transaction:
//
//	c:<credential id>            the credential
//	n:<lower-cased name>         the name reservation (unique names per org)
//	d                            the org default (its CredentialID)
//	e:<credential id>:<revision> one event per state transition, append-only
//	h:<credential id>:<revision> one event per health status change, append-only
//	w:<workspace id>             a workspace: its credential link and its lock
//	q:credentials                how many c: rows the organization has (Count)
//	q:workspaces                 how many w: rows the organization has (Count)
//
// The two counters (q:) enforce the organization's limits: every transaction that adds or
// removes a counted row also moves its counter, conditional on the ETag it was read with,
// so two racing creates cannot both take the last place. An organization written before
// counters existed gets each one on first use, from one count of its rows (quota.go).
//
// Health events have their own key range so the transition log never holds anything but
// transitions. The health sweep's walk over every verified credential is the one query
// across partitions.
//
// Every update is conditional on the ETag the credential was read with; a stale write
// fails with an error matching credential.ErrConflict.
package store
