package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// The prober's tests run the real azblob client against the stand-in's storage front
// (RBAC) over the test Azurite, with tokens from the stand-in's token endpoint: every row
// of the contract's outcome table (docs/CONTRACT.md) as the storage data plane produces it.

const (
	homeTenant   = "11111111-1111-1111-1111-111111111111"
	custTenant   = "22222222-2222-2222-2222-222222222222"
	miObjectID   = "55555555-5555-5555-5555-555555555555"
	subscription = "66666666-6666-6666-6666-666666666666"
	resourceRG   = "rg-data"
	propagation  = 10 * time.Second
)

// offsetClock runs at real time plus an offset the test can advance: Azurite checks the
// lifetime of the tokens against its own clock, so the stand-in's must stay close to it.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// stack is the local Entra stand-in, its storage front on a TLS listener whose certificate
// covers *.blob.localhost, and the Azurite behind it.
type stack struct {
	t     *testing.T
	env   testenv.Env
	s     *localazure.Server
	clock *offsetClock
	local *localazuretest.StandIn
	front *localazuretest.StorageFront
}

func newStack(t *testing.T) *stack {
	t.Helper()
	env := testenv.Azurite(t)
	clock := &offsetClock{}
	local := localazuretest.Start(t, localazure.Config{
		HomeTenantID:     homeTenant,
		ManagedIdentity:  localazure.ManagedIdentity{ObjectID: miObjectID},
		Tenants:          []string{custTenant},
		PropagationDelay: propagation,
		Now:              clock.Now,
	}, nil)
	for _, account := range []string{"custacct1", "custacct2"} {
		if _, _, err := local.Server.RegisterStorageAccount(localazure.StorageAccount{Name: account, SubscriptionID: subscription, ResourceGroup: resourceRG, TenantID: custTenant}); err != nil {
			t.Fatal(err)
		}
	}
	front := local.StartStorageFront(t, localazure.StorageFrontConfig{Azurite: env.BlobEndpoint})
	return &stack{t: t, env: env, s: local.Server, clock: clock, local: local, front: front}
}

// countingTransport counts the requests that leave the azblob pipeline.
type countingTransport struct {
	next policy.Transporter
	mu   sync.Mutex
	sent []string
}

func (c *countingTransport) Do(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.sent = append(c.sent, req.Method+" "+req.URL.Host+req.URL.Path+"?"+req.URL.RawQuery)
	c.mu.Unlock()
	return c.next.Do(req)
}

func (c *countingTransport) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sent...)
}

// prober is a Prober for the stack whose dialer resolves custacct1 and custacct2 only.
func (st *stack) prober(creds CredentialSource) (*Prober, *countingTransport) {
	st.t.Helper()
	transport := &countingTransport{next: st.front.Transport(st.t, "custacct1", "custacct2")}
	p, err := NewProber(creds, Options{EndpointTemplate: st.front.EndpointTemplate, Transport: transport})
	if err != nil {
		st.t.Fatal(err)
	}
	return p, transport
}

// app is a credential's app registration with its service principal in the customer tenant.
type app struct {
	appID, spObjectID string
}

// newApp registers a multi-tenant app with a federated credential that trusts the managed
// identity, and installs its service principal in the customer tenant.
func (st *stack) newApp() app {
	st.t.Helper()
	a := st.local.RegisterApp(st.t, "probe-"+uuid.NewString()[:8], miObjectID)
	sp, _, err := st.s.InstallServicePrincipal(custTenant, a.AppID)
	if err != nil {
		st.t.Fatal(err)
	}
	return app{appID: a.AppID, spObjectID: sp.ID}
}

func (st *stack) scope(account, container string) string {
	s := "/subscriptions/" + subscription + "/resourceGroups/" + resourceRG + "/providers/Microsoft.Storage/storageAccounts/" + account
	if container != "" {
		s += "/blobServices/default/containers/" + container
	}
	return s
}

// grant gives a the role at scope and lets it propagate.
func (st *stack) grant(a app, role localazure.Role, scope string) {
	st.t.Helper()
	if _, err := st.s.GrantRole(a.spObjectID, string(role), scope); err != nil {
		st.t.Fatal(err)
	}
	st.clock.Advance(propagation + time.Second)
}

// sharedKeyClient reaches account on Azurite directly (path-style, shared key): the
// customer's own view of the account, to set up and inspect.
func (st *stack) sharedKeyClient(account string) *azblob.Client {
	st.t.Helper()
	c, err := azblob.NewClientFromConnectionString(st.env.ConnectionString(account), nil)
	if err != nil {
		st.t.Fatal(err)
	}
	return c
}

// container creates a container in account, removed after the test.
func (st *stack) container(account string) string {
	st.t.Helper()
	name := testenv.UniqueName(st.t, "probe")
	c := st.sharedKeyClient(account)
	if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
		st.t.Fatal(err)
	}
	st.t.Cleanup(func() { _, _ = c.DeleteContainer(context.Background(), name, nil) })
	return name
}

// blobs lists every blob name in a container of account.
func (st *stack) blobs(account, container string) []string {
	st.t.Helper()
	var names []string
	pager := st.sharedKeyClient(account).NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			st.t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// tokenSource is a CredentialSource over the stand-in's token endpoint: the managed
// identity's token as the client assertion, exchanged for a storage token in the tenant.
// A credential caches its token until fresh is asked for, as the identity chain does.
type tokenSource struct {
	st *stack

	mu     sync.Mutex
	cached map[string]*standInCredential
	calls  []bool // fresh of each For call
}

func (ts *tokenSource) For(tenantID, appID string, fresh bool) (azcore.TokenCredential, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.calls = append(ts.calls, fresh)
	key := tenantID + "/" + appID
	if c, ok := ts.cached[key]; ok && !fresh {
		return c, nil
	}
	if ts.cached == nil {
		ts.cached = map[string]*standInCredential{}
	}
	c := &standInCredential{st: ts.st, tenantID: tenantID, appID: appID}
	ts.cached[key] = c
	return c, nil
}

type standInCredential struct {
	st              *stack
	tenantID, appID string

	mu    sync.Mutex
	token azcore.AccessToken
}

func (c *standInCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token.Token != "" && time.Until(c.token.ExpiresOn) > 5*time.Minute {
		return c.token, nil
	}
	if len(opts.Scopes) != 1 || opts.Scopes[0] != localazure.StorageAudience+"/.default" {
		return azcore.AccessToken{}, fmt.Errorf("unexpected scopes %v", opts.Scopes)
	}
	assertion, err := c.st.local.ManagedIdentity().GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{localazure.TokenExchangeAudience + "/.default"}})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {c.appID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion.Token},
		"scope":                 {opts.Scopes[0]},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.st.local.HTTPS.URL+"/"+c.tenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.st.local.HTTPS.Client().Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return azcore.AccessToken{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return azcore.AccessToken{}, errors.New("token endpoint: " + strconv.Itoa(resp.StatusCode) + " " + body.Error)
	}
	c.token = azcore.AccessToken{Token: body.AccessToken, ExpiresOn: time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)}
	return c.token, nil
}

// check is a CheckResult without the request id, which the tests check separately.
func pass(name string) credential.CheckResult {
	return credential.CheckResult{Name: name, Result: credential.ResultPass}
}

func skip(name string) credential.CheckResult {
	return credential.CheckResult{Name: name, Result: credential.ResultSkip}
}

func fail(name string, status int, code bloberror.Code) credential.CheckResult {
	return credential.CheckResult{Name: name, Result: credential.ResultFail, Status: status, Code: string(code)}
}

const (
	udk   = credential.CheckUserDelegationKey
	write = credential.CheckWrite
	list  = credential.CheckListRead
	del   = credential.CheckDelete
)

func TestProbeOutcomes(t *testing.T) {
	st := newStack(t)
	creds := &tokenSource{st: st}
	p, transport := st.prober(creds)

	denied := func(name string) credential.CheckResult {
		return fail(name, http.StatusForbidden, bloberror.AuthorizationPermissionMismatch)
	}
	blocked := func(name string) credential.CheckResult {
		return fail(name, http.StatusForbidden, bloberror.AuthorizationFailure)
	}
	type row struct {
		name   string
		setup  func(a app) credential.ProbeTarget
		want   credential.ProbeReport
		status credential.Status // after the grace
		hint   string
	}
	target := func(a app, account, container, prefix string) credential.ProbeTarget {
		return credential.ProbeTarget{TenantID: custTenant, AppID: a.appID, Account: account, Container: container, Prefix: prefix}
	}
	rows := []row{
		{
			name: "contributor at the account: all pass",
			setup: func(a app) credential.ProbeTarget {
				c := st.container("custacct1")
				st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", ""))
				return target(a, "custacct1", c, "/tables/prod/")
			},
			want:   credential.ProbeReport{Checks: []credential.CheckResult{pass(udk), pass(write), pass(list), pass(del)}},
			status: credential.StatusConnected,
		},
		{
			name: "no role: every check 403",
			setup: func(a app) credential.ProbeTarget {
				return target(a, "custacct1", st.container("custacct1"), "")
			},
			want:   credential.ProbeReport{Checks: []credential.CheckResult{denied(udk), denied(write), denied(list), skip(del)}},
			status: credential.StatusRoleNotSufficient, hint: credential.HintNoRole,
		},
		{
			name: "reader: read ok, write denied",
			setup: func(a app) credential.ProbeTarget {
				c := st.container("custacct1")
				st.grant(a, localazure.RoleBlobDataReader, st.scope("custacct1", ""))
				return target(a, "custacct1", c, "data")
			},
			want:   credential.ProbeReport{Checks: []credential.CheckResult{pass(udk), denied(write), pass(list), skip(del)}},
			status: credential.StatusRoleNotSufficient, hint: credential.HintReaderRole,
		},
		{
			name: "contributor at container scope: data ok, user delegation key denied",
			setup: func(a app) credential.ProbeTarget {
				c := st.container("custacct1")
				st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", c))
				return target(a, "custacct1", c, "data")
			},
			want:   credential.ProbeReport{Checks: []credential.CheckResult{denied(udk), pass(write), pass(list), pass(del)}},
			status: credential.StatusRoleNotSufficient, hint: credential.HintContainerScope,
		},
		{
			name: "container missing",
			setup: func(a app) credential.ProbeTarget {
				st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", ""))
				return target(a, "custacct1", testenv.UniqueName(t, "missing"), "")
			},
			want: credential.ProbeReport{Checks: []credential.CheckResult{pass(udk),
				fail(write, http.StatusNotFound, bloberror.ContainerNotFound), fail(list, http.StatusNotFound, bloberror.ContainerNotFound), skip(del)}},
			status: credential.StatusContainerNotFound,
		},
		{
			name: "account unknown: the name does not resolve",
			setup: func(a app) credential.ProbeTarget {
				return target(a, "nosuchacct", "tables", "")
			},
			want: credential.ProbeReport{AccountNotFound: true, Checks: []credential.CheckResult{
				{Name: udk, Result: credential.ResultFail}, skip(write), skip(list), skip(del)}},
			status: credential.StatusStorageAccountNotFound,
		},
		{
			name: "firewall",
			setup: func(a app) credential.ProbeTarget {
				c := st.container("custacct2")
				st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct2", ""))
				if err := st.s.SetFirewall("custacct2", true); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.s.SetFirewall("custacct2", false) })
				return target(a, "custacct2", c, "")
			},
			want:   credential.ProbeReport{Checks: []credential.CheckResult{blocked(udk), blocked(write), blocked(list), skip(del)}},
			status: credential.StatusNetworkBlocked, hint: credential.HintAllowNetwork,
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			st.t = t
			a := st.newApp()
			tgt := r.setup(a)
			before := len(transport.requests())
			start := time.Now()
			got := p.Probe(context.Background(), tgt)
			elapsed := time.Since(start)
			sent := transport.requests()[before:]
			t.Logf("%d requests in %s: %v", len(sent), elapsed.Round(time.Millisecond), sent)

			if diff := cmp.Diff(r.want, got, cmpopts.IgnoreFields(credential.CheckResult{}, "RequestID")); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			for _, c := range got.Checks {
				if c.Result == credential.ResultFail && c.Status != 0 && c.RequestID == "" {
					t.Errorf("check %s failed without the x-ms-request-id", c.Name)
				}
			}
			v := credential.ClassifyProbe(got, tgt, a.spObjectID, true)
			if v.Status != r.status || v.Problem.Hint != r.hint {
				t.Errorf("classified as %s (hint %q), want %s (hint %q): %s", v.Status, v.Problem.Hint, r.status, r.hint, v.Problem.Message)
			}
			// No check is retried: one request per check that ran (two for list_read
			// when it reads the blob back), none for an account that does not resolve
			// beyond the first attempt.
			want := 0
			for _, c := range got.Checks {
				if c.Result != credential.ResultSkip {
					want++
				}
				if c.Name == list && c.Result == credential.ResultPass && got.Checks[1].Result == credential.ResultPass {
					want++
				}
			}
			if len(sent) != want {
				t.Errorf("%d requests, want %d (no retries)", len(sent), want)
			}
			if elapsed > 5*time.Second {
				t.Errorf("probe took %s", elapsed)
			}
			// Nothing is left behind.
			if tgt.Account != "nosuchacct" && !strings.HasPrefix(tgt.Container, "missing") && !got.AccountNotFound && r.status != credential.StatusNetworkBlocked {
				if left := st.blobs(tgt.Account, tgt.Container); len(left) != 0 {
					t.Errorf("probe left blobs behind: %v", left)
				}
			}
		})
	}
	st.t = t
}

// TestProbeWritesUnderThePrefix: the probe blob goes to <prefix>/.azcreds-probe/, where
// the platform will write, and is gone afterwards.
func TestProbeWritesUnderThePrefix(t *testing.T) {
	st := newStack(t)
	a := st.newApp()
	c := st.container("custacct1")
	st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", ""))
	p, transport := st.prober(&tokenSource{st: st})
	got := p.Probe(context.Background(), credential.ProbeTarget{TenantID: custTenant, AppID: a.appID, Account: "custacct1", Container: c, Prefix: "/lake/prod/"})
	if credential.ClassifyProbe(got, credential.ProbeTarget{}, "", true).Status != credential.StatusConnected {
		t.Fatalf("report %+v", got)
	}
	var put string
	for _, r := range transport.requests() {
		if strings.HasPrefix(r, "PUT ") {
			put = r
		}
	}
	if !strings.Contains(put, "/"+c+"/lake/prod/.azcreds-probe/") {
		t.Errorf("probe blob written at %q, want under /%s/lake/prod/.azcreds-probe/", put, c)
	}
	if !strings.HasPrefix(put, "PUT custacct1.blob.localhost:") {
		t.Errorf("request went to %q, want the product-style host", put)
	}
}

// TestProbeWaitsForPropagation: before the grant propagates every check is denied (the
// domain waits); the next attempt, with a fresh token, passes.
func TestProbeWaitsForPropagation(t *testing.T) {
	st := newStack(t)
	a := st.newApp()
	c := st.container("custacct1")
	creds := &tokenSource{st: st}
	p, _ := st.prober(creds)
	if _, err := st.s.GrantRole(a.spObjectID, string(localazure.RoleBlobDataContributor), st.scope("custacct1", "")); err != nil {
		t.Fatal(err)
	}
	tgt := credential.ProbeTarget{TenantID: custTenant, AppID: a.appID, Account: "custacct1", Container: c}
	got := p.Probe(context.Background(), tgt)
	if v := credential.ClassifyProbe(got, tgt, a.spObjectID, false); v.Status != credential.StatusWaitingForRolePropagation || !v.Again {
		t.Fatalf("before propagation: %s %+v", v.Status, got)
	}
	st.clock.Advance(propagation + time.Second)
	tgt.FreshToken = true
	got = p.Probe(context.Background(), tgt)
	if v := credential.ClassifyProbe(got, tgt, a.spObjectID, false); v.Status != credential.StatusConnected {
		t.Fatalf("after propagation: %s %+v", v.Status, got)
	}
	if diff := cmp.Diff([]bool{false, true}, creds.calls); diff != "" {
		t.Errorf("fresh of the For calls (-want +got):\n%s", diff)
	}
}

// TestProbeServicePrincipalRemoved: the customer deleted the service principal after it was
// verified. Through the real token chain, Entra refuses the storage token with
// AADSTS700016: the attempt ends at its first check, which carries Entra's code, status and
// trace id, and nothing reaches storage.
func TestProbeServicePrincipalRemoved(t *testing.T) {
	st := newStack(t)
	a := st.newApp()
	c := st.container("custacct1")
	st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", ""))
	if err := st.s.RemoveServicePrincipal(custTenant, a.spObjectID); err != nil {
		t.Fatal(err)
	}

	// The backend's managed identity as in Functions (App Service source), the assertion
	// of the identity chain.
	entra := st.local.HTTPS
	t.Setenv("IDENTITY_ENDPOINT", entra.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", localazure.DefaultIdentityHeader)
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(st.local.Config.ManagedIdentity.ClientID), ClientOptions: azcore.ClientOptions{Transport: entra.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := identity.New(mi, identity.Options{AuthorityHost: entra.URL, Transport: entra.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, transport := st.prober(chain)
	tgt := credential.ProbeTarget{TenantID: custTenant, AppID: a.appID, Account: "custacct1", Container: c}
	got := p.Probe(context.Background(), tgt)

	want := credential.ProbeReport{Checks: []credential.CheckResult{
		{Name: udk, Result: credential.ResultFail, Status: http.StatusBadRequest, Code: "AADSTS700016"}, skip(write), skip(list), skip(del)}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(credential.CheckResult{}, "RequestID")); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if id := got.Checks[0].RequestID; uuid.Validate(id) != nil {
		t.Errorf("request id %q, want Entra's trace id", id)
	}
	if sent := transport.requests(); len(sent) != 0 {
		t.Errorf("requests to storage without a token: %v", sent)
	}
	v := credential.ClassifyProbe(got, tgt, a.spObjectID, true)
	if v.Status != credential.StatusUnexpectedError || !v.Again || v.Problem.ProviderError != "AADSTS700016" || v.Problem.RequestID != got.Checks[0].RequestID {
		t.Errorf("classified %s (again %v), problem %+v; want unexpected_error, again, with AADSTS700016 and the trace id", v.Status, v.Again, v.Problem)
	}
}

// failingSource fails to give a credential, as the identity chain does when Entra refuses.
type failingSource struct{ err error }

func (f failingSource) For(string, string, bool) (azcore.TokenCredential, error) { return nil, f.err }

func TestProbeWithoutCredential(t *testing.T) {
	pe := &credential.ProviderError{Kind: credential.ErrSPNotFound, Code: "AADSTS700016", Status: 400, RequestID: "trace-1"}
	p, err := NewProber(failingSource{err: fmt.Errorf("app credential: %w", pe)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := p.Probe(context.Background(), credential.ProbeTarget{Account: "custacct1", Container: "tables"})
	want := credential.ProbeReport{Checks: []credential.CheckResult{
		{Name: udk, Result: credential.ResultFail, Status: 400, Code: "AADSTS700016", RequestID: "trace-1"}, skip(write), skip(list), skip(del)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if v := credential.ClassifyProbe(got, credential.ProbeTarget{}, "", true); v.Status != credential.StatusUnexpectedError || !v.Again {
		t.Errorf("classified %s, want unexpected_error, again", v.Status)
	}
}

func TestValidateEndpointTemplate(t *testing.T) {
	for _, ok := range []string{DefaultEndpointTemplate, "https://%s.blob.localhost:10443/", "https://%s.blob.core.chinacloudapi.cn/"} {
		if err := ValidateEndpointTemplate(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "https://blob.core.windows.net/", "http://%s.blob.localhost/", "https://%s.%s/", "https://%s.blob/%d", "%s"} {
		if err := ValidateEndpointTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewProber(&tokenSource{}, Options{EndpointTemplate: "https://blob.local/"}); err == nil {
		t.Error("NewProber accepted a template without the account placeholder")
	}
}

func TestShouldRetry(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	for code, want := range map[int]bool{403: false, 404: false, 409: false, 408: true, 429: true, 500: true, 503: true} {
		if got := shouldRetry(resp(code), nil); got != want {
			t.Errorf("status %d: retry %v, want %v", code, got, want)
		}
	}
	notFound := &url.Error{Op: "Get", URL: "https://x.blob.localhost/", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "x.blob.localhost", IsNotFound: true}}}
	if shouldRetry(nil, notFound) {
		t.Error("a name that does not resolve is retried")
	}
	if !shouldRetry(nil, &net.OpError{Op: "dial", Err: errors.New("connection refused")}) {
		t.Error("a refused connection is not retried")
	}
}

func TestProbeBlobName(t *testing.T) {
	for prefix, want := range map[string]string{"": ".azcreds-probe/", "/": ".azcreds-probe/", "a/b": "a/b/.azcreds-probe/", "/a/b/": "a/b/.azcreds-probe/"} {
		if got := probeBlobName(prefix); !strings.HasPrefix(got, want) || uuid.Validate(strings.TrimPrefix(got, want)) != nil {
			t.Errorf("probeBlobName(%q) = %q, want %s<uuid>", prefix, got, want)
		}
	}
}

// losingTransport sends every request, and throws away the answer of the first one whose
// method is lose: the work is done, the client sees a dropped connection and retries.
type losingTransport struct {
	next policy.Transporter
	lose string

	mu   sync.Mutex
	lost bool
}

func (l *losingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := l.next.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || l.lost || req.Method != l.lose {
		return resp, err
	}
	l.lost = true
	resp.Body.Close()
	return nil, errors.New("connection reset after the request was served")
}

// TestProbeDeleteWhoseAnswerWasLost: the probe blob's delete lands but its answer is lost;
// the storage client's retry meets 404 BlobNotFound. The blob is gone, as the check wants:
// it passes, and the attempt is not read as a missing container.
func TestProbeDeleteWhoseAnswerWasLost(t *testing.T) {
	st := newStack(t)
	a := st.newApp()
	c := st.container("custacct1")
	st.grant(a, localazure.RoleBlobDataContributor, st.scope("custacct1", ""))
	transport := &losingTransport{next: st.front.Transport(t, "custacct1"), lose: http.MethodDelete}
	p, err := NewProber(&tokenSource{st: st}, Options{EndpointTemplate: st.front.EndpointTemplate, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	tgt := credential.ProbeTarget{TenantID: custTenant, AppID: a.appID, Account: "custacct1", Container: c, Prefix: "tables"}
	got := p.Probe(context.Background(), tgt)
	if !transport.lost {
		t.Fatal("no delete's answer was lost")
	}
	want := credential.ProbeReport{Checks: []credential.CheckResult{pass(udk), pass(write), pass(list), pass(del)}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(credential.CheckResult{}, "RequestID")); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if v := credential.ClassifyProbe(got, tgt, a.spObjectID, true); v.Status != credential.StatusConnected {
		t.Errorf("classified as %s: %s", v.Status, v.Problem.Message)
	}
	if left := st.blobs("custacct1", c); len(left) != 0 {
		t.Errorf("probe left blobs behind: %v", left)
	}
}
