package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/stack"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// peer starts a second handler on h's storage (table and queues) and settings, as a
// second instance of the backend: its own caches, the same rows. settings (KEY=VALUE)
// override h's.
func (h *handler) peer(t testing.TB, settings ...string) *handler {
	t.Helper()
	addr := freeAddr(t)
	base := h.env
	p := &handler{signing: h.signing, queuePrefix: h.queuePrefix, instances: []*instance{{addr: addr, url: "http://" + addr}},
		// The last of duplicate keys wins (os/exec).
		env: func(listen string) []string { return append(base(listen), settings...) }}
	p.restart(t)
	return p
}

// status is the HTTP status of an API error; 0 for none, -1 for an error of another kind.
func status(err error) int {
	var e *walkthrough.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Status
	}
	return -1
}

// workloadAPI is the API as a workload calls it: with the identity's token, for org.
func workloadAPI(h *handler, org, token string) *walkthrough.API {
	return &walkthrough.API{BaseURL: h.url, Org: org, Token: token}
}

// TestWorkloadIdentity: a customer's managed identity, registered with an organization,
// calls the real binary with the token the stand-in's identity endpoint issues it: it
// reads the organization's credentials and gets a SAS from /creds that works, and its
// actions name it as the actor. Entra refuses that token until the customer installed the
// API in their tenant (AADSTS500011). The token with another organization's header, a
// token of an unregistered identity or of the same client id from another tenant are 403;
// a v1.0 token, an expired one, one for another audience or signed by an unknown key are
// 401. A workload identity cannot register another. A removed identity is refused at once
// by the instance that removed it and within the cache TTL by another.
func TestWorkloadIdentity(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.workloadCacheTTL = 3 * time.Second
	h := startHandler(t, env, si, s)
	ctx := context.Background()
	warmUp(t, h)
	user := h.api(t)
	customer := si.customer

	mi, err := customer.CreateManagedIdentity(ctx, tenantA, "job-"+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	// Before the customer installs the API's service principal, Entra refuses the request.
	_, err = customer.WorkloadToken(ctx, stack.IdentityHeader, tenantA, mi.ClientID, stack.APIAppID)
	var refusal *walkthrough.Error
	if !errors.As(err, &refusal) || refusal.Status != http.StatusBadRequest || !strings.Contains(refusal.Body, "AADSTS500011") {
		t.Fatalf("a token for the API before it is installed in the tenant: %v, want Entra's AADSTS500011", err)
	}

	wi, err := user.RegisterWorkloadIdentity(ctx, "lake-job", mi.ClientID, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if wi.InstallCommand != "az ad sp create --id "+stack.APIAppID || wi.ClientID != mi.ClientID || wi.TenantID != tenantA {
		t.Fatalf("registration %+v", wi)
	}
	if _, err := customer.InstallServicePrincipal(ctx, tenantA, stack.APIAppID); err != nil {
		t.Fatal(err)
	}
	token, err := customer.WorkloadToken(ctx, stack.IdentityHeader, tenantA, mi.ClientID, stack.APIAppID)
	if err != nil {
		t.Fatal(err)
	}
	job := workloadAPI(h, user.Org, token)

	// It reads the organization's credentials and gets a SAS that works.
	cred, err := user.Create(ctx, "for-the-job", "az://custacct1/jobbox/tables")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := job.Get(ctx, cred.ID); err != nil || got.ID != cred.ID || got.Name != "for-the-job" {
		t.Fatalf("the workload identity reads the organization's credential: %+v, %v", got, err)
	}
	creds, err := job.Creds(ctx, "ws-job", "events")
	if err != nil {
		t.Fatal(err)
	}
	if creds.Source != "environment_default" || creds.Container != orgContainer(user.Org) {
		t.Fatalf("/creds as the workload identity: %+v", creds)
	}
	checkSASShape(t, creds)
	useSAS(t, sasContainer(t, si, creds.ContainerURL, creds.SASToken), creds.PathPrefix)

	// What it does names it; what the user does names the user.
	own, err := job.Create(ctx, "by-the-job", "az://custacct1/jobbox")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := user.Events(ctx, own.ID)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	if a := evs[0].Actor; a == nil || *a != (walkthrough.Actor{Kind: "workload_identity", ID: wi.ID, ClientID: mi.ClientID, TenantID: tenantA}) {
		t.Errorf("the creation's actor %+v, want the workload identity", a)
	}
	if evs, err := job.Events(ctx, cred.ID); err != nil || evs[0].Actor == nil || *evs[0].Actor != (walkthrough.Actor{Kind: "user", ID: "e2e"}) {
		t.Errorf("the user's creation: %+v, %v; want the user as its actor", evs, err)
	}

	// It cannot change the registry.
	if _, err := job.RegisterWorkloadIdentity(ctx, "another", uuid.NewString(), tenantA); status(err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "platform user") {
		t.Errorf("a workload identity registers another: %v, want 403", err)
	}
	if err := job.RemoveWorkloadIdentity(ctx, wi.ID); status(err) != http.StatusForbidden {
		t.Errorf("a workload identity removes itself: %v, want 403", err)
	}

	// Refused: 403 for a good token of an identity not registered in the header's
	// organization, 401 for a token that is not good.
	other := h.api(t)
	stranger, err := customer.CreateManagedIdentity(ctx, tenantA, "stranger-"+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	mint := func(id string, d walkthrough.TokenDeviation) string {
		t.Helper()
		tok, err := customer.MintWorkloadToken(ctx, tenantA, id, d)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name   string
		api    *walkthrough.API
		status int
	}{
		{"another organization's header", workloadAPI(h, other.Org, token), http.StatusForbidden},
		{"an unregistered identity", workloadAPI(h, user.Org, mint(stranger.ClientID, walkthrough.TokenDeviation{})), http.StatusForbidden},
		{"the same client id from another tenant", workloadAPI(h, user.Org, mint(mi.ClientID, walkthrough.TokenDeviation{TenantID: tenantB})), http.StatusForbidden},
		{"another audience", workloadAPI(h, user.Org, mint(mi.ClientID, walkthrough.TokenDeviation{Audience: "https://storage.azure.com"})), http.StatusUnauthorized},
		{"a v1.0 token", workloadAPI(h, user.Org, mint(mi.ClientID, walkthrough.TokenDeviation{Version: "1.0"})), http.StatusUnauthorized},
		{"expired", workloadAPI(h, user.Org, mint(mi.ClientID, walkthrough.TokenDeviation{Expired: true})), http.StatusUnauthorized},
		{"signed by a key Entra never published", workloadAPI(h, user.Org, mint(mi.ClientID, walkthrough.TokenDeviation{UnknownKey: true})), http.StatusUnauthorized},
	} {
		_, err := c.api.Creds(ctx, "ws-job", "events")
		if status(err) != c.status {
			t.Errorf("%s: /creds %v, want %d", c.name, err, c.status)
		}
		if _, err := c.api.Get(ctx, cred.ID); status(err) != c.status {
			t.Errorf("%s: read a credential: %v, want %d", c.name, err, c.status)
		}
		if err != nil && strings.Contains(err.Error(), c.api.Token[:40]) {
			t.Errorf("%s: the answer quotes the token", c.name)
		}
	}

	// Removed on this instance: refused by it at once, by another within the cache TTL.
	peer := h.peer(t)
	peerJob := workloadAPI(peer, user.Org, token)
	if _, err := peerJob.Creds(ctx, "ws-job", "events"); err != nil {
		t.Fatalf("the second instance: %v", err)
	}
	if err := user.RemoveWorkloadIdentity(ctx, wi.ID); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	if _, err := job.Creds(ctx, "ws-job", "events"); status(err) != http.StatusForbidden {
		t.Errorf("the instance that removed it: %v, want 403 at once", err)
	}
	for {
		_, err := peerJob.Creds(ctx, "ws-job", "events")
		if status(err) == http.StatusForbidden {
			t.Logf("the second instance refused the removed identity %s after its removal (cache TTL %s)",
				time.Since(removed).Round(time.Millisecond), s.workloadCacheTTL)
			break
		}
		if err != nil {
			t.Fatalf("the second instance: %v", err)
		}
		if time.Since(removed) > s.workloadCacheTTL+5*time.Second {
			t.Fatalf("the second instance still admits the removed identity %s after its removal (cache TTL %s)",
				time.Since(removed).Round(time.Millisecond), s.workloadCacheTTL)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The registry's log: the registration and the removal, by the user.
	revs, err := user.WorkloadIdentityEvents(ctx)
	if err != nil || len(revs) != 2 || revs[0].Cause != "registered" || revs[1].Cause != "removed" {
		t.Fatalf("registry events %+v, %v", revs, err)
	}
	for _, ev := range revs {
		if ev.Actor == nil || ev.Actor.Kind != "user" || ev.WorkloadIdentityID != wi.ID {
			t.Errorf("registry event %+v: want the user as its actor", ev)
		}
	}
}

// BenchmarkWarmCredsByCaller measures, in one run on one stack, a warm /creds (the
// workspace locked, its resolution and the user delegation key cached) called with a
// platform user's token and with a registered workload identity's Entra token, and counts
// the Table requests each makes through the storage proxy in front of Azurite: while the
// registry lookup is cached, a workload identity's call costs no storage request more
// than a user's. The last case is the workload identity on a second instance with the
// registry cache off (AZCREDS_WORKLOAD_IDENTITY_CACHE_TTL=0s): what the cache saves.
//
//	make test PKGS=./internal/e2e/ FUZZTIME=0 GOTEST_FLAGS='-run ^$$ -bench WarmCredsByCaller -benchtime 2000x'
func BenchmarkWarmCredsByCaller(b *testing.B) {
	env := testenv.Azurite(b)
	proxy, counted := startFaultProxy(b, env)
	si := startStandIn(b, counted, time.Second)
	h := startHandler(b, counted, si, defaultSettings())
	ctx := context.Background()
	warmUp(b, h)
	user := h.api(b)
	mi, err := si.customer.CreateManagedIdentity(ctx, tenantA, "bench-job")
	if err == nil {
		_, err = user.RegisterWorkloadIdentity(ctx, "bench-job", mi.ClientID, tenantA)
	}
	if err == nil {
		_, err = si.customer.InstallServicePrincipal(ctx, tenantA, stack.APIAppID)
	}
	var token string
	if err == nil {
		token, err = si.customer.WorkloadToken(ctx, stack.IdentityHeader, tenantA, mi.ClientID, stack.APIAppID)
	}
	if err != nil {
		b.Fatal(err)
	}
	callers := []struct {
		name string
		api  *walkthrough.API
	}{{"platform token", user}, {"workload identity token", workloadAPI(h, user.Org, token)},
		{"workload identity token, registry cache off", workloadAPI(h.peer(b, config.KeyWorkloadIdentityCacheTTL+"=0s"), user.Org, token)}}
	for _, c := range callers { // the workspace's first table, and each caller's first call
		if _, err := c.api.Creds(ctx, "ws-bench", "t"); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range callers {
		b.Run(c.name, func(b *testing.B) {
			before := proxy.Stats()
			b.ResetTimer()
			for range b.N {
				if _, err := c.api.Creds(ctx, "ws-bench", "t"); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			table := proxy.Stats().Sub(before).Services[faultproxy.ServiceTable]
			b.ReportMetric(float64(table.Requests)/float64(b.N), "table-requests/op")
			b.Logf("%d calls: %d Table requests %v", b.N, table.Requests, table.Operations)
		})
	}
}

// TestWorkloadDemoCommands runs the three commands `make run` prints for the demo workload
// identity, with bash and curl as a developer would, against a stack of its own: the
// registration answers 201 with the install command, the identity endpoint a token, and
// /creds a SAS for the organization's container.
func TestWorkloadDemoCommands(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl on this machine")
	}
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	h := startHandler(t, env, si, defaultSettings())
	ctx := context.Background()
	warmUp(t, h)
	client, err := stack.Client(env.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.InstallAPI(ctx, client, si.url+"/control", stack.CustomerTenant1); err != nil {
		t.Fatal(err)
	}
	tok, err := h.signing.Mint("local-user", []string{stack.DemoOrg}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cmds := stack.WorkloadDemo{HandlerURL: h.url, StandInURL: si.url, CertFile: env.CertFile, Org: stack.DemoOrg}.Commands()
	script := "set -eo pipefail\nexport TOKEN='" + tok + "'\n" + cmds[0] + "\n" + cmds[1] + "\n" +
		`test -n "$WI_TOKEN" || { echo "no token" >&2; exit 1; }` + "\n" + cmds[2] + "\n"
	out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the commands failed: %v\n%s\n--- script:\n%s", err, out, script)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two answers (the registration, /creds), got:\n%s", out)
	}
	var registered walkthrough.WorkloadIdentity
	var creds walkthrough.Creds
	if err := json.Unmarshal([]byte(lines[0]), &registered); err != nil || registered.ClientID != stack.WorkloadIdentityClientID ||
		registered.InstallCommand != "az ad sp create --id "+stack.APIAppID {
		t.Errorf("command 1 answered %s (%v)", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &creds); err != nil || creds.SASToken == "" || creds.Container != orgContainer(stack.DemoOrg) {
		t.Errorf("command 3 answered %s (%v)", lines[1], err)
	}
	t.Logf("the commands:\n%s\n\n%s\n\n%s", cmds[0], cmds[1], cmds[2])
}
