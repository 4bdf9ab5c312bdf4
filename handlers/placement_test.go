package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

func (h *harness) setDefault(id string) {
	h.t.Helper()
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": id}), http.StatusOK)
}

// wantCreds asks for a table's SAS and checks the storage it names: credential id ("" for
// the environment default) and path prefix.
func (h *harness) wantCreds(ws, table, credentialID, pathPrefix string) {
	h.t.Helper()
	v, r := h.creds(org, ws, table)
	h.want(r, http.StatusOK)
	got := ""
	if v.CredentialID != nil {
		got = *v.CredentialID
	}
	if got != credentialID || v.PathPrefix != pathPrefix {
		h.t.Fatalf("%s/%s: credential %q prefix %q, want %q %q (%+v)", ws, table, got, v.PathPrefix, credentialID, pathPrefix, v)
	}
}

func (h *harness) wantPin(ws, source, credentialID string) {
	h.t.Helper()
	v := h.workspace(org, ws)
	if v.Pin == nil || v.Pin.Source != source || (credentialID == "") != (v.Pin.CredentialID == nil) ||
		(v.Pin.CredentialID != nil && *v.Pin.CredentialID != credentialID) {
		h.t.Fatalf("%s: pin %+v, want %s %q", ws, v.Pin, source, credentialID)
	}
}

// TestPinsHoldWhateverTheDefault: a workspace locks on what it resolved to at its first
// table and stays there: the environment default when the organization had no default,
// the default of that moment otherwise. Setting, moving or removing the org default
// afterwards, or pointing it at a credential that no longer exists, moves neither.
func TestPinsHoldWhateverTheDefault(t *testing.T) {
	h := newHarness(t)
	x := h.verified(org, "x", "az://acctx/lake")
	y := h.verified(org, "y", "az://accty/lake")

	h.wantCreds("ws-env", "t1", "", "lake/"+org+"/ws-env/t1/")
	h.wantPin("ws-env", "environment_default", "")
	h.setDefault(x.ID)
	h.wantCreds("ws-x", "t1", x.ID, org+"/ws-x/t1/")
	h.wantPin("ws-x", "org_default", x.ID)
	h.wantCreds("ws-env", "t2", "", "lake/"+org+"/ws-env/t2/")

	h.setDefault(y.ID)
	h.wantCreds("ws-x", "t2", x.ID, org+"/ws-x/t2/")
	h.wantCreds("ws-env", "t3", "", "lake/"+org+"/ws-env/t3/")
	h.wantCreds("ws-free", "t1", y.ID, org+"/ws-free/t1/") // a new workspace follows the default of the moment

	// No default at all (the wizard's toggle switched off), then a default row naming a
	// credential that does not exist: locked workspaces never read it.
	r := h.call("DELETE", org, "/organizations/"+org+"/credential", nil)
	h.want(r, http.StatusNoContent)
	h.wantCreds("ws-x", "t3", x.ID, org+"/ws-x/t3/")
	h.wantCreds("ws-env", "t4", "", "lake/"+org+"/ws-env/t4/")
	h.wantCreds("ws-new", "t1", "", "lake/"+org+"/ws-new/t1/")
	h.store.PutOrgDefault(org, uuid.NewString())
	h.wantCreds("ws-x", "t4", x.ID, org+"/ws-x/t4/")
	h.wantCreds("ws-env", "t5", "", "lake/"+org+"/ws-env/t5/")
	h.wantPin("ws-x", "org_default", x.ID)
	h.wantPin("ws-env", "environment_default", "")
	if v := h.workspace(org, "ws-x"); v.Effective.Source != "workspace" || *v.Effective.CredentialID != x.ID {
		t.Fatalf("ws-x effective %+v", v.Effective)
	}
	if v := h.workspace(org, "ws-env"); v.Effective.Source != "environment_default" || v.CredentialID != nil {
		t.Fatalf("ws-env %+v", v)
	}
}

// TestRowsLockedBeforePins: workspace rows written before pins were recorded (locked, no
// Pin column) are pinned to their credential when they have one, else to the environment
// default; an org default changes neither.
func TestRowsLockedBeforePins(t *testing.T) {
	h := newHarness(t)
	x := h.verified(org, "x", "az://acctx/lake")
	y := h.verified(org, "y", "az://accty/lake")
	h.setDefault(y.ID)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for ws, link := range map[string]string{"old-linked": x.ID, "old-env": ""} {
		h.store.PutWorkspace(&credential.Workspace{OrgID: org, ID: ws, CredentialID: link, FirstTable: "t0", LockedAt: at, CreatedAt: at, UpdatedAt: at})
	}
	h.wantPin("old-linked", "workspace", x.ID)
	h.wantPin("old-env", "environment_default", "")
	h.wantCreds("old-linked", "t1", x.ID, org+"/old-linked/t1/")
	h.wantCreds("old-env", "t1", "", "lake/"+org+"/old-env/t1/")
}

// TestRepointAfterDelete: a locked workspace whose credential was deleted can be
// re-pointed to another usable credential of the organization with the same account,
// container and prefix, and to nothing else; while its credential exists, and after the
// re-point, its link is locked as usual.
func TestRepointAfterDelete(t *testing.T) {
	h := newHarness(t)
	x := h.verified(org, "x", "az://acctx/box/p")
	same := h.verified(org, "same", "az://acctx/box/p")
	otherPrefix := h.verified(org, "other-prefix", "az://acctx/box/q")
	otherAccount := h.verified(org, "other-account", "az://accty/box/p")
	draft := h.create(org, "draft", "az://acctx/box/p")
	path := "/organizations/" + org + "/workspaces/ws/credential"
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": x.ID}), http.StatusCreated)
	h.wantCreds("ws", "t1", x.ID, "p/"+org+"/ws/t1/")

	locked := func(body any, method string, wants ...string) {
		t.Helper()
		r := h.call(method, org, path, body)
		h.want(r, http.StatusBadRequest)
		e := r.errorBody(t)
		if e.Code != "workspace_locked" {
			t.Fatalf("%s %v: %+v", method, body, e)
		}
		for _, w := range wants {
			if !strings.Contains(e.Message, w) {
				t.Fatalf("%s %v: message %q does not say %q", method, body, e.Message, w)
			}
		}
	}
	// While x exists: locked as always, even for a credential with the same location.
	locked(map[string]string{"credential_id": same.ID}, "PUT", "first was \"t1\"", "unreachable")

	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+x.ID, nil), http.StatusNoContent)
	locked(map[string]string{"credential_id": otherPrefix.ID}, "PUT", x.ID, "az://acctx/box/p", otherPrefix.ID, "az://acctx/box/q", "same account, container and prefix")
	locked(map[string]string{"credential_id": otherAccount.ID}, "PUT", "az://accty/box/p")
	locked(nil, "DELETE", x.ID, "az://acctx/box/p", "Re-point")
	h.want(h.call("PUT", org, path, map[string]string{"credential_id": draft.ID}), http.StatusConflict)
	h.want(h.call("PUT", org, path, map[string]string{"credential_id": uuid.NewString()}), http.StatusNotFound)
	_, r := h.creds(org, "ws", "t2")
	h.want(r, http.StatusConflict)

	r = h.call("PUT", org, path, map[string]string{"credential_id": same.ID})
	h.want(r, http.StatusOK)
	var v workspaceView
	r.decode(t, &v)
	if *v.CredentialID != same.ID || v.Effective.CredentialDeleted || *v.Effective.CredentialID != same.ID || v.Pin.Source != "workspace" {
		t.Fatalf("after the re-point: %+v", v)
	}
	h.wantCreds("ws", "t2", same.ID, "p/"+org+"/ws/t2/")
	if got := h.signer.Last(); got.Account != "acctx" || got.Container != "box" {
		t.Fatalf("SAS request after the re-point: %+v", got)
	}
	// Re-pointed, the link is locked like any other.
	locked(map[string]string{"credential_id": otherPrefix.ID}, "PUT", "first was \"t1\"")

	// A workspace pinned to the environment default has no credential to re-point.
	h.wantCreds("ws-env", "t1", "", "lake/"+org+"/ws-env/t1/")
	r = h.call("PUT", org, "/organizations/"+org+"/workspaces/ws-env/credential", map[string]string{"credential_id": same.ID})
	h.want(r, http.StatusBadRequest)
}

// countingScheduler fails the schedule numbered failAt (counting from 1 after it is armed).
type countingScheduler struct {
	credential.Scheduler
	calls, failAt atomic.Int64
}

func (s *countingScheduler) Schedule(ctx context.Context, job credential.Job, delay time.Duration) error {
	if n := s.calls.Add(1); n == s.failAt.Load() {
		return errors.Join(credential.ErrUnavailable, errors.New("the worker died before it queued the next page"))
	}
	return s.Scheduler.Schedule(ctx, job, delay)
}

// failingWorkspaces fails the workspace write numbered failAt (counting from 1 after it
// is armed).
type failingWorkspaces struct {
	credential.WorkspaceStore
	updates, failAt atomic.Int64
}

func (f *failingWorkspaces) UpdateWorkspace(ctx context.Context, w *credential.Workspace, c *credential.Credential) error {
	if n := f.updates.Add(1); n == f.failAt.Load() {
		return errors.Join(credential.ErrUnavailable, errors.New("the worker died half-way through a page"))
	}
	return f.WorkspaceStore.UpdateWorkspace(ctx, w, c)
}

// TestDeleteWithManyLinkedWorkspaces: a credential linked by 250 workspaces, 100 of them
// locked, is deleted in one request. The unlocked ones fall back to the org default at
// once and the locked ones answer 409 credential_deleted; the clean-up job clears the
// stored links a page at a time and then deletes the app. The job dies twice (between
// two pages, and half-way through one): every workspace reads the same throughout, and
// retries of the same job finish the work.
func TestDeleteWithManyLinkedWorkspaces(t *testing.T) {
	const total, locked = 250, 100
	sched := &countingScheduler{}
	wss := &failingWorkspaces{}
	h := newHarnessWith(t, credentialtest.Limits{}, func(p *credentialtest.Ports) {
		sched.Scheduler, p.Scheduler = p.Scheduler, sched
		wss.WorkspaceStore, p.Workspaces = p.Workspaces, wss
	})
	ctx := context.Background()
	x := h.verified(org, "x", "az://acctx/box/p")
	def := h.verified(org, "def", "az://acctdef/lake")
	name := func(i int) string { return fmt.Sprintf("ws-%03d", i) }
	for i := range total {
		h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": name(i), "credential_id": x.ID}), http.StatusCreated)
		if i < locked {
			h.wantCreds(name(i), "t", x.ID, "p/"+org+"/"+name(i)+"/t/")
		}
	}
	h.setDefault(def.ID)

	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+x.ID, nil), http.StatusNoContent)
	views := func() map[string]workspaceView {
		out := map[string]workspaceView{}
		for i := range total {
			out[name(i)] = h.workspace(org, name(i))
		}
		return out
	}
	want := views()
	for i := range total {
		v := want[name(i)]
		if i < locked && (!v.Effective.CredentialDeleted || *v.CredentialID != x.ID) {
			t.Fatalf("locked %s after the delete: %+v", name(i), v)
		}
		if i >= locked && (v.CredentialID != nil || v.Effective.Source != "org_default" || *v.Effective.CredentialID != def.ID) {
			t.Fatalf("unlocked %s after the delete: %+v", name(i), v)
		}
	}
	same := func(when string) {
		t.Helper()
		if diff := cmp.Diff(want, views()); diff != "" {
			t.Fatalf("%s, the workspaces read differently (-before +now):\n%s", when, diff)
		}
	}
	stored := func() (links int) {
		t.Helper()
		for i := range total {
			w, err := h.store.GetWorkspace(ctx, org, name(i))
			if err != nil {
				t.Fatal(err)
			}
			if w.CredentialID == x.ID {
				links++
			}
		}
		return links
	}
	jobs := h.jobs(credential.JobAppCleanup)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	job := jobs[0]
	appLeft := func() bool {
		_, ok := h.dir.AppByName(credential.UniqueAppName(x.ID))
		return ok
	}

	// First run: one page cleared, then it dies before queueing the next.
	sched.calls.Store(0)
	sched.failAt.Store(1)
	if err := h.domain.Runner.Run(ctx, job); err == nil {
		t.Fatal("the first run did not fail")
	}
	if n := stored(); n != total-credential.UnlinkPageSize {
		t.Fatalf("after one page %d stored links, want %d", n, total-credential.UnlinkPageSize)
	}
	if !appLeft() {
		t.Fatal("the app went before the links")
	}
	same("after a run that died between pages")

	// The retry dies half-way through the next page.
	wss.updates.Store(0)
	wss.failAt.Store(20)
	if err := h.domain.Runner.Run(ctx, job); err == nil {
		t.Fatal("the second run did not fail")
	}
	if n := stored(); n != total-credential.UnlinkPageSize-19 {
		t.Fatalf("after a page and a half %d stored links, want %d", n, total-credential.UnlinkPageSize-19)
	}
	same("after a run that died half-way through a page")

	// The next retry finishes: the rest of the links, then the app.
	if err := h.domain.Runner.Run(ctx, job); err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != locked {
		t.Fatalf("after the clean-up %d stored links, want the %d locked ones", n, locked)
	}
	if appLeft() {
		t.Fatal("the app is left after the clean-up")
	}
	if left := h.jobs(credential.JobAppCleanup); len(left) != 0 {
		t.Fatalf("follow-up jobs after the last page: %+v", left)
	}
	same("after the clean-up")

	for i := range total {
		if i >= locked {
			h.wantCreds(name(i), "t", def.ID, org+"/"+name(i)+"/t/")
			continue
		}
		_, r := h.creds(org, name(i), "t")
		h.want(r, http.StatusConflict)
		if e := r.errorBody(t); e.Code != "credential_deleted" || !strings.Contains(e.Message, x.ID) || !strings.Contains(e.Message, `"x"`) {
			t.Fatalf("locked %s: %+v", name(i), e)
		}
	}
	// A second delete of the deleted credential: 404, like any missing credential.
	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+x.ID, nil), http.StatusNotFound)
}

// TestCachedResolutionOfADeletedCredential: another instance that cached a locked
// workspace's resolution before the credential was deleted serves that same storage for
// at most its TTL, then answers credential_deleted; it never falls back to other storage.
func TestCachedResolutionOfADeletedCredential(t *testing.T) {
	h := newHarness(t)
	x := h.verified(org, "x", "az://acctx/box")
	def := h.verified(org, "def", "az://acctdef/lake")
	h.setDefault(def.ID)
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": x.ID}), http.StatusCreated)
	cfg := h.cfg
	cfg.ResolutionCacheTTL = time.Minute
	other := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: h.ports, Now: h.clock.Now})
	ctx := context.Background()
	issue := func() (*credential.Issued, error) { return other.Issuance.IssueSAS(ctx, org, "ws", "t", "req") }
	if is, err := issue(); err != nil || is.Credential.ID != x.ID {
		t.Fatalf("before the delete: %+v, %v", is, err)
	}
	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+x.ID, nil), http.StatusNoContent)
	if is, err := issue(); err != nil || is.Account != "acctx" {
		t.Fatalf("within the TTL: %+v, %v; want the cached storage of x", is, err)
	}
	h.clock.Advance(time.Minute)
	var de *credential.CredentialDeletedError
	if is, err := issue(); !errors.As(err, &de) || de.Deleted.ID != x.ID {
		t.Fatalf("after the TTL: %+v, %v; want credential_deleted", is, err)
	}
}

// hookedWorkspaces runs afterRead once, right after the clean-up's read of a page.
type hookedWorkspaces struct {
	credential.WorkspaceStore
	afterRead func()
}

func (h *hookedWorkspaces) UnlockedLinks(ctx context.Context, orgID, credentialID string, max int) ([]*credential.Workspace, error) {
	ws, err := h.WorkspaceStore.UnlockedLinks(ctx, orgID, credentialID, max)
	if f := h.afterRead; f != nil {
		h.afterRead = nil
		f()
	}
	return ws, err
}

// TestCleanUpRacesALock: a workspace of the page locks (on its fallback) between the
// clean-up's read and its write. The clean-up's write, conditional on the row it read,
// loses; the lock stands, and the job looks again before it deletes the app.
func TestCleanUpRacesALock(t *testing.T) {
	hooked := &hookedWorkspaces{}
	h := newHarnessWith(t, credentialtest.Limits{}, func(p *credentialtest.Ports) { hooked.WorkspaceStore, p.Workspaces = p.Workspaces, hooked })
	x := h.verified(org, "x", "az://acctx/box")
	def := h.verified(org, "def", "az://acctdef/lake")
	for _, ws := range []string{"ws-race", "ws-calm"} {
		h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": ws, "credential_id": x.ID}), http.StatusCreated)
	}
	h.setDefault(def.ID)
	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+x.ID, nil), http.StatusNoContent)
	hooked.afterRead = func() { h.wantCreds("ws-race", "t", def.ID, org+"/ws-race/t/") }
	jobs := h.jobs(credential.JobAppCleanup)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	if err := h.domain.Runner.Run(context.Background(), jobs[0]); err != nil {
		t.Fatal(err)
	}
	h.wantPin("ws-race", "org_default", def.ID)
	if v := h.workspace(org, "ws-calm"); v.CredentialID != nil {
		t.Fatalf("ws-calm: %+v", v)
	}
	again := h.jobs(credential.JobAppCleanup)
	if len(again) != 1 {
		t.Fatalf("after a lost write the job did not look again: %+v", again)
	}
	if _, ok := h.dir.AppByName(credential.UniqueAppName(x.ID)); !ok {
		t.Fatal("the app went while a link might remain")
	}
	if err := h.domain.Runner.Run(context.Background(), again[0]); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.dir.AppByName(credential.UniqueAppName(x.ID)); ok {
		t.Fatal("the app is left after the clean-up")
	}
	h.wantCreds("ws-race", "t2", def.ID, org+"/ws-race/t2/")
}
