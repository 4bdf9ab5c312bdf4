package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStack plays the handler's API and the stand-in's control endpoints for
// RunOnboarding: each credential moves one step per detail read; the credentials whose
// names end in noSP or noAccess fail their service principal window or their access probe,
// and the detail of those ending in broken answers 500.
type fakeStack struct {
	noSP, noAccess, broken string

	mu    sync.Mutex
	creds map[string]*fakeCred
	// calls is every API request in order ("GET detail", "GET list", ...), with the
	// moment RunOnboarding reported the wizards finished ("finished").
	calls []string
	// late are detail reads of credentials whose wizard should have stopped.
	late []string
}

type fakeCred struct {
	id, state             string
	created, verified     time.Time
	reads, storageSubmits int
	tenantAt, storageAt   time.Time
	ended                 bool
}

func newFakeStack(t *testing.T, noSP, noAccess string) (*fakeStack, *httptest.Server) {
	f := &fakeStack{noSP: noSP, noAccess: noAccess, creds: map[string]*fakeCred{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeStack) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeStack) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if parts[0] == "control" {
		switch {
		case strings.HasSuffix(r.URL.Path, "/containers"):
			reply(http.StatusCreated, map[string]string{})
		case strings.HasSuffix(r.URL.Path, "/servicePrincipals"):
			reply(http.StatusCreated, map[string]string{"id": "sp"})
		case strings.HasSuffix(r.URL.Path, "/roleAssignments"):
			reply(http.StatusCreated, map[string]string{"name": "ra"})
		default:
			http.NotFound(w, r)
		}
		return
	}
	if r.Header.Get("Authorization") != "Bearer tok" || len(parts) < 3 || parts[0] != "organizations" || parts[1] != "org" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if len(parts) == 3 { // the list, or a create
		if r.Method == http.MethodPost {
			f.calls = append(f.calls, "POST create")
			var in struct{ Name string }
			_ = json.NewDecoder(r.Body).Decode(&in)
			c := &fakeCred{id: in.Name, state: "draft", created: now}
			f.creds[c.id] = c
			reply(http.StatusCreated, map[string]any{"id": c.id, "state": c.state, "azure": map[string]string{"app_id": "app-" + c.id}})
			return
		}
		f.calls = append(f.calls, "GET list")
		var list []map[string]any
		for _, c := range f.creds {
			list = append(list, map[string]any{"id": c.id, "state": c.state})
		}
		reply(http.StatusOK, map[string]any{"credentials": list})
		return
	}
	c := f.creds[parts[3]]
	if c == nil {
		http.NotFound(w, r)
		return
	}
	step := ""
	if len(parts) == 5 {
		step = parts[4]
	}
	f.calls = append(f.calls, r.Method+" "+map[string]string{"": "detail"}[step]+step)
	switch {
	case r.Method == http.MethodPost && step == "tenant":
		c.state, c.tenantAt = "sp_pending", now
		reply(http.StatusAccepted, map[string]string{"id": c.id, "state": c.state})
	case r.Method == http.MethodPost && step == "storage":
		if c.state != "sp_verified" {
			reply(http.StatusConflict, map[string]string{"state": c.state})
			return
		}
		c.storageSubmits++
		c.state, c.storageAt = "access_pending", now
		reply(http.StatusAccepted, map[string]string{"id": c.id, "state": c.state})
	case r.Method == http.MethodGet && step == "events":
		reply(http.StatusOK, map[string]any{"events": []map[string]any{
			{"time": c.tenantAt, "to": "sp_pending"}, {"time": c.tenantAt.Add(time.Millisecond), "to": "sp_verified"},
			{"time": c.storageAt, "to": "access_pending"}, {"time": c.storageAt.Add(2 * time.Millisecond), "to": "verified"}}})
	case r.Method == http.MethodGet && step == "" && f.broken != "" && strings.HasSuffix(c.id, f.broken):
		c.reads++
		http.Error(w, "broken", http.StatusInternalServerError)
	case r.Method == http.MethodGet && step == "":
		if c.ended {
			f.late = append(f.late, c.id)
		}
		c.reads++
		// One step per read: the window's job has run by the next read.
		switch {
		case c.state == "sp_pending" && c.reads >= 2 && strings.HasSuffix(c.id, f.noSP):
			c.state = "draft"
		case c.state == "sp_pending" && c.reads >= 2:
			c.state = "sp_verified"
		case c.state == "access_pending" && strings.HasSuffix(c.id, f.noAccess):
			c.state = "sp_verified"
		case c.state == "access_pending":
			c.state, c.verified = "verified", now
		}
		c.ended = c.state == "verified" || c.state == "draft" || (c.state == "sp_verified" && c.storageSubmits > 0)
		out := map[string]any{"id": c.id, "state": c.state, "created_at": c.created}
		if !c.verified.IsZero() {
			out["verified_at"] = c.verified
		}
		reply(http.StatusOK, out)
	default:
		http.NotFound(w, r)
	}
}

// TestRunOnboardingWizardReadsDetail: each onboarding's wizard reads its own credential's
// detail every Poll while a window is open (never the list), submits the storage form
// once it shows sp_verified, and stops at verified, at draft and at a failed probe; the
// list is read once, after Finished.
func TestRunOnboardingWizardReadsDetail(t *testing.T) {
	const n = 12
	// RunOnboarding names the credentials load-<run>-<index, five digits>.
	f, srv := newFakeStack(t, "-00003", "-00007")

	res, err := RunOnboarding(t.Context(), OnboardingConfig{APIURL: srv.URL, ControlURL: srv.URL + "/control", Org: "org", Token: "tok",
		Credentials: n, Concurrency: 4, TenantID: "t", SubscriptionID: "s", ResourceGroup: "rg", Account: "a",
		Poll: 10 * time.Millisecond, Timeout: time.Minute, Finished: func() { f.record("finished") }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != n-2 || res.Failed != 2 || res.Errors != 0 || len(res.VerifiedIDs) != n-2 {
		t.Fatalf("verified %d, failed %d, errors %d (%s)", res.Verified, res.Failed, res.Errors, res.ErrorSample)
	}
	if want := map[string]int{"verified": n - 2, "draft": 1, "sp_verified": 1}; fmt.Sprint(res.FinalStates) != fmt.Sprint(want) {
		t.Errorf("final states %v, want %v", res.FinalStates, want)
	}
	// Reads see: sp_pending, sp_verified (the storage form goes), verified; without a
	// service principal sp_pending, draft; with a failed probe sp_pending, sp_verified,
	// sp_verified again.
	if want := (n-2)*3 + 2 + 3; res.DetailReads != want {
		t.Errorf("detail reads %d, want %d", res.DetailReads, want)
	}
	if res.Lists != 1 || res.ListMisses != 0 || res.ToVerified.N != n-2 || res.Probe.N != n-2 {
		t.Errorf("lists %d (misses %d), to verified %+v, probe %+v", res.Lists, res.ListMisses, res.ToVerified, res.Probe)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	finished := -1
	for i, c := range f.calls {
		switch c {
		case "finished":
			finished = i
		case "GET list", "GET events":
			if finished < 0 {
				t.Errorf("call %d, %s, before the wizards finished", i, c)
			}
		case "GET detail", "POST storage":
			if finished >= 0 {
				t.Errorf("call %d, %s, after the wizards finished", i, c)
			}
		}
	}
	if len(f.late) > 0 {
		t.Errorf("detail reads after the credential's wizard should have stopped: %v", f.late)
	}
	for id, c := range f.creds {
		want := 1
		if strings.HasSuffix(id, f.noSP) {
			want = 0
		}
		if c.storageSubmits != want {
			t.Errorf("%s: %d storage submits, want %d", id, c.storageSubmits, want)
		}
	}
}

// TestRunOnboardingWizardGivesUp: a wizard whose reads keep failing stops after
// maxReadFailures of them in a row, and the run ends without reaching its timeout.
func TestRunOnboardingWizardGivesUp(t *testing.T) {
	f, srv := newFakeStack(t, "none", "none")
	f.broken = "-00001"
	// A wizard that never gave up would hold the run until its timeout, an error.
	res, err := RunOnboarding(t.Context(), OnboardingConfig{APIURL: srv.URL, ControlURL: srv.URL + "/control", Org: "org", Token: "tok",
		Credentials: 3, Concurrency: 2, TenantID: "t", SubscriptionID: "s", ResourceGroup: "rg", Account: "a",
		Poll: 10 * time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != 2 || res.Failed != 1 || res.Errors != maxReadFailures || !strings.Contains(res.ErrorSample, "HTTP 500") {
		t.Errorf("verified %d, failed %d, errors %d (%s)", res.Verified, res.Failed, res.Errors, res.ErrorSample)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.creds {
		if strings.HasSuffix(id, f.broken) && c.reads != maxReadFailures {
			t.Errorf("%s: %d reads, want %d", id, c.reads, maxReadFailures)
		}
	}
}
