// Package store keeps credentials, workspaces and the registry of workload identities in
// Azure Table Storage.
//
// One table holds everything of an organization in one partition (PartitionKey = org id),
// so that the writes that must happen together are one entity group transaction:
//
//	c:<credential id>            the credential, or its tombstone once deleted (DeletedAt set)
//	n:<lower-cased name>         the name reservation (unique names per org)
//	d                            the org default (its CredentialID); the c: rows carry it too
//	                             as a mark (OrgDefault), changed in the same transactions
//	e:<credential id>:<revision> one event per state transition, append-only
//	h:<credential id>:<revision> one event per health status change, append-only
//	w:<workspace id>             a workspace: its link, first table, LockedAt and Pin
//	wi:<tenant id>:<client id>   a registered workload identity, keyed by what its tokens
//	                             carry (tid, azp), so admitting one is a point read
//	wid:<workload identity id>   its index: the tenant and client id of the id
//	wie:<seq>                    one event per registration or removal, append-only
//	q:credentials                how many live c: rows the organization has (Count)
//	q:workspaces                 how many w: rows the organization has (Count)
//	q:workload-identities        how many wi: rows the organization has (Count, Seq)
//
// Two partitions no organization id can name (ids start with a letter or digit) hold what
// is not one organization's:
//
//	~open-windows / <org>:<credential id>   the open-window index (windows.go): a row per
//	                                        credential whose background work the reconciler
//	                                        watches, with the failure its last job noted
//	~leases / <name>                        a timer's lease (lease.go): holder and expiry
//
// The reconciler reads the index with one query per thousand rows, whatever the number of
// credentials; nothing else reads across partitions but the health sweep.
//
// The counters (q:) enforce the organization's limits: every transaction that adds or
// removes a counted row also moves its counter, conditional on the ETag it was read with,
// so two racing creates cannot both take the last place. An organization written before
// counters existed gets each one on first use, from one count of its rows (quota.go).
// A counter also numbers its moves (Seq): the registry's log is keyed by the move of its
// transaction, so its entries are unique and in the order they happened across instances.
//
// The SDK drops the ETags of an entity group transaction's answer; inserts read them from
// it (batch.go), so a create holds its row's ETag without reading the row back, and the
// gate that queues an instance's inserts under one counter remembers the counter as the
// last of them left it: the next needs no read of it, and a counter moved elsewhere
// meanwhile fails the transaction on its ETag, after which it is read as before.
//
// A registration is one transaction too: the wi: and wid: rows, the wie: event and the
// counter; a removal deletes the two rows (conditional on the wi: row's ETag), adds its
// event and moves the counter. The prefixes are chosen so that no key range of one kind
// holds another's rows (w: is [w:, w;), which wi:, wid: and wie: are outside).
//
// Events (e: and wie:) carry the request's actor in four columns (ActorKind, ActorID,
// ActorClientID, ActorTenantID), absent when there is none: the background jobs'
// transitions and every event written before actors were recorded.
//
// A delete is one transaction: the credential row replaced by its tombstone (conditional
// on its ETag), the name reservation removed, the org default removed when it points at
// the credential, and the credential counter decremented. It touches no workspace, so it
// fits whatever the number of links; the credential's clean-up job clears the links of
// unlocked workspaces later (UnlockedLinks). Every read of credentials skips tombstones,
// which keep the id, name, base path and app ids for messages about locked workspaces and
// for the clean-up.
//
// The org default lives in two places kept together: the d row (what resolution reads)
// and a mark on the credential rows (OrgDefault), so that reading a credential, or the
// list, says which is the default in one round trip. Setting the default is one
// transaction: the d row written conditional on the ETag it was read with (an insert when
// there was none), the credential marked (conditional on its ETag: the check that it is
// unchanged) and the former default's mark cleared; clearing deletes the d row and clears
// the mark in one transaction; a delete's tombstone carries no mark. A mark changed moves
// the row's ETag on, so a writer holding the row from before cannot write the old mark
// back. Rows written before the mark existed have none: their reads read the d row too
// (Get, List, the health sweep: one read per organization and call), and their next
// write stores the mark. An older build setting or clearing the default while a newer
// one runs (during a deploy) writes the d row without the marks: the flag the API shows
// can then be wrong until the default is set or cleared again; which storage tables use
// is never affected, since resolution reads the d row.
//
// Health events have their own key range so the transition log never holds anything but
// transitions. The health sweep's walk over every verified credential is the one query
// across partitions.
//
// Every update is conditional on the ETag the credential was read with; a stale write
// fails with an error matching credential.ErrConflict.
package store
