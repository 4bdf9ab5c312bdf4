package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Store is the Table Storage implementation of credential.Store.
type Store struct {
	table  *aztables.Client
	limits Limits
	gate   gate
}

var _ credential.Store = (*Store)(nil)

// Open returns the store on the named table of svc, creating the table if it is missing.
func Open(ctx context.Context, svc *aztables.ServiceClient, table string, opts ...Option) (*Store, error) {
	if _, err := svc.CreateTable(ctx, table, nil); err != nil {
		if te, ok := classify(err); !ok || te.Code != codeTableAlreadyExists {
			return nil, fmt.Errorf("create table %s: %w", table, err)
		}
	}
	s := &Store{table: svc.NewClient(table)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func action(kind aztables.TransactionType, v any, etag string) (aztables.TransactionAction, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return aztables.TransactionAction{}, err
	}
	a := aztables.TransactionAction{ActionType: kind, Entity: b}
	if etag != "" {
		e := azcore.ETag(etag)
		a.IfMatch = &e
	}
	return a, nil
}

func (s *Store) submit(ctx context.Context, what string, actions ...aztables.TransactionAction) error {
	_, err := s.table.SubmitTransaction(ctx, actions, nil)
	return translate(err, what)
}

// Insert writes a new credential, its name reservation, its creation event and the
// organization's credential count at once; at the limit it writes nothing.
func (s *Store) Insert(ctx context.Context, c *credential.Credential, ev credential.EventRecord) error {
	c.Revision = 1
	ent, err := toEntity(c)
	if err != nil {
		return err
	}
	ent.WriteID = rand.Text()
	row, err := action(aztables.TransactionTypeAdd, ent, "")
	if err != nil {
		return err
	}
	name, err := action(aztables.TransactionTypeAdd, nameEntity{PartitionKey: c.OrgID, RowKey: nameKey(c.Name), CredentialID: c.ID}, "")
	if err != nil {
		return err
	}
	event, err := action(aztables.TransactionTypeAdd, toEventEntity(c.OrgID, c.ID, c.Revision, ev), "")
	if err != nil {
		return err
	}
	// The count goes first, so a retry of an attempt that landed fails on it (412). The
	// write id is new: a row with it is ours, written (and counted once) by an attempt
	// whose answer was lost.
	var landed, answered string
	err = s.countedInsert(ctx, c.OrgID, credentialCounter,
		func(take aztables.TransactionAction, _ int64) ([]string, error) {
			etags, ok, err := s.submitETags(ctx, "insert credential", take, row, name, event)
			if ok {
				answered = etags[1]
			}
			return etags, err
		},
		func() bool {
			etag, ok := s.landed(ctx, ent)
			if ok {
				landed = etag
			}
			return ok
		}, nil)
	switch {
	case errors.Is(err, errAlreadyExists):
		return &credential.ConflictError{Message: fmt.Sprintf("a credential named %q already exists in this organization", c.Name)}
	case err != nil:
		return err
	case landed != "":
		c.ETag = landed
		return nil
	case answered != "":
		c.ETag = answered
		return nil
	}
	// The transaction's answer named no ETag: read the row once to hold the current one.
	fresh, err := s.Get(ctx, c.OrgID, c.ID)
	if err != nil {
		return err
	}
	c.ETag = fresh.ETag
	return nil
}

// landed reports whether the credential row is the write want, with its ETag: a write
// whose answer was lost and whose retry then failed (409 on an insert, 412 on a
// conditional update) did land when the row carries its WriteID.
func (s *Store) landed(ctx context.Context, want credentialEntity) (string, bool) {
	return s.writtenBy(ctx, want.PartitionKey, want.RowKey, want.WriteID)
}

// logLanded reports whether the log row want was written, with its write id: the
// transaction that carried it landed, whatever its credential row has become since.
func (s *Store) logLanded(ctx context.Context, want logRow) bool {
	pk, rk, writeID := want.keys()
	_, ok := s.writtenBy(ctx, pk, rk, writeID)
	return ok
}

// writtenBy reports whether the row (pk, rk) carries writeID, with the row's ETag: every
// write of a row that can be retried carries a write id of its own, so a write whose
// answer was lost recognises the row it left. An empty writeID matches nothing.
func (s *Store) writtenBy(ctx context.Context, pk, rk, writeID string) (string, bool) {
	if writeID == "" {
		return "", false
	}
	resp, err := s.table.GetEntity(ctx, pk, rk, nil)
	if err != nil {
		return "", false
	}
	var got struct{ WriteID string }
	if json.Unmarshal(resp.Value, &got) != nil || got.WriteID != writeID {
		return "", false
	}
	return string(resp.ETag), true
}

// Get reads one credential; a deleted one (its tombstone) is not found.
func (s *Store) Get(ctx context.Context, orgID, id string) (*credential.Credential, error) {
	resp, err := s.table.GetEntity(ctx, orgID, credentialKey(id), nil)
	if err != nil {
		return nil, translate(err, "get credential "+id)
	}
	var ent credentialEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		return nil, fmt.Errorf("decode credential %s: %w", id, err)
	}
	if ent.DeletedAt != "" {
		return nil, fmt.Errorf("get credential %s: deleted: %w", id, credential.ErrNotFound)
	}
	c, err := fromEntity(ent, string(resp.ETag))
	if err != nil {
		return nil, err
	}
	if ent.OrgDefault == nil { // written before the mark: the default row says
		def, _, err := s.orgDefault(ctx, orgID)
		if err != nil {
			return nil, err
		}
		c.IsOrgDefault = def == c.ID
	}
	return c, nil
}

// unmarked fills in the org-default mark of credentials read from rows written before
// the mark existed, reading each organization's default row once: defaults holds the
// ones read so far (nil: none yet).
func (s *Store) unmarked(ctx context.Context, c *credential.Credential, defaults map[string]string) (map[string]string, error) {
	def, ok := defaults[c.OrgID]
	if !ok {
		var err error
		if def, _, err = s.orgDefault(ctx, c.OrgID); err != nil {
			return defaults, err
		}
		if defaults == nil {
			defaults = map[string]string{}
		}
		defaults[c.OrgID] = def
	}
	c.IsOrgDefault = def == c.ID
	return defaults, nil
}

// Tombstone reads what remains of a deleted credential; a credential that exists, or
// never did, is not found.
func (s *Store) Tombstone(ctx context.Context, orgID, id string) (*credential.DeletedCredential, error) {
	resp, err := s.table.GetEntity(ctx, orgID, credentialKey(id), nil)
	if err != nil {
		return nil, translate(err, "get deleted credential "+id)
	}
	var ent tombstoneEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		return nil, fmt.Errorf("decode deleted credential %s: %w", id, err)
	}
	if ent.DeletedAt == "" {
		return nil, fmt.Errorf("get deleted credential %s: it exists: %w", id, credential.ErrNotFound)
	}
	return fromTombstone(ent)
}

// rangeFilter selects the row keys of one partition that start with prefix. ';' follows
// ':' in ASCII, so [prefix, prefix with its last ':' turned into ';') is exactly the range.
func rangeFilter(orgID, prefix string) string {
	upper := prefix[:len(prefix)-1] + ";"
	return fmt.Sprintf("PartitionKey eq '%s' and RowKey ge '%s' and RowKey lt '%s'",
		odataQuote(orgID), odataQuote(prefix), odataQuote(upper))
}

func odataQuote(s string) string { return strings.ReplaceAll(s, "'", "''") }

func (s *Store) query(ctx context.Context, filter string, each func(raw []byte) error) error {
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return translate(err, "query")
		}
		for _, raw := range page.Entities {
			if err := each(raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeCredential reads a credential from an entity of a query's page, ETag included;
// nil for a tombstone, which every query skips. marked is false for a row written before
// the org-default mark existed, whose mark the caller must fill in (Store.unmarked).
func decodeCredential(raw []byte) (c *credential.Credential, marked bool, err error) {
	var ent struct {
		credentialEntity
		ETag string `json:"odata.etag"`
	}
	if err := json.Unmarshal(raw, &ent); err != nil {
		return nil, false, fmt.Errorf("decode credential: %w", err)
	}
	if ent.DeletedAt != "" {
		return nil, true, nil
	}
	c, err = fromEntity(ent.credentialEntity, ent.ETag)
	return c, ent.OrgDefault != nil, err
}

// List reads every credential of an organization, oldest first: one query, and one read
// of the default row when a row has no org-default mark yet.
func (s *Store) List(ctx context.Context, orgID string) ([]*credential.Credential, error) {
	var out, unmarked []*credential.Credential
	err := s.query(ctx, rangeFilter(orgID, credentialPrefix), func(raw []byte) error {
		c, marked, err := decodeCredential(raw)
		if err != nil || c == nil {
			return err
		}
		out = append(out, c)
		if !marked {
			unmarked = append(unmarked, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list credentials of %s: %w", orgID, err)
	}
	var defaults map[string]string
	for _, c := range unmarked {
		if defaults, err = s.unmarked(ctx, c, defaults); err != nil {
			return nil, fmt.Errorf("list credentials of %s: %w", orgID, err)
		}
	}
	sortByCreation(out)
	return out, nil
}

// Update writes c if it is unchanged since it was read. With an event, the row and the
// event are one transaction, and c.ETag is the one the transaction's answer names for the
// row (cleared when the answer could not be read: read the credential again before
// writing it once more).
func (s *Store) Update(ctx context.Context, c *credential.Credential, ev *credential.EventRecord) error {
	if c.ETag == "" {
		return fmt.Errorf("update credential %s: no ETag; read it first", c.ID)
	}
	c.Revision++
	ent, err := toEntity(c)
	if err != nil {
		c.Revision--
		return err
	}
	if ev == nil {
		ent.WriteID = rand.Text()
		b, err := json.Marshal(ent)
		if err != nil {
			return err
		}
		etag := azcore.ETag(c.ETag)
		resp, err := s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		if err != nil {
			err = translate(err, "update credential "+c.ID)
			if errors.Is(err, credential.ErrConflict) {
				if etag, ok := s.landed(ctx, ent); ok {
					c.ETag = etag
					return nil
				}
			}
			c.Revision--
			return err
		}
		c.ETag = string(resp.ETag)
		return nil
	}
	if err := s.updateWithEvent(ctx, c, ent, toEventEntity(c.OrgID, c.ID, c.Revision, *ev), "update credential "+c.ID); err != nil {
		c.Revision--
		return err
	}
	return nil
}

// updateWithEvent writes the credential row ent, conditional on c.ETag, and one new row of
// a log (event) in one transaction, and sets c.ETag to the row's new ETag as the
// transaction's answer names it (none when the answer could not be read: the caller then
// reads the row before it writes it again). A retry whose first attempt landed is
// recognised by the write id the row and its log row carry: by the row's while it is as
// written (c.ETag is then its ETag), else by the log row's, the row having moved on since
// (c.ETag is then cleared: c is not the row as it is).
func (s *Store) updateWithEvent(ctx context.Context, c *credential.Credential, ent credentialEntity, event logRow, op string) error {
	ent.WriteID = rand.Text()
	event = event.logged(ent.WriteID)
	row, err := action(aztables.TransactionTypeUpdateReplace, ent, c.ETag)
	if err != nil {
		return err
	}
	add, err := action(aztables.TransactionTypeAdd, event, "")
	if err != nil {
		return err
	}
	etags, answered, err := s.submitETags(ctx, op, row, add)
	if err != nil {
		if errors.Is(err, credential.ErrConflict) || errors.Is(err, errAlreadyExists) {
			// A retry whose first attempt landed: the row and its event are already there.
			if etag, ok := s.landed(ctx, ent); ok {
				c.ETag = etag
				return nil
			}
			if s.logLanded(ctx, event) {
				c.ETag = ""
				return nil
			}
		}
		if errors.Is(err, errAlreadyExists) {
			// Another writer took this revision's event key: the row moved on under us.
			return &credential.ConflictError{Message: "the credential was changed by another request; read it again and retry"}
		}
		return err
	}
	c.ETag = ""
	if answered {
		c.ETag = etags[0]
	}
	return nil
}

// Delete replaces c by its tombstone, conditional on c.ETag, in one entity group
// transaction with the removal of its name reservation and of the org default when that
// points at c, and frees c's place in the organization's credential count (see
// deleteActions). Workspace links stay: resolution treats a link to a
// tombstone as deleted (locked workspaces) or absent (unlocked ones), and the clean-up
// job clears the unlocked ones later, so the transaction's size does not depend on them.
// A retry whose first attempt landed (its answer lost) is recognised by the tombstone's
// write id.
func (s *Store) Delete(ctx context.Context, c *credential.Credential) error {
	if c.ETag == "" {
		return fmt.Errorf("delete credential %s: no ETag; read it first", c.ID)
	}
	tomb := toTombstone(c, time.Now().UTC())
	actions, err := s.deleteActions(ctx, c, tomb)
	if err != nil {
		return err
	}
	err = s.submit(ctx, "delete credential "+c.ID, actions...)
	if errors.Is(err, credential.ErrConflict) || errors.Is(err, credential.ErrNotFound) {
		if s.tombstoned(ctx, tomb) {
			return nil
		}
	}
	return err
}

// deleteActions is the delete's entity group transaction: the credential row replaced by
// tomb (conditional on c.ETag), the name reservation removed, the org default removed
// (conditional on its ETag) when it points at c, and the credential count decremented
// (conditional on its ETag). Every action is in c's partition.
func (s *Store) deleteActions(ctx context.Context, c *credential.Credential, tomb tombstoneEntity) ([]aztables.TransactionAction, error) {
	key := func(rk string) map[string]string { return map[string]string{"PartitionKey": c.OrgID, "RowKey": rk} }
	row, err := action(aztables.TransactionTypeUpdateReplace, tomb, c.ETag)
	if err != nil {
		return nil, err
	}
	name, err := action(aztables.TransactionTypeDelete, key(nameKey(c.Name)), "*")
	if err != nil {
		return nil, err
	}
	actions := []aztables.TransactionAction{row, name}
	def, etag, err := s.orgDefault(ctx, c.OrgID)
	if err != nil {
		return nil, err
	}
	if def == c.ID {
		d, err := action(aztables.TransactionTypeDelete, key(defaultKey), etag)
		if err != nil {
			return nil, err
		}
		actions = append(actions, d)
	}
	// Last: a retry whose first attempt landed fails first on the tombstone's row.
	free, err := s.release(ctx, c.OrgID, credentialCounter)
	if err != nil {
		return nil, err
	}
	actions = append(actions, free)
	return actions, nil
}

// tombstoned reports whether the credential row is the tombstone tomb, written by an
// attempt whose answer was lost.
func (s *Store) tombstoned(ctx context.Context, tomb tombstoneEntity) bool {
	_, ok := s.writtenBy(ctx, tomb.PartitionKey, tomb.RowKey, tomb.WriteID)
	return ok
}

// Events reads a credential's event log, oldest first (row keys carry the revision).
func (s *Store) Events(ctx context.Context, orgID, id string) ([]credential.EventRecord, error) {
	var out []credential.EventRecord
	err := s.query(ctx, rangeFilter(orgID, eventPrefix+id+":"), func(raw []byte) error {
		var ent eventEntity
		if err := json.Unmarshal(raw, &ent); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		ev, err := fromEventEntity(ent)
		if err != nil {
			return err
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events of credential %s: %w", id, err)
	}
	return out, nil
}

// OrgDefault returns the id of the organization's default credential, "" when none.
func (s *Store) OrgDefault(ctx context.Context, orgID string) (string, error) {
	id, _, err := s.orgDefault(ctx, orgID)
	return id, err
}

func (s *Store) orgDefault(ctx context.Context, orgID string) (id, etag string, err error) {
	resp, err := s.table.GetEntity(ctx, orgID, defaultKey, nil)
	if err != nil {
		err = translate(err, "get org default")
		if errors.Is(err, credential.ErrNotFound) {
			return "", "", nil
		}
		return "", "", err
	}
	var ent defaultEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		return "", "", fmt.Errorf("decode org default: %w", err)
	}
	return ent.CredentialID, string(resp.ETag), nil
}

// ClearOrgDefault deletes the org default if it points at id, conditional on the ETag it
// was read with: a default set again meanwhile stays (ErrConflict). None at all, or one
// deleted meanwhile (by another clear, or by a retry of this delete whose answer was
// lost), is success.
func (s *Store) ClearOrgDefault(ctx context.Context, orgID, id string) error {
	def, etag, err := s.orgDefault(ctx, orgID)
	switch {
	case err != nil:
		return err
	case def == "":
		return nil
	case def != id:
		return fmt.Errorf("clear org default %s: it is %s now: %w", id, def, &credential.ConflictError{
			Message: "the organization's default changed meanwhile; read it again and retry"})
	}
	// The default row goes and the credential's mark with it, in one transaction.
	del, err := action(aztables.TransactionTypeDelete, map[string]string{"PartitionKey": orgID, "RowKey": defaultKey}, etag)
	if err != nil {
		return err
	}
	unmark, err := markAction(orgID, id, false)
	if err != nil {
		return err
	}
	err = s.submit(ctx, "clear org default", del, unmark)
	if !errors.Is(err, credential.ErrNotFound) {
		return err
	}
	// Not found: the default row went meanwhile (another clear, or this one's retry whose
	// answer was lost), or it pointed at a credential row that is not there. Delete the
	// default row alone; gone already is success.
	tag := azcore.ETag(etag)
	_, err = s.table.DeleteEntity(ctx, orgID, defaultKey, &aztables.DeleteEntityOptions{IfMatch: &tag})
	if err = translate(err, "clear org default"); errors.Is(err, credential.ErrNotFound) {
		return nil
	}
	return err
}

// markAction writes the org-default mark of credential id (a merge: nothing else of the
// row changes, its ETag moves on), whatever the row's ETag: every write of a credential
// row is conditional on the ETag it read, so a writer holding the row from before the
// mark changed conflicts and cannot write the old mark back.
func markAction(orgID, id string, mark bool) (aztables.TransactionAction, error) {
	return action(aztables.TransactionTypeUpdateMerge, map[string]any{"PartitionKey": orgID, "RowKey": credentialKey(id), "OrgDefault": mark}, "*")
}

// SetOrgDefault points the org default at c, in one transaction with a check that c is
// unchanged (a delete racing with it makes one of the two fail, never a dangling default).
//
// The same transaction marks c's row as the default (conditional on c.ETag: the check) and
// clears the mark of the credential the default pointed at before; the default row's
// write is conditional on the ETag it was read with (or an insert when there was none),
// so a concurrent change of the default makes this one fail (ErrConflict) rather than
// leave two credentials marked.
func (s *Store) SetOrgDefault(ctx context.Context, c *credential.Credential) error {
	if c.ETag == "" {
		return fmt.Errorf("set org default: credential %s: no ETag; read it first", c.ID)
	}
	mark, err := action(aztables.TransactionTypeUpdateMerge, map[string]any{"PartitionKey": c.OrgID, "RowKey": credentialKey(c.ID), "OrgDefault": true}, c.ETag)
	if err != nil {
		return err
	}
	prev, etag, err := s.orgDefault(ctx, c.OrgID)
	if err != nil {
		return fmt.Errorf("set org default: %w", err)
	}
	row := defaultEntity{PartitionKey: c.OrgID, RowKey: defaultKey, CredentialID: c.ID}
	var def aztables.TransactionAction
	if etag == "" {
		def, err = action(aztables.TransactionTypeAdd, row, "")
	} else {
		def, err = action(aztables.TransactionTypeUpdateReplace, row, etag)
	}
	if err != nil {
		return err
	}
	actions := []aztables.TransactionAction{mark, def}
	if prev != "" && prev != c.ID {
		unmark, err := markAction(c.OrgID, prev, false)
		if err != nil {
			return err
		}
		actions = append(actions, unmark)
	}
	err = s.submit(ctx, "set org default", actions...)
	if errors.Is(err, credential.ErrNotFound) && len(actions) == 3 {
		// The former default's row is not there (a default row older than its
		// credential's delete): point the default without it.
		err = s.submit(ctx, "set org default", actions[:2]...)
	}
	if errors.Is(err, errAlreadyExists) {
		err = &credential.ConflictError{Message: "the organization's default changed meanwhile; read it again and retry"}
	}
	if err != nil {
		return err
	}
	c.ETag = ""
	c.IsOrgDefault = true
	return nil
}
