package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/clocktest"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// The signer's tests run the real azblob client against the stand-in's storage front
// (RBAC) over the test Azurite, with tokens from the real identity chain (azidentity's
// ClientAssertionCredential) against the stand-in's Entra: user delegation keys are fetched
// as the customer's service principal or the platform's managed identity, and the SAS
// tokens are used by a client that holds nothing else. No shared key is on that path;
// the customer's own shared-key view of Azurite only creates containers and checks
// results.

// sasEnv is the stand-in (Entra, managed identity, Graph, the RBAC storage front) over the
// test Azurite. It works for tests and benchmarks alike (testing.TB).
type sasEnv struct {
	env       testenv.Env
	s         *localazure.Server
	local     *localazuretest.StandIn
	clock     *offsetClock // the stand-in's clock (tokens, propagation)
	template  string
	transport policy.Transporter                        // *.blob.localhost through the dialer to the front
	mi        *localazuretest.ManagedIdentityCredential // the platform's managed identity
	chain     *identity.Chain                           // the customer service principals' credentials
}

// platformRG is the resource group of the platform's own account (the environment
// default), registered in the home tenant.
const platformRG = "rg-platform"

func newSASEnv(tb testing.TB) *sasEnv {
	tb.Helper()
	env := testenv.Azurite(tb)
	clock := &offsetClock{}
	local := localazuretest.Start(tb, localazure.Config{
		HomeTenantID:     homeTenant,
		ManagedIdentity:  localazure.ManagedIdentity{ObjectID: miObjectID},
		Tenants:          []string{custTenant},
		PropagationDelay: propagation,
		Now:              clock.Now,
	}, nil)
	accounts := []localazure.StorageAccount{
		{Name: "custacct1", SubscriptionID: subscription, ResourceGroup: resourceRG, TenantID: custTenant},
		{Name: "custacct2", SubscriptionID: subscription, ResourceGroup: resourceRG, TenantID: custTenant},
		{Name: testenv.DevAccount, SubscriptionID: subscription, ResourceGroup: platformRG, TenantID: homeTenant},
	}
	names := make([]string, len(accounts))
	for i, a := range accounts {
		if _, _, err := local.Server.RegisterStorageAccount(a); err != nil {
			tb.Fatal(err)
		}
		names[i] = a.Name
	}
	front := local.StartStorageFront(tb, localazure.StorageFrontConfig{Azurite: env.BlobEndpoint})

	mi := local.ManagedIdentity()
	chain, err := identity.New(mi, identity.Options{AuthorityHost: local.HTTPS.URL + "/", Transport: local.HTTPS.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	return &sasEnv{env: env, s: local.Server, local: local, clock: clock, mi: mi, chain: chain,
		template:  front.EndpointTemplate,
		transport: front.Transport(tb, names...)}
}

// spApp is a credential's app registration, with its service principal in the customer
// tenant when installed.
type spApp struct {
	appID, spObjectID string
}

// newApp registers a multi-tenant app whose federated credential trusts the managed
// identity; install puts its service principal in the customer tenant.
func (e *sasEnv) newApp(tb testing.TB, install bool) spApp {
	tb.Helper()
	app := spApp{appID: e.local.RegisterApp(tb, "sas-"+uuid.NewString()[:8], miObjectID).AppID}
	if install {
		sp, _, err := e.s.InstallServicePrincipal(custTenant, app.appID)
		if err != nil {
			tb.Fatal(err)
		}
		app.spObjectID = sp.ID
	}
	return app
}

// grant gives principal the role at scope and lets it propagate.
func (e *sasEnv) grant(tb testing.TB, principal string, role localazure.Role, scope string) {
	tb.Helper()
	if _, err := e.s.GrantRole(principal, string(role), scope); err != nil {
		tb.Fatal(err)
	}
	e.clock.Advance(propagation + time.Second)
}

func accountScope(account, rg string) string {
	return "/subscriptions/" + subscription + "/resourceGroups/" + rg + "/providers/Microsoft.Storage/storageAccounts/" + account
}

// customerClient is the customer's own view of account (path-style, shared key), to set
// up and inspect only.
func (e *sasEnv) customerClient(tb testing.TB, account string) *azblob.Client {
	tb.Helper()
	c, err := azblob.NewClientFromConnectionString(e.env.ConnectionString(account), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// createContainer creates a container named name (a new one when empty) in account,
// removed after the test.
func (e *sasEnv) createContainer(tb testing.TB, account, name string) string {
	tb.Helper()
	if name == "" {
		name = testenv.UniqueName(tb, "sas")
	}
	c := e.customerClient(tb, account)
	if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _, _ = c.DeleteContainer(context.Background(), name, nil) })
	return name
}

// recorder is the transport of the signer and the SAS clients: it records every request
// (with the scheme of its Authorization header) and can hold or fail the user delegation
// key requests.
type recorder struct {
	next policy.Transporter

	mu      sync.Mutex
	sent    []sentRequest
	gate    chan struct{} // when not nil, key requests wait for it to close
	fault   int           // when not zero, key requests are answered with this status
	entered chan struct{} // receives once per key request that reached the gate
}

type sentRequest struct {
	method, host, path string
	query              url.Values
	auth               string // the Authorization scheme, "" without one
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	auth, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	r.mu.Lock()
	r.sent = append(r.sent, sentRequest{method: req.Method, host: req.URL.Host, path: req.URL.Path, query: req.URL.Query(), auth: auth})
	gate, fault, entered := r.gate, r.fault, r.entered
	r.mu.Unlock()
	if isKeyRequest(req.URL.Query()) {
		if entered != nil {
			entered <- struct{}{}
		}
		if gate != nil {
			select {
			case <-gate:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		if fault != 0 {
			return faultResponse(req, fault), nil
		}
	}
	return r.next.Do(req)
}

func isKeyRequest(q url.Values) bool { return q.Get("comp") == "userdelegationkey" }

// faultResponse is Storage's answer to an overloaded request.
func faultResponse(req *http.Request, status int) *http.Response {
	h := http.Header{}
	h.Set("x-ms-error-code", string(bloberror.ServerBusy))
	h.Set("x-ms-request-id", uuid.NewString())
	h.Set("Content-Type", "application/xml")
	body := `<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is busy.</Message></Error>`
	return &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status), Header: h,
		Body: io.NopCloser(strings.NewReader(body)), Request: req, ProtoMajor: 1, ProtoMinor: 1}
}

func (r *recorder) requests() []sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentRequest(nil), r.sent...)
}

// keyFetches counts the Get User Delegation Key requests sent so far.
func (r *recorder) keyFetches() int {
	n := 0
	for _, s := range r.requests() {
		if isKeyRequest(s.query) {
			n++
		}
	}
	return n
}

// freshLog records the fresh argument of every For call of the chain.
type freshLog struct {
	next CredentialSource

	mu    sync.Mutex
	calls []bool
}

func (f *freshLog) For(tenantID, appID string, fresh bool) (azcore.TokenCredential, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fresh)
	f.mu.Unlock()
	return f.next.For(tenantID, appID, fresh)
}

func (f *freshLog) log() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.calls...)
}

// signer is a Signer over the env's chain and managed identity, sending through a new
// recorder.
func (e *sasEnv) signer(tb testing.TB, opts SignerOptions) (*Signer, *recorder, *freshLog) {
	tb.Helper()
	rec := &recorder{next: e.transport}
	creds := &freshLog{next: e.chain}
	opts.EndpointTemplate, opts.Transport = e.template, rec
	s, err := NewSigner(creds, e.mi, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s, rec, creds
}

// request is a SAS request as the domain makes it: five minutes back, one hour ahead.
func request(now time.Time, account, container string, id credential.SignerIdentity) credential.SASRequest {
	return credential.SASRequest{Identity: id, Account: account, Container: container,
		Start: now.Add(-credential.SASClockSkew), Expiry: now.Add(credential.SASLifetime)}
}

func appIdentity(a spApp) credential.SignerIdentity {
	return credential.SignerIdentity{TenantID: custTenant, AppID: a.appID}
}

// sasContainer is a container client that holds nothing but the SAS.
func sasContainer(tb testing.TB, accountURL, containerName string, token credential.Secret, transport policy.Transporter) *container.Client {
	tb.Helper()
	c, err := container.NewClientWithNoCredential(accountURL+"/"+containerName+"?"+token.Reveal(),
		&container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: transport, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// useSAS uploads, lists, reads and deletes a blob with c.
func useSAS(t *testing.T, c *container.Client) {
	t.Helper()
	ctx := context.Background()
	name := "org/ws/table/part-0.bin"
	content := []byte("rows " + uuid.NewString())
	b := c.NewBlockBlobClient(name)
	if _, err := b.Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), nil); err != nil {
		t.Fatalf("upload with the SAS: %v", err)
	}
	page, err := c.NewListBlobsFlatPager(nil).NextPage(ctx)
	if err != nil {
		t.Fatalf("list with the SAS: %v", err)
	}
	var names []string
	for _, item := range page.Segment.BlobItems {
		names = append(names, *item.Name)
	}
	if diff := cmp.Diff([]string{name}, names); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	resp, err := b.DownloadStream(ctx, nil)
	if err != nil {
		t.Fatalf("read with the SAS: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read back %q, %v; want %q", got, err, content)
	}
	if _, err := b.Delete(ctx, nil); err != nil {
		t.Fatalf("delete with the SAS: %v", err)
	}
}

// wantRefused checks that err is Storage's 403 with code.
func wantRefused(t *testing.T, what string, err error, code bloberror.Code) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.ErrorCode != string(code) {
		t.Errorf("%s: got %v, want 403 %s", what, err, code)
	}
}

// TestContainerSAS: a SAS signed with a key of an app's service principal (Contributor at
// the account) uploads, lists, reads and deletes in its container through the real azblob
// client, and nowhere else. Nothing on the path has an account key.
func TestContainerSAS(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	mine := e.createContainer(t, "custacct1", "")
	other := e.createContainer(t, "custacct1", "")
	e.createContainer(t, "custacct2", mine) // the same name on another account
	s, rec, _ := e.signer(t, SignerOptions{})

	now := time.Now()
	r := request(now, "custacct1", mine, appIdentity(a))
	got, err := s.ContainerSAS(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(fmt.Sprintf(e.template, "custacct1"), "/"); got.AccountURL != want {
		t.Errorf("AccountURL = %q, want %q", got.AccountURL, want)
	}
	q, err := url.ParseQuery(got.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	for param, want := range map[string]string{
		"sp": "racwdl", "spr": "https", "sr": "c",
		"st": r.Start.UTC().Format(sas.TimeFormat), "se": r.Expiry.UTC().Format(sas.TimeFormat),
		"sktid": custTenant, "skoid": a.spObjectID,
	} {
		if q.Get(param) != want {
			t.Errorf("%s = %q, want %q", param, q.Get(param), want)
		}
	}
	if se, _ := time.Parse(sas.TimeFormat, q.Get("se")); se.Sub(now.Truncate(time.Second)) != credential.SASLifetime {
		t.Errorf("se %s is not an hour after the request's now %s", se, now.UTC())
	}
	if q.Get("sig") == "" {
		t.Error("the SAS has no signature")
	}

	useSAS(t, sasContainer(t, got.AccountURL, mine, got.Token, rec))

	ctx := context.Background()
	blob := "x/y.txt"
	wantRefused(t, "upload to another container", uploadErr(ctx, sasContainer(t, got.AccountURL, other, got.Token, rec), blob), bloberror.AuthorizationFailure)
	otherAccount := strings.Replace(got.AccountURL, "custacct1.", "custacct2.", 1)
	wantRefused(t, "upload to another account", uploadErr(ctx, sasContainer(t, otherAccount, mine, got.Token, rec), blob), bloberror.AuthorizationFailure)
	if left := e.blobNames(t, "custacct1", other); len(left) != 0 {
		t.Errorf("another container got blobs: %v", left)
	}

	// No account key on the path: the signer sent a bearer token, the SAS client nothing.
	for _, req := range rec.requests() {
		switch {
		case isKeyRequest(req.query):
			if req.auth != "Bearer" {
				t.Errorf("key request authorized with %q, want Bearer", req.auth)
			}
		case req.auth != "":
			t.Errorf("%s %s%s authorized with %q, want the SAS only", req.method, req.host, req.path, req.auth)
		case req.query.Get("sig") == "":
			t.Errorf("%s %s%s without the SAS", req.method, req.host, req.path)
		}
		if !strings.HasSuffix(strings.Split(req.host, ":")[0], ".blob.localhost") {
			t.Errorf("request to %s, want a product-style host", req.host)
		}
	}
	if n := rec.keyFetches(); n != 1 {
		t.Errorf("%d key fetches, want 1", n)
	}

	// The SAS is a secret: fmt and slog print REDACTED.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("issued", "sas", got.Token)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("issued", "sas", got.Token, "result", got)
	for _, out := range []string{fmt.Sprintf("%v %+v %s", got, got, got.Token), logged.String()} {
		if strings.Contains(out, q.Get("sig")) || strings.Contains(out, "sig=") {
			t.Errorf("the SAS leaks into output: %s", out)
		}
	}
}

func uploadErr(ctx context.Context, c *container.Client, name string) error {
	_, err := c.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(strings.NewReader("x")), nil)
	return err
}

// blobNames lists a container as its owner sees it.
func (e *sasEnv) blobNames(tb testing.TB, account, containerName string) []string {
	tb.Helper()
	var names []string
	pager := e.customerClient(tb, account).NewListBlobsFlatPager(containerName, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// TestContainerSASPlatform: the environment default is signed as the platform's managed
// identity, Contributor on its own account in the home tenant. The same identity has no
// standing on a customer's account in another tenant.
func TestContainerSASPlatform(t *testing.T) {
	e := newSASEnv(t)
	e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	c := e.createContainer(t, testenv.DevAccount, "")
	s, rec, creds := e.signer(t, SignerOptions{})
	platform := credential.SignerIdentity{Platform: true}

	got, err := s.ContainerSAS(context.Background(), request(time.Now(), testenv.DevAccount, c, platform))
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := url.ParseQuery(got.Token.Reveal()); q.Get("skoid") != miObjectID || q.Get("sktid") != homeTenant {
		t.Errorf("signed by %s in %s, want the managed identity %s in the home tenant", q.Get("skoid"), q.Get("sktid"), miObjectID)
	}
	useSAS(t, sasContainer(t, got.AccountURL, c, got.Token, rec))
	if calls := creds.log(); len(calls) != 0 {
		t.Errorf("the credential source was asked %d times for the platform's SAS", len(calls))
	}

	// A customer's account trusts its own tenant's tokens only.
	_, err = s.ContainerSAS(context.Background(), request(time.Now(), "custacct1", e.createContainer(t, "custacct1", ""), platform))
	var pe *credential.ProviderError
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized || pe.Code != "InvalidAuthenticationInfo" {
		t.Errorf("platform key on a customer account: %v, want 401 InvalidAuthenticationInfo", err)
	}
}

// TestContainerSASKeyCache: one key fetch however many requests wait for it, none while
// the key outlives the SAS by the margin, one again past that.
func TestContainerSASKeyCache(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	c := e.createContainer(t, "custacct1", "")
	clock := clocktest.New(time.Now()) // the signer's own clock; it never reaches Azurite
	s, rec, creds := e.signer(t, SignerOptions{Now: clock.Now})
	id := appIdentity(a)

	round := func(n int) []credential.SAS {
		t.Helper()
		before := rec.keyFetches()
		out := make([]credential.SAS, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				out[i], errs[i] = s.ContainerSAS(ctx, request(clock.Now(), "custacct1", c, id))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		t.Logf("%d calls: %d key fetches", n, rec.keyFetches()-before)
		return out
	}
	fetches := func(want int, what string) {
		t.Helper()
		if got := rec.keyFetches(); got != want {
			t.Errorf("%s: %d key fetches in all, want %d", what, got, want)
		}
	}

	first := round(32)
	fetches(1, "32 concurrent first calls")
	round(32)
	fetches(1, "a second round")
	useSAS(t, sasContainer(t, first[0].AccountURL, c, first[0].Token, rec))

	// The key lives 24 hours from the first call; a one-hour SAS may use it until 24h -
	// 1h - margin.
	start := clock.Now()
	clock.Set(start.Add(DefaultKeyLifetime - credential.SASLifetime - KeyReuseMargin - time.Minute))
	round(4)
	fetches(1, "just before the reuse limit")
	clock.Set(start.Add(DefaultKeyLifetime - credential.SASLifetime - KeyReuseMargin + time.Second))
	round(4)
	fetches(2, "past the reuse limit")
	if diff := cmp.Diff([]bool{false, false}, creds.log()); diff != "" {
		t.Errorf("fresh of the For calls (-want +got):\n%s", diff)
	}

	// Invalidate drops the key; the next fetch asks for a fresh credential.
	s.Invalidate("custacct1", id)
	round(1)
	fetches(3, "after Invalidate")
	round(1)
	fetches(3, "after the refetch")
	if diff := cmp.Diff([]bool{false, false, true}, creds.log()); diff != "" {
		t.Errorf("fresh of the For calls (-want +got):\n%s", diff)
	}

	// Another account or identity has a key of its own.
	e.createContainer(t, "custacct2", c)
	if _, err := s.ContainerSAS(context.Background(), request(clock.Now(), "custacct2", c, id)); err == nil {
		t.Error("custacct2 without a role: signed")
	}
	fetches(4, "another account")
}

// TestContainerSASNoCache: without the cache every SAS costs a key fetch.
func TestContainerSASNoCache(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	c := e.createContainer(t, "custacct1", "")
	s, rec, _ := e.signer(t, SignerOptions{NoCache: true})
	for i := range 5 {
		got, err := s.ContainerSAS(context.Background(), request(time.Now(), "custacct1", c, appIdentity(a)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			useSAS(t, sasContainer(t, got.AccountURL, c, got.Token, rec))
		}
	}
	if n := rec.keyFetches(); n != 5 {
		t.Errorf("%d key fetches for 5 SAS, want 5", n)
	}
}

// TestContainerSASRoleMissing: a container-scope grant cannot get a user delegation key.
// The refusal carries Storage's code and request id, is not cached, and the next fetch
// asks for a fresh token, which sees the account-scope grant once it has propagated.
func TestContainerSASRoleMissing(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	c := e.createContainer(t, "custacct1", "")
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG)+"/blobServices/default/containers/"+c)
	s, rec, creds := e.signer(t, SignerOptions{})
	r := func() credential.SASRequest { return request(time.Now(), "custacct1", c, appIdentity(a)) }

	for i := 1; i <= 2; i++ {
		_, err := s.ContainerSAS(context.Background(), r())
		var pe *credential.ProviderError
		if !errors.As(err, &pe) {
			t.Fatalf("attempt %d: %v, want a *credential.ProviderError", i, err)
		}
		if pe.Code != string(bloberror.AuthorizationPermissionMismatch) || pe.Status != http.StatusForbidden || pe.RequestID == "" || pe.Kind != nil {
			t.Errorf("attempt %d: %+v, want 403 AuthorizationPermissionMismatch with a request id", i, pe)
		}
		if n := rec.keyFetches(); n != i {
			t.Errorf("attempt %d: %d key fetches, want %d (no error cached)", i, n, i)
		}
	}
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	got, err := s.ContainerSAS(context.Background(), r())
	if err != nil {
		t.Fatalf("after the account-scope grant: %v", err)
	}
	useSAS(t, sasContainer(t, got.AccountURL, c, got.Token, rec))
	if _, err := s.ContainerSAS(context.Background(), r()); err != nil {
		t.Fatal(err)
	}
	if n := rec.keyFetches(); n != 3 {
		t.Errorf("%d key fetches, want 3", n)
	}
	if diff := cmp.Diff([]bool{false, true, true}, creds.log()); diff != "" {
		t.Errorf("fresh of the For calls (-want +got):\n%s", diff)
	}
}

// TestContainerSASWaiters: a waiter whose context ends stops waiting, without ending the
// fetch for the others; the fetch is still one.
func TestContainerSASWaiters(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	c := e.createContainer(t, "custacct1", "")
	s, rec, _ := e.signer(t, SignerOptions{})
	gate, entered := make(chan struct{}), make(chan struct{}, 8)
	rec.mu.Lock()
	rec.gate, rec.entered = gate, entered
	rec.mu.Unlock()
	r := request(time.Now(), "custacct1", c, appIdentity(a))

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := s.ContainerSAS(leaderCtx, r)
		leader <- err
	}()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the key request never went out")
	}
	follower := make(chan error, 1)
	go func() {
		got, err := s.ContainerSAS(context.Background(), r)
		if err == nil && got.Token == "" {
			err = errors.New("empty SAS")
		}
		follower <- err
	}()
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.ContainerSAS(short, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter with a deadline: %v, want context.DeadlineExceeded", err)
	}
	cancelLeader()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled leader: %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-follower; err != nil {
		t.Errorf("follower: %v", err)
	}
	if _, err := s.ContainerSAS(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if n := rec.keyFetches(); n != 1 {
		t.Errorf("%d key fetches, want 1", n)
	}
}

// TestContainerSASLongerThanKey: a SAS that outlives the key lifetime gets a key that
// outlives it; a request that waited for a shared fetch whose key is too short for it
// fetches its own.
func TestContainerSASLongerThanKey(t *testing.T) {
	e := newSASEnv(t)
	a := e.newApp(t, true)
	e.grant(t, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	c := e.createContainer(t, "custacct1", "")
	s, rec, _ := e.signer(t, SignerOptions{KeyLifetime: 2 * time.Hour})
	gate, entered := make(chan struct{}), make(chan struct{}, 8)
	rec.mu.Lock()
	rec.gate, rec.entered = gate, entered
	rec.mu.Unlock()

	now := time.Now()
	short := request(now, "custacct1", c, appIdentity(a))
	long := short
	long.Expiry = now.Add(3 * time.Hour)
	type result struct {
		sas credential.SAS
		err error
	}
	results := make(chan result, 2)
	sign := func(r credential.SASRequest) {
		got, err := s.ContainerSAS(context.Background(), r)
		results <- result{got, err}
	}
	go sign(short)
	<-entered // the short request's fetch is out; the long one waits for it
	go sign(long)
	time.Sleep(50 * time.Millisecond)
	close(gate)
	for range 2 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		got := res.sas
		q, _ := url.ParseQuery(got.Token.Reveal())
		se, _ := time.Parse(sas.TimeFormat, q.Get("se"))
		ske, _ := time.Parse(sas.TimeFormat, q.Get("ske"))
		if ske.Before(se.Add(KeyReuseMargin)) {
			t.Errorf("key expires %s, SAS %s: want the key to outlive it by %s", ske, se, KeyReuseMargin)
		}
		if se.Equal(long.Expiry.UTC().Truncate(time.Second)) {
			useSAS(t, sasContainer(t, got.AccountURL, c, got.Token, rec))
		}
	}
	if n := rec.keyFetches(); n != 2 {
		t.Errorf("%d key fetches, want 2 (the shared key was too short for the long SAS)", n)
	}
}

// TestContainerSASErrors: what the caller learns when there is no key.
func TestContainerSASErrors(t *testing.T) {
	e := newSASEnv(t)
	ctx := context.Background()

	t.Run("account does not resolve", func(t *testing.T) {
		s, rec, _ := e.signer(t, SignerOptions{})
		_, err := s.ContainerSAS(ctx, request(time.Now(), "nosuchacct", "tables", credential.SignerIdentity{Platform: true}))
		var pe *credential.ProviderError
		var dns *net.DNSError
		if !errors.As(err, &pe) || pe.Code != CodeAccountNotFound || pe.Kind != nil || !errors.As(err, &dns) {
			t.Errorf("got %v, want a ProviderError %s over the *net.DNSError", err, CodeAccountNotFound)
		}
		if n := rec.keyFetches(); n != 1 {
			t.Errorf("%d key requests, want 1 (no retry of a name that does not resolve)", n)
		}
	})

	t.Run("service principal not installed", func(t *testing.T) {
		a := e.newApp(t, false)
		s, rec, _ := e.signer(t, SignerOptions{})
		_, err := s.ContainerSAS(ctx, request(time.Now(), "custacct1", "tables", appIdentity(a)))
		var pe *credential.ProviderError
		var af *azidentity.AuthenticationFailedError
		if !errors.As(err, &pe) || pe.Code != "AADSTS700016" || !errors.Is(err, credential.ErrSPNotFound) || !errors.As(err, &af) {
			t.Errorf("got %v, want AADSTS700016 (ErrSPNotFound) with azidentity's error wrapped", err)
		}
		if n := rec.keyFetches(); n != 0 {
			t.Errorf("%d key requests went out without a token", n)
		}
	})

	t.Run("credential source fails", func(t *testing.T) {
		cause := &credential.ProviderError{Kind: credential.ErrFederation, Code: "AADSTS700213", Status: 401, RequestID: "trace-1"}
		s, err := NewSigner(refusingSource{err: fmt.Errorf("app credential: %w", cause)}, nil, SignerOptions{EndpointTemplate: e.template, Transport: e.transport})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.ContainerSAS(ctx, request(time.Now(), "custacct1", "tables", credential.SignerIdentity{TenantID: custTenant, AppID: uuid.NewString()}))
		var pe *credential.ProviderError
		if !errors.As(err, &pe) || pe != cause || !errors.Is(err, credential.ErrFederation) {
			t.Errorf("got %v, want the source's ProviderError kept", err)
		}
	})

	t.Run("storage busy", func(t *testing.T) {
		e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
		s, rec, _ := e.signer(t, SignerOptions{})
		rec.mu.Lock()
		rec.fault = http.StatusServiceUnavailable
		rec.mu.Unlock()
		r := request(time.Now(), testenv.DevAccount, "tables", credential.SignerIdentity{Platform: true})
		_, err := s.ContainerSAS(ctx, r)
		var pe *credential.ProviderError
		if !errors.As(err, &pe) || pe.Status != 503 || pe.Code != string(bloberror.ServerBusy) || pe.RequestID == "" || !errors.Is(err, credential.ErrUnavailable) {
			t.Errorf("got %v, want 503 ServerBusy with a request id, ErrUnavailable", err)
		}
		if n := rec.keyFetches(); n != 3 {
			t.Errorf("%d key requests, want 3 (two retries)", n)
		}
		rec.mu.Lock()
		rec.fault = 0
		rec.mu.Unlock()
		if _, err := s.ContainerSAS(ctx, r); err != nil {
			t.Fatalf("after the fault: %v", err)
		}
		if n := rec.keyFetches(); n != 4 {
			t.Errorf("%d key requests, want 4 (the error was not cached)", n)
		}
	})

	t.Run("invalid requests", func(t *testing.T) {
		s, rec, _ := e.signer(t, SignerOptions{})
		noPlatform, err := NewSigner(e.chain, nil, SignerOptions{EndpointTemplate: e.template, Transport: rec})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		app := credential.SignerIdentity{TenantID: custTenant, AppID: uuid.NewString()}
		platform := credential.SignerIdentity{Platform: true}
		for name, tc := range map[string]struct {
			s *Signer
			r credential.SASRequest
		}{
			"account name":         {s, request(now, "CustAcct1", "tables", app)},
			"path in account":      {s, request(now, "custacct1/x", "tables", app)},
			"container name":       {s, request(now, "custacct1", "Tables", app)},
			"no app id":            {s, request(now, "custacct1", "tables", credential.SignerIdentity{TenantID: custTenant})},
			"platform with an app": {s, request(now, "custacct1", "tables", credential.SignerIdentity{Platform: true, AppID: app.AppID})},
			"no platform identity": {noPlatform, request(now, "custacct1", "tables", platform)},
			"expired":              {s, credential.SASRequest{Identity: app, Account: "custacct1", Container: "tables", Expiry: now.Add(-time.Minute)}},
			"start after expiry":   {s, credential.SASRequest{Identity: app, Account: "custacct1", Container: "tables", Start: now.Add(2 * time.Hour), Expiry: now.Add(time.Hour)}},
			"beyond seven days":    {s, credential.SASRequest{Identity: app, Account: "custacct1", Container: "tables", Expiry: now.Add(MaxKeyLifetime)}},
		} {
			if _, err := tc.s.ContainerSAS(ctx, tc.r); err == nil {
				t.Errorf("%s: signed", name)
			}
		}
		if n := len(rec.requests()); n != 0 {
			t.Errorf("%d requests for invalid SAS requests", n)
		}
	})
}

// refusingSource fails to give a credential, as the identity chain does when Entra
// refuses.
type refusingSource struct{ err error }

func (f refusingSource) For(string, string, bool) (azcore.TokenCredential, error) { return nil, f.err }

// TestNewSigner: the options are checked once, the endpoint template above all: the
// account must be the host's first label.
func TestNewSigner(t *testing.T) {
	src := refusingSource{}
	for _, ok := range []string{"", DefaultEndpointTemplate, "https://%s.blob.localhost:10443/", "https://%s.blob.core.chinacloudapi.cn"} {
		if _, err := NewSigner(src, nil, SignerOptions{EndpointTemplate: ok}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"https://127.0.0.1:10100/%s",   // path-style: azblob would sign as account "127"
		"https://127.0.0.1:10100/%s/",  //
		"https://localhost:10100/%s",   // ... as "localhost:10100"
		"https://%s:10100/",            // the account's host, but no domain: fine for azblob, not a blob endpoint
		"https://blob.%s.localhost/",   // the account is not the first label
		"https://x%s.blob.localhost/",  // ... not all of it
		"https://%s.blob.localhost/a/", // a path after the account's endpoint
		"http://%s.blob.localhost/",
		"https://blob.core.windows.net/",
	} {
		if _, err := NewSigner(src, nil, SignerOptions{EndpointTemplate: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, lifetime := range []time.Duration{-time.Hour, time.Hour, credential.SASLifetime + KeyReuseMargin, MaxKeyLifetime + time.Second} {
		if _, err := NewSigner(src, nil, SignerOptions{KeyLifetime: lifetime}); err == nil {
			t.Errorf("key lifetime %s accepted", lifetime)
		}
	}
	if _, err := NewSigner(src, nil, SignerOptions{KeyLifetime: MaxKeyLifetime}); err != nil {
		t.Errorf("key lifetime %s: %v", MaxKeyLifetime, err)
	}
	if _, err := NewSigner(src, nil, SignerOptions{MaxKeys: -1}); err == nil {
		t.Error("negative MaxKeys accepted")
	}
	if _, err := NewSigner(nil, nil, SignerOptions{}); err == nil {
		t.Error("no credential source accepted")
	}
}

// TestPathStyleSignsAsWrongAccount is why ValidateSignerEndpointTemplate exists: through
// a path-style URL, azblob's GetUserDelegationCredential signs as the host's first label
// ("127"), and Storage refuses the SAS. Should an azblob upgrade make this pass, the
// template rule could be relaxed.
func TestPathStyleSignsAsWrongAccount(t *testing.T) {
	e := newSASEnv(t)
	c := e.createContainer(t, "custacct1", "")
	a := e.newApp(t, true)
	cred, err := e.chain.For(custTenant, a.appID, false)
	if err != nil {
		t.Fatal(err)
	}
	// Straight to Azurite, which checks no roles.
	svc, err := service.NewClient(e.env.BlobURL("custacct1")+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	st, ex := now.Add(-time.Minute).Format(sas.TimeFormat), now.Add(time.Hour).Format(sas.TimeFormat)
	udc, err := svc.GetUserDelegationCredential(context.Background(), service.KeyInfo{Start: &st, Expiry: &ex}, nil)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPS, ExpiryTime: now.Add(30 * time.Minute), Permissions: sasPermissions, ContainerName: c}.SignWithUserDelegation(udc)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithNoCredential(e.env.BlobURL("custacct1")+"/"+c+"?"+qp.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "SAS signed through a path-style URL", uploadErr(context.Background(), cc, "x"), bloberror.AuthorizationFailure)
}

// TestKeyCache: bounded, least recently used out; a fetch that started before a drop
// does not store its key.
func TestKeyCache(t *testing.T) {
	now := time.Now()
	r := credential.SASRequest{Start: now.Add(-5 * time.Minute), Expiry: now.Add(time.Hour)}
	key := func() *delegationKey {
		return &delegationKey{start: now.Add(-10 * time.Minute), expiry: now.Add(24 * time.Hour)}
	}
	id := func(account string) cacheKey {
		return cacheKeyOf(account, credential.SignerIdentity{TenantID: custTenant, AppID: "app"})
	}
	c := newKeyCache(2)
	for _, acct := range []string{"a", "b"} {
		c.settle(id(acct), 0, key(), nil, true)
	}
	if k, _, _ := c.lookup(id("a"), r); k == nil { // a is now the most recently used
		t.Fatal("a missing")
	}
	c.settle(id("c"), 0, key(), nil, true)
	if c.len() != 2 {
		t.Errorf("%d entries, want 2", c.len())
	}
	for acct, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if k, _, _ := c.lookup(id(acct), r); (k != nil) != want {
			t.Errorf("%s cached: %v, want %v", acct, k != nil, want)
		}
	}

	// A drop while a fetch runs: its key is not stored, and the next fetch is fresh.
	_, gen, _ := c.lookup(id("d"), r)
	c.drop(id("d"))
	c.settle(id("d"), gen, key(), nil, true)
	if k, _, fresh := c.lookup(id("d"), r); k != nil || !fresh {
		t.Errorf("after a drop during the fetch: cached %v, fresh %v; want none, fresh", k != nil, fresh)
	}
	_, gen, _ = c.lookup(id("d"), r)
	c.settle(id("d"), gen, key(), nil, true)
	if k, _, fresh := c.lookup(id("d"), r); k == nil || fresh {
		t.Errorf("after the next fetch: cached %v, fresh %v; want cached, not fresh", k != nil, fresh)
	}

	// A key that does not outlive the SAS by the margin does not cover it.
	short := &delegationKey{start: now.Add(-10 * time.Minute), expiry: r.Expiry.Add(KeyReuseMargin - time.Second)}
	if short.covers(r) {
		t.Error("a key expiring within the margin after the SAS covers it")
	}
	late := &delegationKey{start: now, expiry: now.Add(24 * time.Hour)}
	if late.covers(r) {
		t.Error("a key starting after the SAS covers it")
	}
	if fmt.Sprint(key()) != "REDACTED" {
		t.Error("a key prints")
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	dns := &url.Error{Op: "Post", URL: "https://x.blob.localhost/", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "x.blob.localhost", IsNotFound: true}}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for name, tc := range map[string]struct {
		err         error
		code        string
		kind        error
		noProvider  bool
		unavailable bool
	}{
		"dns":       {err: dns, code: CodeAccountNotFound},
		"refused":   {err: refused, kind: credential.ErrUnavailable},
		"deadline":  {err: fmt.Errorf("get key: %w", context.DeadlineExceeded), kind: credential.ErrUnavailable},
		"cancelled": {err: context.Canceled, noProvider: true},
		"other":     {err: errors.New("boom"), noProvider: true},
	} {
		got := classify(ctx, tc.err)
		var pe *credential.ProviderError
		if ok := errors.As(got, &pe); ok == tc.noProvider {
			t.Errorf("%s: %v, ProviderError %v", name, got, ok)
			continue
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: the cause is lost", name)
		}
		if pe != nil && (pe.Code != tc.code || pe.Kind != tc.kind) {
			t.Errorf("%s: code %q kind %v, want %q %v", name, pe.Code, pe.Kind, tc.code, tc.kind)
		}
	}
}

// BenchmarkContainerSAS: a SAS from a warm key cache (one HMAC) against one that fetches
// a key every time (a round trip through the local front to Azurite), in one run.
func BenchmarkContainerSAS(b *testing.B) {
	e := newSASEnv(b)
	a := e.newApp(b, true)
	e.grant(b, a.spObjectID, localazure.RoleBlobDataContributor, accountScope("custacct1", resourceRG))
	c := e.createContainer(b, "custacct1", "")
	ctx := context.Background()
	for _, bc := range []struct {
		name    string
		noCache bool
	}{{"cached", false}, {"uncached", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s, rec, _ := e.signer(b, SignerOptions{NoCache: bc.noCache})
			if _, err := s.ContainerSAS(ctx, request(time.Now(), "custacct1", c, appIdentity(a))); err != nil {
				b.Fatal(err) // warms the key cache and the token
			}
			before := rec.keyFetches()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.ContainerSAS(ctx, request(time.Now(), "custacct1", c, appIdentity(a))); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(rec.keyFetches()-before)/float64(b.N), "fetches/op")
		})
	}
}
