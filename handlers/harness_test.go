package handlers

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/clocktest"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

const (
	testIssuer   = "azcreds-test"
	testAudience = "azcreds-api"
	homeTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	miObjectID   = "5b0f0c8e-8f6c-4a53-9d1a-3c2e1f0a9b7d"
	// testAPIApp is the platform API's app registration: the audience of workload
	// identities' Entra tokens, whose issuer authority is entraAuthority.
	testAPIApp     = "bf01b0aa-723e-4500-96ee-1bc388018396"
	entraAuthority = "https://login.microsoftonline.com/"
)

// harness is the API and the queue functions on one port, as the Functions host calls
// them, over the domain on in-memory ports (internal/credential/credentialtest): Graph,
// Entra and blob signing are tested through their real clients in their own packages,
// storage by the store contract that the in-memory store passes too.
type harness struct {
	t          *testing.T
	srv        *httptest.Server
	store      *credentialtest.Store
	sched      *credentialtest.Scheduler
	dir        *credentialtest.Directory
	clock      *clocktest.Clock
	signer     *credentialtest.Signer
	containers *credentialtest.Containers
	minter     *auth.Minter
	other      *auth.Minter // signs with a key the API does not trust
	// signingKey and publicKey are the PEM key pair the API trusts, for hand-made tokens.
	signingKey, publicKey []byte
	// ports and cfg are what the domain was wired with.
	ports credentialtest.Ports
	cfg   credential.Config
	// domain runs background jobs the way the queue functions do.
	domain *credentialtest.Domain
	// entra signs workload identities' tokens as Entra would: the API fetches its key from
	// the harness's own keys endpoint.
	entra *rsa.PrivateKey
	kid   string
	// logs holds the API's log lines (JSON).
	logs *syncBuffer
}

func newHarness(t *testing.T, opts ...func(*credential.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, credentialtest.Limits{}, nil, opts...)
}

// newLimitedHarness is newHarness with per-organization limits on the store.
func newLimitedHarness(t *testing.T, limits credentialtest.Limits, opts ...func(*credential.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, limits, nil, opts...)
}

// newHarnessWith is newHarness with per-organization limits on the store, whose domain's
// ports wrap changes first; wrap may be nil.
func newHarnessWith(t *testing.T, limits credentialtest.Limits, wrap func(*credentialtest.Ports), opts ...func(*credential.Config)) *harness {
	t.Helper()
	fake := credentialtest.NewFakes(credentialtest.WithLimits(limits))
	cfg := credential.Config{HomeTenantID: homeTenant, ManagedIdentityObjectID: miObjectID,
		EnvironmentDefault: credential.EnvironmentDefault{Account: "platformacct", ContainerPrefix: "lake-", Prefix: "lake"},
		APIAppID:           testAPIApp, WorkloadIdentityCacheTTL: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	ports := fake.Ports()
	if wrap != nil {
		wrap(&ports)
	}
	domain := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: ports, Now: fake.Clock.Now})
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	key, pub := testKey(t)
	verifier, err := auth.NewVerifier(auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: pub, Now: fake.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := auth.NewMinter(key, testIssuer, testAudience, fake.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := testKey(t)
	other, err := auth.NewMinter(otherKey, testIssuer, testAudience, fake.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	// Entra's keys endpoint, publishing the one key the harness signs workload tokens with;
	// workload identities are on when the domain knows the API's app id.
	entraKey, _ := testKey(t)
	published, err := auth.NewMinter(entraKey, "entra", testAPIApp, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(published.JWKS())
	}))
	t.Cleanup(keys.Close)
	var entra *auth.EntraVerifier
	if cfg.APIAppID != "" {
		entra, err = auth.NewEntraVerifier(auth.EntraConfig{Audience: cfg.APIAppID, IssuerAuthority: entraAuthority,
			KeysURL: keys.URL + "/common/discovery/v2.0/keys", HTTPClient: keys.Client(), Now: fake.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The API and the queue functions on one port, as the Functions host calls them.
	api := New(domain.Onboarding, domain.Issuance, domain.WorkloadIdentities, auth.NewAuthenticator(verifier, entra), log, WithHealthLog(domain.Health))
	srv := httptest.NewServer(Compose(api, NewInvoker(domain.Runner, log)))
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, store: fake.Store, sched: fake.Scheduler, dir: fake.Directory, clock: fake.Clock,
		signer: fake.Signer, containers: fake.Containers, minter: minter, other: other, signingKey: key, publicKey: pub,
		ports: ports, cfg: cfg, domain: domain, entra: rsaKey(t, entraKey), kid: published.KeyID(), logs: logs}
}

// rsaKey parses a PKCS #8 PEM private key.
func rsaKey(t *testing.T, p []byte) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(p)
	if block == nil {
		t.Fatal("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every log line written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
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
	resp, err := apiCheck.Client(h.srv.Client()).Do(req)
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
// written by the store.
func (h *harness) advance(org, id string, ev credential.Event, change func(*credential.Credential)) {
	h.t.Helper()
	o := credentialtest.Onboarder{T: h.t, Org: org, Store: h.store, Now: h.clock.Now}
	o.Advance(id, ev, change)
}

// jobs takes the queued jobs of kind that are due, as a queue would deliver them now.
func (h *harness) jobs(kind credential.JobKind) []credential.Job { return h.sched.Due(kind) }

// failing is the Fault of a fake that fails every call with err from now on; a nil err
// clears it.
func failing(err error) credentialtest.Fault { return credentialtest.Fault{Times: -1, Err: err} }

var errGraphDown = errors.Join(credential.ErrUnavailable, errors.New("graph answered 503"))
