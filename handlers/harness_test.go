package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/message"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/store"
	"github.com/activeloopai/azcreds/internal/testenv"
)

const (
	testIssuer   = "azcreds-test"
	testAudience = "azcreds-api"
	homeTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	miObjectID   = "5b0f0c8e-8f6c-4a53-9d1a-3c2e1f0a9b7d"
)

// fakeDirectory stands in for Microsoft Graph in the API tests (Graph itself is tested
// through msgraph-sdk-go against the local stand-in). It keeps the apps it was asked to
// create, and its failure knobs make a step fail.
type fakeDirectory struct {
	mu         sync.Mutex
	apps       map[string]credential.App // by object id
	unique     map[string]string         // object id by unique name
	fics       map[string][]credential.FederatedCredential
	failCreate error
	failFIC    error
	failDelete error
}

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{apps: map[string]credential.App{}, unique: map[string]string{}, fics: map[string][]credential.FederatedCredential{}}
}

// CreateApp is an upsert by unique name, as Graph's is.
func (d *fakeDirectory) CreateApp(ctx context.Context, name, uniqueName string) (credential.App, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failCreate != nil {
		return credential.App{}, d.failCreate
	}
	if app, ok := d.byUniqueName(uniqueName); ok {
		return app, nil
	}
	app := credential.App{ObjectID: uuid.NewString(), AppID: uuid.NewString()}
	d.apps[app.ObjectID] = app
	d.unique[uniqueName] = app.ObjectID
	return app, nil
}

func (d *fakeDirectory) FindApp(ctx context.Context, uniqueName string) (credential.App, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	app, ok := d.byUniqueName(uniqueName)
	return app, ok, nil
}

func (d *fakeDirectory) byUniqueName(name string) (credential.App, bool) {
	app, ok := d.apps[d.unique[name]]
	return app, ok
}

func (d *fakeDirectory) AddFederatedCredential(ctx context.Context, objectID string, fc credential.FederatedCredential) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failFIC != nil {
		return d.failFIC
	}
	if _, ok := d.apps[objectID]; !ok {
		return credential.ErrNotFound
	}
	d.fics[objectID] = append(d.fics[objectID], fc)
	return nil
}

func (d *fakeDirectory) DeleteApp(ctx context.Context, objectID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failDelete != nil {
		return d.failDelete
	}
	delete(d.apps, objectID)
	delete(d.fics, objectID)
	return nil
}

func (d *fakeDirectory) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.apps)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is the API over real Table and Queue storage on Azurite.
type harness struct {
	t      *testing.T
	srv    *httptest.Server
	store  *store.Store
	queues *queue.Queues
	dir    *fakeDirectory
	clock  *clock
	minter *auth.Minter
	other  *auth.Minter // signs with a key the API does not trust
	calls  *callCounter // storage transactions (table and queue calls)
	signer *fakeSigner
	// containers stands in for the environment default's container creation.
	containers *fakeContainers
	// signingKey and publicKey are the PEM key pair the API trusts, for hand-made tokens.
	signingKey, publicKey []byte
	// table is the store's table through the real client, for reading every row.
	table *aztables.Client
	// domain runs background jobs the way the queue functions do.
	domain *credentialtest.Domain
}

// fakeSigner stands in for user delegation SAS signing (tested against Azurite in
// internal/azure/blob): it records what it was asked and can be made to fail.
type fakeSigner struct {
	mu       sync.Mutex
	requests []credential.SASRequest
	fail     error
}

func (f *fakeSigner) ContainerSAS(ctx context.Context, r credential.SASRequest) (credential.SAS, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	if f.fail != nil {
		return credential.SAS{}, f.fail
	}
	return credential.SAS{AccountURL: "https://" + r.Account + ".blob.core.windows.net", Token: credential.Secret("sv=2025-01-05&sig=fake")}, nil
}

// fakeContainers stands in for creating the environment default's containers (tested
// against Azurite in internal/azure/blob): it records what it was asked and can be made
// to fail.
type fakeContainers struct {
	mu    sync.Mutex
	asked []string // account/container, in order
	fail  error
}

func (f *fakeContainers) EnsureContainer(ctx context.Context, account, container string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, account+"/"+container)
	return f.fail
}

func (f *fakeContainers) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func (f *fakeContainers) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeSigner) last() credential.SASRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// callCounter is an azcore pipeline policy that counts the storage calls made.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

func newHarness(t *testing.T, opts ...func(*credential.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, store.Limits{}, nil, opts...)
}

// newLimitedHarness is newHarness with per-organization limits on the store.
func newLimitedHarness(t *testing.T, limits store.Limits, opts ...func(*credential.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, limits, nil, opts...)
}

// newHarnessWith is newHarness with per-organization limits on the store, whose service's
// adapters wrap changes first (to inject faults); wrap may be nil.
func newHarnessWith(t *testing.T, limits store.Limits, wrap func(*credentialtest.Ports), opts ...func(*credential.Config)) *harness {
	t.Helper()
	env := testenv.Azurite(t)
	ctx := context.Background()
	calls := &callCounter{}
	tables, err := aztables.NewServiceClientFromConnectionString(env.ConnString, &aztables.ClientOptions{
		ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{calls}}})
	if err != nil {
		t.Fatal(err)
	}
	tableName := testenv.UniqueName(t, "api")
	st, err := store.Open(ctx, tables, tableName, store.WithLimits(limits))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tables.DeleteTable(context.Background(), tableName, nil) })
	qsvc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, &azqueue.ClientOptions{
		ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{calls}}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := testenv.UniqueName(t, "q")
	clk := &clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	qs, err := queue.Open(ctx, qsvc, queue.Options{NamePrefix: prefix, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range message.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	dir := newFakeDirectory()
	log := slog.New(slog.DiscardHandler)
	signer, containers := &fakeSigner{}, &fakeContainers{}
	cfg := credential.Config{HomeTenantID: homeTenant, ManagedIdentityObjectID: miObjectID,
		EnvironmentDefault: credential.EnvironmentDefault{Account: "platformacct", ContainerPrefix: "lake-", Prefix: "lake"}}
	for _, o := range opts {
		o(&cfg)
	}
	ports := credentialtest.NewFakes().Ports()
	ports.Store, ports.Workspaces, ports.Health, ports.Scheduler, ports.Directory, ports.Signer, ports.Containers = st, st, st, qs, dir, signer, containers
	if wrap != nil {
		wrap(&ports)
	}
	domain := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: ports, Now: clk.Now})
	key, pub := testKey(t)
	verifier, err := auth.NewVerifier(auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: pub, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := auth.NewMinter(key, testIssuer, testAudience, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := testKey(t)
	other, err := auth.NewMinter(otherKey, testIssuer, testAudience, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	// The API and the queue functions on one port, as the Functions host calls them.
	srv := httptest.NewServer(Compose(New(domain.Onboarding, domain.Issuance, verifier, log), NewInvoker(domain.Runner, log)))
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, store: st, queues: qs, dir: dir, clock: clk, minter: minter, other: other, calls: calls, signer: signer, containers: containers,
		signingKey: key, publicKey: pub, table: tables.NewClient(tableName), domain: domain}
}

func testKey(t *testing.T) (private, public []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}

func (h *harness) token(orgs ...string) string {
	h.t.Helper()
	tok, err := h.minter.Mint("user-1", orgs, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// response is a finished request, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorBody(t *testing.T) errorDetail {
	t.Helper()
	var eb errorBody
	r.decode(t, &eb)
	return eb.Error
}

// call sends a request as a caller of org (token and header both for org).
func (h *harness) call(method, org, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, body, map[string]string{"Authorization": "Bearer " + h.token(org), OrgHeader: org})
}

func (h *harness) do(method, path string, body any, headers map[string]string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (h *harness) want(r response, status int) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// create makes a credential through the API and returns its detail.
func (h *harness) create(org, name, basePath string) detailView {
	h.t.Helper()
	r := h.call("POST", org, "/organizations/"+org+"/credentials",
		map[string]string{"name": name, "storage_type": "azure_federated", "base_path": basePath})
	h.want(r, http.StatusCreated)
	var d detailView
	r.decode(h.t, &d)
	return d
}

// advance moves a credential as a poller would: through the domain's transition table,
// written by the store (the pollers themselves arrive with background verification).
func (h *harness) advance(org, id string, ev credential.Event, change func(*credential.Credential)) {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.store.Get(ctx, org, id)
	if err != nil {
		h.t.Fatal(err)
	}
	to, err := credential.Next(c.State, ev)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &credential.EventRecord{Time: h.clock.Now(), From: c.State, To: to, Cause: ev, Generation: c.Generation}
	c.State = to
	if change != nil {
		change(c)
	}
	if err := h.store.Update(ctx, c, rec); err != nil {
		h.t.Fatal(err)
	}
}

// jobs drains the queue of kind and returns its jobs.
func (h *harness) jobs(kind credential.JobKind) []credential.Job {
	h.t.Helper()
	ctx := context.Background()
	var out []credential.Job
	n := int32(32)
	resp, err := h.queues.Client(kind).DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range resp.Messages {
		job, err := message.Decode(*m.MessageText)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, job)
		if _, err := h.queues.Client(kind).DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

var errGraphDown = errors.Join(credential.ErrUnavailable, errors.New("graph answered 503"))
