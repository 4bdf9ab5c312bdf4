package credentialtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Limits caps what one organization may hold in a Store; a zero field is no cap.
type Limits struct {
	Credentials        int
	Workspaces         int
	WorkloadIdentities int
}

// The methods of Store whose answer LoseAnswer can lose. Update is a write without an
// event; UpdateWithEvent is Update with one.
const (
	CallInsert          = "Insert"
	CallUpdate          = "Update"
	CallUpdateWithEvent = "UpdateWithEvent"
	CallDelete          = "Delete"
	CallInsertWorkspace = "InsertWorkspace"

	CallInsertWorkloadIdentity = "InsertWorkloadIdentity"
	CallDeleteWorkloadIdentity = "DeleteWorkloadIdentity"
)

// Store is an in-memory credential.Store, credential.WorkspaceStore,
// credential.HealthStore and credential.WorkloadIdentityStore. It keeps what the Table store (internal/store) keeps and
// answers as it does: every write conditional on the ETag it was read with (a stale one
// is a *credential.ConflictError, and the write changes nothing), one partition per
// organization, names unique per organization regardless of case, a delete that leaves a
// tombstone, workspaces whose writes can check their credential in the same transaction,
// per-organization limits, transition and health logs keyed by revision, a registry of
// workload identities unique by tenant and client id with its log, and an ETag
// cleared after every write that the Table store makes as an entity group transaction
// (the caller reads again before it writes again). Each write carries a write id, so a
// write whose answer was lost (LoseAnswer) is recognised as landed when its retry fails.
// TestStore holds the two to the same contract.
type Store struct {
	limits Limits
	now    func() time.Time
	faults faults

	mu      sync.Mutex
	seq     int64
	orgs    map[string]*partition
	windows map[string]*windowRow // the open-window index, a partition of its own
	lose    map[string]int
	then    map[string]func() // LoseAnswerThen's, by call
	after   map[string][]func()
	calls   map[string]int
}

var (
	_ credential.Store          = (*Store)(nil)
	_ credential.WorkspaceStore = (*Store)(nil)
	_ credential.HealthStore    = (*Store)(nil)
	_ credential.WindowIndex    = (*Store)(nil)

	_ credential.WorkloadIdentityStore = (*Store)(nil)
)

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithLimits caps every organization's credentials, workspaces and workload identities.
func WithLimits(l Limits) StoreOption { return func(s *Store) { s.limits = l } }

// WithStoreClock stamps tombstones with now instead of the wall clock.
func WithStoreClock(now func() time.Time) StoreOption { return func(s *Store) { s.now = now } }

// NewStore returns an empty store.
func NewStore(opts ...StoreOption) *Store {
	s := &Store{now: time.Now, orgs: map[string]*partition{}, windows: map[string]*windowRow{}, lose: map[string]int{},
		then: map[string]func(){}, after: map[string][]func(){}, calls: map[string]int{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// partition is everything of one organization, as the Table store keeps it in one
// partition.
type partition struct {
	creds      map[string]*credentialRow // live credentials and tombstones, by id
	names      map[string]string         // credential id by lower-cased name
	def        *defaultRow
	events     map[string]map[int64]credential.EventRecord // by credential id, then revision
	health     map[string]map[int64]credential.HealthEvent
	workspaces map[string]*workspaceRow
	// workloads are the registered workload identities by "<tenant>:<client>", with their
	// ids' index and the registry log, in the order written.
	workloads      map[string]*workloadRow
	workloadIDs    map[string]string
	workloadEvents []workloadEventRow
	// logWrites are the write ids of the credential writes whose transaction added a log
	// row (an event or a health event), by "<credential id>/<revision>": the Table store
	// keeps the write id on the log row too.
	logWrites map[string]string
}

type workloadRow struct {
	w       *credential.WorkloadIdentity
	etag    string
	writeID string
}

type workloadEventRow struct {
	ev      credential.WorkloadIdentityEvent
	writeID string
}

type credentialRow struct {
	c       *credential.Credential        // nil for a tombstone
	tomb    *credential.DeletedCredential // set for a tombstone
	etag    string
	writeID string
}

type workspaceRow struct {
	w       *credential.Workspace
	etag    string
	writeID string
}

type defaultRow struct {
	id   string
	etag string
}

// Inject arms a Fault for one method of the store ("Get", "Delete", "UpdateWorkspace",
// ...); the zero Fault disarms it.
func (s *Store) Inject(call string, f Fault) { s.faults.inject(call, f) }

// Calls is how many times call ("Get", "FindWorkloadIdentity", ...) was made, failed ones
// included: what a cache in front of the store saves shows here.
func (s *Store) Calls(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

// FaultsLeft is how many failures of call are still to come (-1: every call).
func (s *Store) FaultsLeft(call string) int { return s.faults.left(call) }

// LoseAnswer makes the next call of a write (CallInsert, CallUpdate, ...) land and lose
// its answer: the store then tries it again, as the storage SDK retries, meets its own
// write, and recognises it by its write id.
func (s *Store) LoseAnswer(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[call]++
}

// After runs fn once, right after the next call of call has done its work and before it
// returns: a write racing the caller between its read and its next step.
func (s *Store) After(call string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after[call] = append(s.after[call], fn)
}

// PutWorkspace writes w as it is, with no condition, limit or counter: a row written by
// an earlier version (a locked workspace without a pin, say).
func (s *Store) PutWorkspace(w *credential.Workspace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org(w.OrgID).workspaces[w.ID] = &workspaceRow{w: copyWorkspace(w), etag: s.etag()}
}

// PutOrgDefault points the organization's default at id as it is, whether or not such a
// credential exists; "" removes the default.
func (s *Store) PutOrgDefault(orgID, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.org(orgID)
	if id == "" {
		p.def = nil
		return
	}
	p.def = &defaultRow{id: id, etag: s.etag()}
}

// Snapshot lists every row of every organization with its ETag, in a stable order: any
// write changes it.
func (s *Store) Snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for orgID, p := range s.orgs {
		for id, r := range p.creds {
			out = append(out, fmt.Sprintf("%s c:%s %s %+v %+v", orgID, id, r.etag, r.c, r.tomb))
		}
		for name, id := range p.names {
			out = append(out, fmt.Sprintf("%s n:%s %s", orgID, name, id))
		}
		if p.def != nil {
			out = append(out, fmt.Sprintf("%s d %s %s", orgID, p.def.id, p.def.etag))
		}
		for id, evs := range p.events {
			out = append(out, fmt.Sprintf("%s e:%s %d", orgID, id, len(evs)))
		}
		for id, evs := range p.health {
			out = append(out, fmt.Sprintf("%s h:%s %d", orgID, id, len(evs)))
		}
		for id, r := range p.workspaces {
			out = append(out, fmt.Sprintf("%s w:%s %s %+v", orgID, id, r.etag, r.w))
		}
		for key, r := range p.workloads {
			out = append(out, fmt.Sprintf("%s wi:%s %s %+v", orgID, key, r.etag, r.w))
		}
		if len(p.workloadEvents) > 0 {
			out = append(out, fmt.Sprintf("%s wie %d", orgID, len(p.workloadEvents)))
		}
	}
	for key, r := range s.windows {
		out = append(out, fmt.Sprintf("open-windows %s %s %+v", key, r.etag, r.w))
	}
	slices.Sort(out)
	return out
}

// begin starts a call of the store: it meets the fault armed for call, if any, and
// otherwise holds the store until end, which lets go of it and then runs the hooks armed
// for call.
func (s *Store) begin(call string) (end func(), err error) {
	s.mu.Lock()
	s.calls[call]++
	s.mu.Unlock()
	if err := s.faults.take(call); err != nil {
		return nil, err
	}
	s.mu.Lock()
	return func() {
		hooks := s.after[call]
		delete(s.after, call)
		s.mu.Unlock()
		for _, fn := range hooks {
			fn()
		}
	}, nil
}

// lost reports whether the answer of this call of call is to be lost; s.mu is held.
func (s *Store) lost(call string) bool {
	if s.lose[call] == 0 {
		return false
	}
	s.lose[call]--
	return true
}

// LoseAnswerThen makes the next call of a write land and lose its answer, as LoseAnswer
// does, and runs meanwhile before the store tries it again: another writer moving the row
// on between the write and its retry, say.
func (s *Store) LoseAnswerThen(call string, meanwhile func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[call]++
	s.then[call] = meanwhile
}

// attempt runs write once, and once more when its answer is to be lost (the SDK's
// retry); the retry's error stands unless landed finds the first attempt's write.
// s.mu is held (and let go while LoseAnswerThen's meanwhile runs).
func (s *Store) attempt(call string, write func() error, landed func() bool) error {
	err := write()
	if err != nil || !s.lost(call) {
		return err
	}
	if meanwhile := s.then[call]; meanwhile != nil {
		delete(s.then, call)
		s.mu.Unlock()
		meanwhile()
		s.mu.Lock()
	}
	if err := write(); err != nil && !landed() {
		return err
	}
	return nil
}

func (s *Store) org(id string) *partition {
	p := s.orgs[id]
	if p == nil {
		p = &partition{creds: map[string]*credentialRow{}, names: map[string]string{},
			events: map[string]map[int64]credential.EventRecord{}, health: map[string]map[int64]credential.HealthEvent{},
			workspaces: map[string]*workspaceRow{}, workloads: map[string]*workloadRow{}, workloadIDs: map[string]string{},
			logWrites: map[string]string{}}
		s.orgs[id] = p
	}
	return p
}

// etag returns a new ETag; s.mu is held.
func (s *Store) etag() string {
	s.seq++
	return `W/"` + strconv.FormatInt(s.seq, 10) + `"`
}

// errChanged is what a write meets when its row changed since it was read, as the Table
// store words it.
func errChanged(what string) error {
	return fmt.Errorf("%s: %w", what, &credential.ConflictError{
		Message: "the credential was changed by another request; read it again and retry"})
}

func errNotFound(what string) error { return fmt.Errorf("%s: %w", what, credential.ErrNotFound) }

// errExists is an insert that met an existing row; callers say which.
var errExists = errors.New("entity already exists")

// live counts an organization's live credentials.
func (p *partition) live() int {
	n := 0
	for _, r := range p.creds {
		if r.c != nil {
			n++
		}
	}
	return n
}

// Insert writes a new credential, its name and its creation event.
func (s *Store) Insert(ctx context.Context, c *credential.Credential, ev credential.EventRecord) error {
	end, err := s.begin("Insert")
	if err != nil {
		return err
	}
	defer end()
	c.Revision = 1
	writeID := rand.Text()
	var etag string
	write := func() error {
		p := s.org(c.OrgID)
		if l := s.limits.Credentials; l > 0 && p.live() >= l {
			return &credential.QuotaError{Quota: credential.QuotaCredentials, Limit: l}
		}
		if _, ok := p.creds[c.ID]; ok {
			return errExists
		}
		if _, ok := p.names[strings.ToLower(c.Name)]; ok {
			return errExists
		}
		etag = s.etag()
		p.creds[c.ID] = &credentialRow{c: copyCredential(c), etag: etag, writeID: writeID}
		p.names[strings.ToLower(c.Name)] = c.ID
		p.events[c.ID] = map[int64]credential.EventRecord{c.Revision: copyEvent(ev)}
		return nil
	}
	landed := func() bool {
		r := s.org(c.OrgID).creds[c.ID]
		if r != nil && r.writeID == writeID {
			etag = r.etag
			return true
		}
		return false
	}
	err = s.attempt(CallInsert, write, landed)
	if errors.Is(err, errExists) {
		return &credential.ConflictError{Message: fmt.Sprintf("a credential named %q already exists in this organization", c.Name)}
	}
	if err != nil {
		return err
	}
	c.ETag = etag
	return nil
}

// Get reads one credential; a tombstone is not found.
func (s *Store) Get(ctx context.Context, orgID, id string) (*credential.Credential, error) {
	end, err := s.begin("Get")
	if err != nil {
		return nil, err
	}
	defer end()
	r := s.org(orgID).creds[id]
	switch {
	case r == nil:
		return nil, errNotFound("get credential " + id)
	case r.c == nil:
		return nil, fmt.Errorf("get credential %s: deleted: %w", id, credential.ErrNotFound)
	}
	return s.org(orgID).read(r), nil
}

// read is the credential of a live row as a read returns it, with its org-default mark.
func (p *partition) read(r *credentialRow) *credential.Credential {
	c := copyCredential(r.c)
	c.ETag = r.etag
	c.IsOrgDefault = p.def != nil && p.def.id == c.ID
	return c
}

// Tombstone reads what remains of a deleted credential.
func (s *Store) Tombstone(ctx context.Context, orgID, id string) (*credential.DeletedCredential, error) {
	end, err := s.begin("Tombstone")
	if err != nil {
		return nil, err
	}
	defer end()
	r := s.org(orgID).creds[id]
	switch {
	case r == nil:
		return nil, errNotFound("get deleted credential " + id)
	case r.tomb == nil:
		return nil, fmt.Errorf("get deleted credential %s: it exists: %w", id, credential.ErrNotFound)
	}
	d := *r.tomb
	return &d, nil
}

// List reads an organization's credentials, oldest first.
func (s *Store) List(ctx context.Context, orgID string) ([]*credential.Credential, error) {
	end, err := s.begin("List")
	if err != nil {
		return nil, err
	}
	defer end()
	var out []*credential.Credential
	p := s.org(orgID)
	for _, r := range p.creds {
		if r.c != nil {
			out = append(out, p.read(r))
		}
	}
	slices.SortFunc(out, func(a, b *credential.Credential) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Update writes c if it is unchanged since it was read, with ev in the same transaction
// when ev is not nil, and holds the row's new ETag, as the Table service's answer names it.
func (s *Store) Update(ctx context.Context, c *credential.Credential, ev *credential.EventRecord) error {
	end, err := s.begin("Update")
	if err != nil {
		return err
	}
	defer end()
	return s.update(c, "update credential "+c.ID, func(p *partition) error {
		if ev == nil {
			return nil
		}
		if _, ok := p.events[c.ID][c.Revision]; ok {
			return errExists
		}
		if p.events[c.ID] == nil {
			p.events[c.ID] = map[int64]credential.EventRecord{}
		}
		p.events[c.ID][c.Revision] = copyEvent(*ev)
		return nil
	}, ev != nil)
}

// update writes the credential row of c, conditional on c.ETag, and runs log (which adds
// a row of a log, failing with errExists when its key is taken) in the same transaction
// when withLog. s.mu is held.
func (s *Store) update(c *credential.Credential, what string, log func(*partition) error, withLog bool) error {
	if c.ETag == "" {
		return fmt.Errorf("%s: no ETag; read it first", what)
	}
	c.Revision++
	call := CallUpdate
	if withLog {
		call = CallUpdateWithEvent
	}
	writeID := rand.Text()
	var etag string
	write := func() error {
		p := s.org(c.OrgID)
		r := p.creds[c.ID]
		switch {
		case r == nil:
			return errNotFound(what)
		case r.etag != c.ETag:
			return errChanged(what)
		}
		if withLog {
			if err := log(p); err != nil {
				return err
			}
		}
		etag = s.etag()
		p.creds[c.ID] = &credentialRow{c: copyCredential(c), etag: etag, writeID: writeID}
		if withLog {
			p.logWrites[logWriteKey(c.ID, c.Revision)] = writeID
		}
		return nil
	}
	landed := func() bool {
		p := s.org(c.OrgID)
		r := p.creds[c.ID]
		switch {
		case r != nil && r.writeID == writeID:
			etag = r.etag
			return true
		case withLog && p.logWrites[logWriteKey(c.ID, c.Revision)] == writeID:
			etag = "" // landed, and the row has moved on since: c is not the row as it is
			return true
		}
		return false
	}
	err := s.attempt(call, write, landed)
	if errors.Is(err, errExists) {
		err = errChanged(what) // another writer took this revision's log key
	}
	if err != nil {
		c.Revision--
		return err
	}
	c.ETag = etag // as a transaction's answer names it
	return nil
}

func logWriteKey(id string, revision int64) string { return id + "/" + strconv.FormatInt(revision, 10) }

// Delete replaces c by its tombstone if c is unchanged since it was read, and removes
// its name and the org default pointing at it.
func (s *Store) Delete(ctx context.Context, c *credential.Credential) error {
	end, err := s.begin("Delete")
	if err != nil {
		return err
	}
	defer end()
	what := "delete credential " + c.ID
	if c.ETag == "" {
		return fmt.Errorf("%s: no ETag; read it first", what)
	}
	writeID := rand.Text()
	write := func() error {
		p := s.org(c.OrgID)
		r := p.creds[c.ID]
		switch {
		case r == nil:
			return errNotFound(what)
		case r.etag != c.ETag:
			return errChanged(what)
		}
		if _, ok := p.names[strings.ToLower(r.c.Name)]; !ok {
			return errNotFound(what)
		}
		p.creds[c.ID] = &credentialRow{etag: s.etag(), writeID: writeID, tomb: &credential.DeletedCredential{
			OrgID: c.OrgID, ID: c.ID, Name: r.c.Name, BasePath: r.c.BasePath, App: r.c.App, DeletedAt: s.now().UTC()}}
		delete(p.names, strings.ToLower(r.c.Name))
		if p.def != nil && p.def.id == c.ID {
			p.def = nil
		}
		return nil
	}
	landed := func() bool {
		r := s.org(c.OrgID).creds[c.ID]
		return r != nil && r.tomb != nil && r.writeID == writeID
	}
	return s.attempt(CallDelete, write, landed)
}

// Events reads a credential's transition log, oldest first.
func (s *Store) Events(ctx context.Context, orgID, id string) ([]credential.EventRecord, error) {
	end, err := s.begin("Events")
	if err != nil {
		return nil, err
	}
	defer end()
	return byRevision(s.org(orgID).events[id]), nil
}

// OrgDefault returns the id of the organization's default credential, "" when none.
func (s *Store) OrgDefault(ctx context.Context, orgID string) (string, error) {
	end, err := s.begin("OrgDefault")
	if err != nil {
		return "", err
	}
	defer end()
	if d := s.org(orgID).def; d != nil {
		return d.id, nil
	}
	return "", nil
}

// SetOrgDefault points the org default at c if c is unchanged since it was read. The
// check is a write of c's row (its ETag changes) and c.ETag is cleared, as in the Table
// store's transaction, which also writes the org-default mark on c's row and on the row
// of the default it replaces: both rows' ETags move on.
func (s *Store) SetOrgDefault(ctx context.Context, c *credential.Credential) error {
	end, err := s.begin("SetOrgDefault")
	if err != nil {
		return err
	}
	defer end()
	p := s.org(c.OrgID)
	if err := s.touch(p, c, "set org default"); err != nil {
		return err
	}
	s.unmark(p, c.ID)
	p.def = &defaultRow{id: c.ID, etag: s.etag()}
	c.ETag = ""
	return nil
}

// unmark moves on the ETag of the row of the org default, unless it is keep, as the Table
// store's clearing of its mark does; s.mu is held.
func (s *Store) unmark(p *partition, keep string) {
	if p.def == nil || p.def.id == keep {
		return
	}
	if r := p.creds[p.def.id]; r != nil && r.c != nil {
		r.etag = s.etag()
	}
}

// ClearOrgDefault removes the organization's default if it points at id.
func (s *Store) ClearOrgDefault(ctx context.Context, orgID, id string) error {
	end, err := s.begin("ClearOrgDefault")
	if err != nil {
		return err
	}
	defer end()
	p := s.org(orgID)
	switch {
	case p.def == nil:
		return nil
	case p.def.id != id:
		return errChanged(fmt.Sprintf("clear org default %s (it is %s now)", id, p.def.id))
	}
	s.unmark(p, "")
	p.def = nil
	return nil
}

// touch checks that c is unchanged since it was read and moves its row's ETag on, as a
// merge of no properties does in a transaction; s.mu is held.
func (s *Store) touch(p *partition, c *credential.Credential, what string) error {
	if c.ETag == "" {
		return fmt.Errorf("%s: credential %s: no ETag; read it first", what, c.ID)
	}
	r := p.creds[c.ID]
	switch {
	case r == nil:
		return errNotFound(what)
	case r.etag != c.ETag:
		return errChanged(what)
	}
	r.etag = s.etag()
	return nil
}

// InsertWorkspace writes a new workspace, checking c (when not nil) in the same
// transaction.
func (s *Store) InsertWorkspace(ctx context.Context, w *credential.Workspace, c *credential.Credential) error {
	end, err := s.begin("InsertWorkspace")
	if err != nil {
		return err
	}
	defer end()
	writeID := rand.Text()
	write := func() error {
		p := s.org(w.OrgID)
		if _, ok := p.workspaces[w.ID]; ok {
			return errExists
		}
		if l := s.limits.Workspaces; l > 0 && len(p.workspaces) >= l {
			return &credential.QuotaError{Quota: credential.QuotaWorkspaces, Limit: l}
		}
		if err := s.checkLink(p, c, "write workspace "+w.ID); err != nil {
			return err
		}
		p.workspaces[w.ID] = &workspaceRow{w: copyWorkspace(w), etag: s.etag(), writeID: writeID}
		return nil
	}
	landed := func() bool {
		r := s.org(w.OrgID).workspaces[w.ID]
		return r != nil && r.writeID == writeID
	}
	err = s.attempt(CallInsertWorkspace, write, landed)
	if errors.Is(err, errExists) {
		return &credential.ConflictError{Message: fmt.Sprintf("workspace %q already exists", w.ID)}
	}
	if err != nil {
		return err
	}
	w.ETag = ""
	if c != nil {
		c.ETag = ""
	}
	return nil
}

// checkLink is the credential check of a workspace write: nothing when c is nil, else c
// must be unchanged since it was read. s.mu is held.
func (s *Store) checkLink(p *partition, c *credential.Credential, what string) error {
	if c == nil {
		return nil
	}
	err := s.touch(p, c, what)
	if errors.Is(err, credential.ErrNotFound) {
		return &credential.ConflictError{Message: fmt.Sprintf("credential %s was deleted meanwhile", c.ID)}
	}
	return err
}

// GetWorkspace reads one workspace.
func (s *Store) GetWorkspace(ctx context.Context, orgID, id string) (*credential.Workspace, error) {
	end, err := s.begin("GetWorkspace")
	if err != nil {
		return nil, err
	}
	defer end()
	r := s.org(orgID).workspaces[id]
	if r == nil {
		return nil, errNotFound("get workspace " + id)
	}
	return r.read(), nil
}

func (r *workspaceRow) read() *credential.Workspace {
	w := copyWorkspace(r.w)
	w.ETag = r.etag
	return w
}

// UpdateWorkspace writes w if unchanged since read, checking c (when not nil) as well.
func (s *Store) UpdateWorkspace(ctx context.Context, w *credential.Workspace, c *credential.Credential) error {
	end, err := s.begin("UpdateWorkspace")
	if err != nil {
		return err
	}
	defer end()
	what := "write workspace " + w.ID
	if w.ETag == "" {
		return fmt.Errorf("update workspace %s: no ETag; read it first", w.ID)
	}
	p := s.org(w.OrgID)
	r := p.workspaces[w.ID]
	switch {
	case r == nil && c != nil:
		return &credential.ConflictError{Message: fmt.Sprintf("credential %s was deleted meanwhile", c.ID)}
	case r == nil:
		return errNotFound(what)
	case r.etag != w.ETag:
		return errChanged(what)
	}
	if err := s.checkLink(p, c, what); err != nil {
		return err
	}
	p.workspaces[w.ID] = &workspaceRow{w: copyWorkspace(w), etag: s.etag()}
	w.ETag = ""
	if c != nil {
		c.ETag = ""
	}
	return nil
}

// UnlockedLinks reads up to max unlocked workspaces linked to credential id, in the
// order of their ids.
func (s *Store) UnlockedLinks(ctx context.Context, orgID, id string, max int) ([]*credential.Workspace, error) {
	end, err := s.begin("UnlockedLinks")
	if err != nil {
		return nil, err
	}
	defer end()
	var out []*credential.Workspace
	for _, r := range s.org(orgID).workspaces {
		if r.w.CredentialID == id && r.w.LockedAt.IsZero() {
			out = append(out, r.read())
		}
	}
	slices.SortFunc(out, func(a, b *credential.Workspace) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(len(out), max)], nil
}

// EachVerified calls fn with every verified credential of every organization, in the
// order of organization and credential id.
func (s *Store) EachVerified(ctx context.Context, fn func(*credential.Credential) error) error {
	end, err := s.begin("EachVerified")
	if err != nil {
		return err
	}
	var all []*credential.Credential
	for _, p := range s.orgs {
		for _, r := range p.creds {
			if r.c != nil && r.c.State == credential.StateVerified {
				all = append(all, p.read(r))
			}
		}
	}
	end() // fn may call the store
	slices.SortFunc(all, func(a, b *credential.Credential) int {
		return cmp.Or(cmp.Compare(a.OrgID, b.OrgID), cmp.Compare(a.ID, b.ID))
	})
	for _, c := range all {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// UpdateHealth writes c if it is unchanged since it was read, with ev in its health log
// in the same transaction when ev is not nil, and holds the row's new ETag.
func (s *Store) UpdateHealth(ctx context.Context, c *credential.Credential, ev *credential.HealthEvent) error {
	end, err := s.begin("UpdateHealth")
	if err != nil {
		return err
	}
	defer end()
	return s.update(c, "update health of credential "+c.ID, func(p *partition) error {
		if _, ok := p.health[c.ID][c.Revision]; ok {
			return errExists
		}
		if p.health[c.ID] == nil {
			p.health[c.ID] = map[int64]credential.HealthEvent{}
		}
		e := *ev
		e.Time = e.Time.UTC()
		p.health[c.ID][c.Revision] = e
		return nil
	}, ev != nil)
}

// HealthEvents reads a credential's health log, oldest first.
func (s *Store) HealthEvents(ctx context.Context, orgID, id string) ([]credential.HealthEvent, error) {
	end, err := s.begin("HealthEvents")
	if err != nil {
		return nil, err
	}
	defer end()
	return byRevision(s.org(orgID).health[id]), nil
}

func byRevision[E any](log map[int64]E) []E {
	revs := make([]int64, 0, len(log))
	for r := range log {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	var out []E
	for _, r := range revs {
		out = append(out, log[r])
	}
	return out
}

// copyCredential is c as the Table store would read it back: its own copy, times in UTC,
// empty lists as nil, no health before the first check, no ETag nor org-default mark (a
// read adds both).
func copyCredential(c *credential.Credential) *credential.Credential {
	out := *c
	out.ETag, out.IsOrgDefault = "", false
	for _, t := range []*time.Time{&out.CreatedAt, &out.UpdatedAt, &out.VerifiedAt, &out.Progress.StartedAt,
		&out.Progress.Deadline, &out.Progress.GraceUntil, &out.Health.CheckedAt, &out.Health.Since} {
		*t = t.UTC()
	}
	out.Progress.Checks = copyChecks(c.Progress.Checks)
	if out.Health.Status == "" && out.Health.CheckedAt.IsZero() {
		out.Health = credential.Health{}
	}
	out.Health.Checks = copyChecks(out.Health.Checks)
	return &out
}

func copyChecks(cs []credential.Check) []credential.Check {
	if len(cs) == 0 {
		return nil
	}
	return slices.Clone(cs)
}

func copyWorkspace(w *credential.Workspace) *credential.Workspace {
	out := *w
	out.ETag = ""
	out.LockedAt, out.CreatedAt, out.UpdatedAt = out.LockedAt.UTC(), out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return &out
}

func copyEvent(ev credential.EventRecord) credential.EventRecord {
	ev.Time = ev.Time.UTC()
	return ev
}

// workloadKey is the key of a registration: its tenant and client id.
func workloadKey(tenantID, clientID string) string { return tenantID + ":" + clientID }

// InsertWorkloadIdentity writes a new registration and its event.
func (s *Store) InsertWorkloadIdentity(ctx context.Context, w *credential.WorkloadIdentity, ev credential.WorkloadIdentityEvent) error {
	end, err := s.begin("InsertWorkloadIdentity")
	if err != nil {
		return err
	}
	defer end()
	key := workloadKey(w.TenantID, w.ClientID)
	writeID := rand.Text()
	write := func() error {
		p := s.org(w.OrgID)
		if _, ok := p.workloads[key]; ok {
			return errExists
		}
		if l := s.limits.WorkloadIdentities; l > 0 && len(p.workloads) >= l {
			return &credential.QuotaError{Quota: credential.QuotaWorkloadIdentities, Limit: l}
		}
		p.workloads[key] = &workloadRow{w: copyWorkload(w), etag: s.etag(), writeID: writeID}
		p.workloadIDs[w.ID] = key
		p.workloadEvents = append(p.workloadEvents, workloadEventRow{ev: copyWorkloadEvent(ev), writeID: writeID})
		return nil
	}
	landed := func() bool {
		r := s.org(w.OrgID).workloads[key]
		return r != nil && r.writeID == writeID
	}
	err = s.attempt(CallInsertWorkloadIdentity, write, landed)
	if errors.Is(err, errExists) {
		return credential.WorkloadIdentityConflict(w.TenantID, w.ClientID)
	}
	if err != nil {
		return err
	}
	w.ETag = "" // a transaction answers no ETag
	return nil
}

func (r *workloadRow) read() *credential.WorkloadIdentity {
	w := copyWorkload(r.w)
	w.ETag = r.etag
	return w
}

// FindWorkloadIdentity reads the registration of a tenant and client id.
func (s *Store) FindWorkloadIdentity(ctx context.Context, orgID, tenantID, clientID string) (*credential.WorkloadIdentity, error) {
	end, err := s.begin("FindWorkloadIdentity")
	if err != nil {
		return nil, err
	}
	defer end()
	r := s.org(orgID).workloads[workloadKey(tenantID, clientID)]
	if r == nil {
		return nil, errNotFound("find workload identity " + clientID)
	}
	return r.read(), nil
}

// GetWorkloadIdentity reads a registration by id.
func (s *Store) GetWorkloadIdentity(ctx context.Context, orgID, id string) (*credential.WorkloadIdentity, error) {
	end, err := s.begin("GetWorkloadIdentity")
	if err != nil {
		return nil, err
	}
	defer end()
	p := s.org(orgID)
	r := p.workloads[p.workloadIDs[id]]
	if r == nil {
		return nil, errNotFound("get workload identity " + id)
	}
	return r.read(), nil
}

// ListWorkloadIdentities reads an organization's registrations, oldest first.
func (s *Store) ListWorkloadIdentities(ctx context.Context, orgID string) ([]*credential.WorkloadIdentity, error) {
	end, err := s.begin("ListWorkloadIdentities")
	if err != nil {
		return nil, err
	}
	defer end()
	var out []*credential.WorkloadIdentity
	for _, r := range s.org(orgID).workloads {
		out = append(out, r.read())
	}
	slices.SortFunc(out, func(a, b *credential.WorkloadIdentity) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteWorkloadIdentity removes w if it is unchanged since it was read, with its event.
func (s *Store) DeleteWorkloadIdentity(ctx context.Context, w *credential.WorkloadIdentity, ev credential.WorkloadIdentityEvent) error {
	end, err := s.begin("DeleteWorkloadIdentity")
	if err != nil {
		return err
	}
	defer end()
	what := "delete workload identity " + w.ID
	if w.ETag == "" {
		return fmt.Errorf("%s: no ETag; read it first", what)
	}
	key := workloadKey(w.TenantID, w.ClientID)
	writeID := rand.Text()
	write := func() error {
		p := s.org(w.OrgID)
		r := p.workloads[key]
		switch {
		case r == nil:
			return errNotFound(what)
		case r.etag != w.ETag:
			return errChanged(what)
		}
		delete(p.workloads, key)
		delete(p.workloadIDs, r.w.ID)
		p.workloadEvents = append(p.workloadEvents, workloadEventRow{ev: copyWorkloadEvent(ev), writeID: writeID})
		return nil
	}
	landed := func() bool {
		return slices.ContainsFunc(s.org(w.OrgID).workloadEvents, func(e workloadEventRow) bool { return e.writeID == writeID })
	}
	return s.attempt(CallDeleteWorkloadIdentity, write, landed)
}

// WorkloadIdentityEvents reads an organization's registry log, oldest first.
func (s *Store) WorkloadIdentityEvents(ctx context.Context, orgID string) ([]credential.WorkloadIdentityEvent, error) {
	end, err := s.begin("WorkloadIdentityEvents")
	if err != nil {
		return nil, err
	}
	defer end()
	var out []credential.WorkloadIdentityEvent
	for _, e := range s.org(orgID).workloadEvents {
		out = append(out, e.ev)
	}
	return out, nil
}

func copyWorkload(w *credential.WorkloadIdentity) *credential.WorkloadIdentity {
	out := *w
	out.ETag = ""
	out.CreatedAt = out.CreatedAt.UTC()
	return &out
}

func copyWorkloadEvent(ev credential.WorkloadIdentityEvent) credential.WorkloadIdentityEvent {
	ev.Time = ev.Time.UTC()
	return ev
}
