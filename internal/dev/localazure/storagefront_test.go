package localazure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/clocktest"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// The front's tests run against the Azurite of `make test`: what the front forwards must
// really work there, and what it refuses must never reach it.

const (
	frontAccount = "custacct1"
	frontRG      = "rg-data"
	msVersion    = "2023-11-03"
	// frontPropagation is short: the fixture's clock must not run more than five minutes
	// ahead of Azurite's, which refuses tokens that are not yet valid by its own clock.
	frontPropagation = 10 * time.Second
)

type frontFixture struct {
	*fixture
	env   testenv.Env
	front *httptest.Server
	key   []byte // frontAccount's shared key
}

// newFrontFixture serves a stand-in and its storage front over TLS in front of the test
// Azurite, with frontAccount registered to the customer tenant. The clock starts at the
// real time: Azurite checks the lifetime of the tokens it is forwarded against its own
// clock.
func newFrontFixture(t *testing.T) *frontFixture {
	t.Helper()
	env := testenv.Azurite(t)
	c := clocktest.New(time.Now())
	f := newFixture(t, func(cfg *Config) { cfg.Now = c.Now; cfg.PropagationDelay = frontPropagation })
	f.clock = c
	h, err := f.s.StorageFront(StorageFrontConfig{Azurite: env.BlobEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewTLSServer(h)
	t.Cleanup(front.Close)
	key, err := base64.StdEncoding.DecodeString(env.Accounts[frontAccount])
	if err != nil || len(key) == 0 {
		t.Fatalf("the test Azurite has no key for %s", frontAccount)
	}
	if _, _, err := f.s.RegisterStorageAccount(StorageAccount{Name: frontAccount, SubscriptionID: subscription, ResourceGroup: frontRG, TenantID: custTenant}); err != nil {
		t.Fatal(err)
	}
	return &frontFixture{fixture: f, env: env, front: front, key: key}
}

// use points the fixture's helpers at a subtest's t until the returned func restores the
// parent's.
func (f *frontFixture) use(t *testing.T) (restore func()) {
	parent := f.t
	f.t = t
	return func() { f.t = parent }
}

// principal is a customer-tenant service principal with a storage token.
type principal struct {
	objectID, token string
}

// newPrincipal registers an app, installs its service principal in tenant and signs in
// there for Azure Storage, all through the stand-in's endpoints.
func (f *frontFixture) newPrincipal(tenant string) principal {
	f.t.Helper()
	app := f.createApp("storage-" + testenv.UniqueName(f.t, "p"))
	if tenant != custTenant && tenant != homeTenant {
		f.mustStatus(f.do(http.MethodPost, "/control/tenants", map[string]string{"id": tenant}, nil), http.StatusCreated)
	}
	id := f.installSP(tenant, app.appID)
	r := f.mustStatus(f.do(http.MethodPost, "/"+tenant+"/oauth2/v2.0/token",
		tokenForm(app.appID, f.miToken(TokenExchangeAudience), StorageAudience+"/.default"), nil), http.StatusOK)
	return principal{objectID: id, token: r.json(f.t)["access_token"].(string)}
}

func (f *frontFixture) scope(container string) string {
	s := "/subscriptions/" + subscription + "/resourceGroups/" + frontRG + "/providers/Microsoft.Storage/storageAccounts/" + frontAccount
	if container != "" {
		s += "/blobServices/default/containers/" + container
	}
	return s
}

// grant gives p role at the account (container "") or at a container, effective at once.
func (f *frontFixture) grant(p principal, role Role, container string) {
	f.t.Helper()
	if _, err := f.s.GrantRole(p.objectID, string(role), f.scope(container)); err != nil {
		f.t.Fatal(err)
	}
	f.clock.Advance(frontPropagation + time.Second)
}

// azurite sends a shared-key request straight to Azurite, path-style.
func (f *frontFixture) azurite(method, path string, body []byte, header map[string]string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.env.BlobURL(frontAccount)+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", msVersion)
	req.Header.Set("Authorization", "SharedKey "+frontAccount+":"+sharedKeySignature(req, frontAccount, f.key))
	return send(f.t, http.DefaultClient, req)
}

// container creates a container on Azurite with a blob in it, removed after the test.
func (f *frontFixture) container() string {
	f.t.Helper()
	name := testenv.UniqueName(f.t, "front")
	r := f.azurite(http.MethodPut, "/"+name+"?restype=container", nil, nil)
	if r.status != http.StatusCreated {
		f.t.Fatalf("create container %s: %d %s", name, r.status, r.body)
	}
	f.t.Cleanup(func() { f.azurite(http.MethodDelete, "/"+name+"?restype=container", nil, nil) })
	r = f.azurite(http.MethodPut, "/"+name+"/seed/blob.txt", []byte("seed"), map[string]string{"x-ms-blob-type": "BlockBlob"})
	if r.status != http.StatusCreated {
		f.t.Fatalf("seed blob: %d %s", r.status, r.body)
	}
	return name
}

// call sends a request to the front for frontAccount's product-style host.
func (f *frontFixture) call(method, pathAndQuery, authorization string, body []byte, header map[string]string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.front.URL+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = frontAccount + ".blob.localhost:10443"
	req.ContentLength = int64(len(body))
	req.Header.Set("x-ms-version", msVersion)
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return send(f.t, f.front.Client(), req)
}

func send(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// blobOp is one data-plane call of the RBAC table.
type blobOp struct {
	name   string
	method string
	path   string // {c} is the container
	body   []byte
	header map[string]string
	ok     int // status when allowed
}

func udkBody() []byte {
	now := time.Now().UTC()
	return []byte(`<?xml version="1.0" encoding="utf-8"?><KeyInfo><Start>` + now.Add(-time.Minute).Format("2006-01-02T15:04:05Z") +
		`</Start><Expiry>` + now.Add(time.Hour).Format("2006-01-02T15:04:05Z") + `</Expiry></KeyInfo>`)
}

var (
	opUDK        = blobOp{"user delegation key", http.MethodPost, "/?restype=service&comp=userdelegationkey", nil, nil, http.StatusOK}
	opGet        = blobOp{"get blob", http.MethodGet, "/{c}/seed/blob.txt", nil, nil, http.StatusOK}
	opHead       = blobOp{"head blob", http.MethodHead, "/{c}/seed/blob.txt", nil, nil, http.StatusOK}
	opList       = blobOp{"list blobs", http.MethodGet, "/{c}?restype=container&comp=list&prefix=seed/", nil, nil, http.StatusOK}
	opProperties = blobOp{"container properties", http.MethodGet, "/{c}?restype=container", nil, nil, http.StatusOK}
	opPut        = blobOp{"put blob", http.MethodPut, "/{c}/probe/new.txt", []byte("hello"), map[string]string{"x-ms-blob-type": "BlockBlob"}, http.StatusCreated}
	opDelete     = blobOp{"delete blob", http.MethodDelete, "/{c}/probe/new.txt", nil, nil, http.StatusAccepted}
	allOps       = []blobOp{opUDK, opGet, opHead, opList, opProperties, opPut, opDelete}
)

func (f *frontFixture) run(op blobOp, container, authorization string) response {
	f.t.Helper()
	body := op.body
	if op.method == http.MethodPost && op.path == opUDK.path {
		body = udkBody()
	}
	return f.call(op.method, strings.ReplaceAll(op.path, "{c}", container), authorization, body, op.header)
}

var storageMessage = regexp.MustCompile(`^(.+)\nRequestId:([0-9a-f-]{36})\nTime:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$`)

var frontTime = regexp.MustCompile(`\nTime:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)

// storageError checks a refusal has Azure's shape and returns its code and message.
func storageError(t *testing.T, r response, head bool) (code, message string) {
	t.Helper()
	code = r.header.Get("x-ms-error-code")
	id := r.header.Get("x-ms-request-id")
	if code == "" || id == "" {
		t.Fatalf("refusal lacks x-ms-error-code or x-ms-request-id: %v", r.header)
	}
	if head {
		return code, ""
	}
	if fromAzurite := strings.HasPrefix(r.header.Get("Server"), "Azurite"); !fromAzurite &&
		!bytes.HasPrefix(r.body, []byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>`)) {
		t.Errorf("body does not start with the XML declaration and <Error>: %s", r.body)
	}
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if err := xml.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body is not a storage error: %v\n%s", err, r.body)
	}
	if !strings.HasPrefix(r.header.Get("Server"), "Azurite") && !frontTime.MatchString(e.Message) {
		t.Errorf("message %q: want Azure's Time with seven fractional digits", e.Message)
	}
	m := storageMessage.FindStringSubmatch(e.Message)
	if e.Code != code || m == nil || m[2] != id {
		t.Errorf("error body code %q message %q; want code %q and RequestId %s then Time", e.Code, e.Message, code, id)
		return code, e.Message
	}
	return code, m[1]
}

// expect runs ops as authorization and checks that the allowed ones succeed on Azurite and
// the others get 403 AuthorizationPermissionMismatch from the front.
func (f *frontFixture) expect(container, authorization string, allowed map[string]bool, ops ...blobOp) {
	f.t.Helper()
	for _, op := range ops {
		r := f.run(op, container, authorization)
		if allowed[op.name] {
			if r.status != op.ok {
				f.t.Errorf("%s: status %d, want %d (allowed); body %s", op.name, r.status, op.ok, r.body)
			}
			if r.header.Get("x-ms-request-id") == "" {
				f.t.Errorf("%s: no x-ms-request-id from Azurite", op.name)
			}
			continue
		}
		if r.status != http.StatusForbidden {
			f.t.Errorf("%s: status %d, want 403 (denied); body %s", op.name, r.status, r.body)
			continue
		}
		code, msg := storageError(f.t, r, op.method == http.MethodHead)
		if code != codeAuthorizationPermissionMismatch || (msg != "" && msg != msgPermissionMismatch) {
			f.t.Errorf("%s: refused with %s %q, want %s", op.name, code, msg, codeAuthorizationPermissionMismatch)
		}
	}
}

func names(ops ...blobOp) map[string]bool {
	m := map[string]bool{}
	for _, op := range ops {
		m[op.name] = true
	}
	return m
}

func TestStorageFrontRBAC(t *testing.T) {
	f := newFrontFixture(t)
	c := f.container()

	t.Run("no role", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		f.expect(c, "Bearer "+p.token, nil, allOps...)
	})
	t.Run("grant not yet propagated, then propagated", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		if _, err := f.s.GrantRole(p.objectID, string(RoleBlobDataContributor), f.scope("")); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(frontPropagation - time.Second)
		f.expect(c, "Bearer "+p.token, nil, opUDK, opGet, opPut)
		f.clock.Advance(2 * time.Second)
		f.expect(c, "Bearer "+p.token, names(opUDK, opGet, opPut, opDelete), opUDK, opGet, opPut, opDelete)
	})
	t.Run("reader: reads, no writes", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		f.grant(p, RoleBlobDataReader, "")
		f.expect(c, "Bearer "+p.token, names(opUDK, opGet, opHead, opList, opProperties), allOps...)
	})
	t.Run("contributor at the account: everything", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		f.grant(p, RoleBlobDataContributor, "")
		f.expect(c, "Bearer "+p.token, names(allOps...), allOps...)
		r := f.run(opGet, c, "Bearer "+p.token)
		if string(r.body) != "seed" || r.header.Get("Server") == "" {
			t.Errorf("get blob through the front: %q, Server %q", r.body, r.header.Get("Server"))
		}
	})
	t.Run("owner at the subscription: everything", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		if _, err := f.s.GrantRole(p.objectID, string(RoleBlobDataOwner), "/subscriptions/"+subscription); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(frontPropagation + time.Second)
		f.expect(c, "Bearer "+p.token, names(allOps...), allOps...)
	})
	t.Run("contributor at container scope: data yes, user delegation key no", func(t *testing.T) {
		defer f.use(t)()
		other := f.container()
		p := f.newPrincipal(custTenant)
		f.grant(p, RoleBlobDataContributor, c)
		f.expect(c, "Bearer "+p.token, names(opGet, opHead, opList, opProperties, opPut, opDelete), allOps...)
		f.expect(other, "Bearer "+p.token, nil, opGet, opList, opPut)
	})
	t.Run("revoked, until the revoke propagates", func(t *testing.T) {
		defer f.use(t)()
		p := f.newPrincipal(custTenant)
		f.grant(p, RoleBlobDataContributor, "")
		if _, err := f.s.RevokeRoleOf(p.objectID, string(RoleBlobDataContributor), f.scope("")); err != nil {
			t.Fatal(err)
		}
		f.expect(c, "Bearer "+p.token, names(opGet), opGet)
		f.clock.Advance(frontPropagation + time.Second)
		f.expect(c, "Bearer "+p.token, nil, opGet)
	})
}

// TestStorageFrontCreateContainer: creating a container is a write on that container, as
// Azure's containers/write action is: a Contributor (or Owner) at the account may, a
// Reader may not, nor a Contributor of another container. The backend's managed identity
// creates each organization's environment-default container this way.
func TestStorageFrontCreateContainer(t *testing.T) {
	f := newFrontFixture(t)
	other := f.container()
	create := func(p principal) (string, response) {
		name := testenv.UniqueName(f.t, "made")
		f.t.Cleanup(func() { f.azurite(http.MethodDelete, "/"+name+"?restype=container", nil, nil) })
		return name, f.call(http.MethodPut, "/"+name+"?restype=container", "Bearer "+p.token, nil, nil)
	}
	exists := func(name string) bool {
		return f.azurite(http.MethodGet, "/"+name+"?restype=container", nil, nil).status == http.StatusOK
	}
	for _, tc := range []struct {
		name      string
		role      Role
		container string // the grant's container; "" for the account
		allowed   bool
	}{
		{"no role", "", "", false},
		{"reader at the account", RoleBlobDataReader, "", false},
		{"contributor of another container", RoleBlobDataContributor, other, false},
		{"contributor at the account", RoleBlobDataContributor, "", true},
		{"owner at the account", RoleBlobDataOwner, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer f.use(t)()
			p := f.newPrincipal(custTenant)
			if tc.role != "" {
				f.grant(p, tc.role, tc.container)
			}
			name, r := create(p)
			if tc.allowed {
				if r.status != http.StatusCreated || !exists(name) {
					t.Errorf("status %d, exists %v; want 201 and the container; body %s", r.status, exists(name), r.body)
				}
				return
			}
			if r.status != http.StatusForbidden || exists(name) {
				t.Fatalf("status %d, exists %v; want 403 and no container; body %s", r.status, exists(name), r.body)
			}
			if code, _ := storageError(t, r, false); code != codeAuthorizationPermissionMismatch {
				t.Errorf("refused with %s", code)
			}
		})
	}
}

// TestStorageFrontForwardsAzuriteAnswers: what Azurite answers reaches the client as it
// is, its request id included.
func TestStorageFrontForwardsAzuriteAnswers(t *testing.T) {
	f := newFrontFixture(t)
	p := f.newPrincipal(custTenant)
	f.grant(p, RoleBlobDataContributor, "")

	missing := testenv.UniqueName(t, "missing")
	r := f.call(http.MethodGet, "/"+missing+"?restype=container&comp=list", "Bearer "+p.token, nil, nil)
	if r.status != http.StatusNotFound {
		t.Fatalf("list a missing container: %d %s", r.status, r.body)
	}
	if code, _ := storageError(t, r, false); code != "ContainerNotFound" {
		t.Errorf("code %q, want ContainerNotFound from Azurite", code)
	}
	if !strings.HasPrefix(r.header.Get("Server"), "Azurite-Blob") {
		t.Errorf("Server %q: want Azurite's answer", r.header.Get("Server"))
	}

	// Get User Delegation Key really runs on Azurite and answers its XML.
	r = f.run(opUDK, "", "Bearer "+p.token)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<SignedOid>")) {
		t.Errorf("user delegation key: %d %s", r.status, r.body)
	}
}

// containerSAS is a service SAS for a container, signed with the account key (version
// 2020-12-06 string-to-sign).
func containerSAS(account, container string, key []byte, permissions string) url.Values {
	now := time.Now().UTC()
	st, se, sv := now.Add(-5*time.Minute).Format("2006-01-02T15:04:05Z"), now.Add(time.Hour).Format("2006-01-02T15:04:05Z"), "2020-12-06"
	toSign := strings.Join([]string{permissions, st, se, "/blob/" + account + "/" + container, "", "", "", sv, "c", "", "", "", "", "", "", ""}, "\n")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toSign))
	return url.Values{"sv": {sv}, "st": {st}, "se": {se}, "sr": {"c"}, "sp": {permissions},
		"sig": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
}

// TestStorageFrontPassThrough: SAS and shared key requests are Azurite's to judge, even
// with a bearer token of a principal without any role.
func TestStorageFrontPassThrough(t *testing.T) {
	f := newFrontFixture(t)
	c := f.container()
	noRole := f.newPrincipal(custTenant)

	sas := containerSAS(frontAccount, c, f.key, "rl")
	r := f.call(http.MethodGet, "/"+c+"/seed/blob.txt?"+sas.Encode(), "", nil, nil)
	if r.status != http.StatusOK || string(r.body) != "seed" {
		t.Errorf("read with a SAS: %d %s", r.status, r.body)
	}
	r = f.call(http.MethodGet, "/"+c+"?restype=container&comp=list&"+sas.Encode(), "Bearer "+noRole.token, nil, nil)
	if r.status != http.StatusOK {
		t.Errorf("list with a SAS and a role-less bearer token: %d %s", r.status, r.body)
	}
	// The SAS grants read and list only: Azurite, not the front, refuses the write.
	r = f.call(http.MethodPut, "/"+c+"/sas.txt?"+sas.Encode(), "", []byte("x"), map[string]string{"x-ms-blob-type": "BlockBlob"})
	if r.status != http.StatusForbidden || !strings.HasPrefix(r.header.Get("Server"), "Azurite-Blob") {
		t.Errorf("write with a read-only SAS: %d (Server %q) %s, want Azurite's 403", r.status, r.header.Get("Server"), r.body)
	}
	bad := containerSAS(frontAccount, c, []byte("not the key"), "rl")
	r = f.call(http.MethodGet, "/"+c+"/seed/blob.txt?"+bad.Encode(), "", nil, nil)
	if r.status != http.StatusForbidden || !strings.HasPrefix(r.header.Get("Server"), "Azurite-Blob") {
		t.Errorf("forged SAS: %d (Server %q), want Azurite's 403", r.status, r.header.Get("Server"))
	}

	// Shared key, signed for the product-style URL the client used.
	req, err := http.NewRequest(http.MethodGet, f.front.URL+"/"+c+"?restype=container&comp=list", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = frontAccount + ".blob.localhost:10443"
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", msVersion)
	req.Header.Set("Authorization", "SharedKey "+frontAccount+":"+sharedKeySignature(req, frontAccount, f.key))
	r = send(t, f.front.Client(), req)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("seed/blob.txt")) {
		t.Errorf("list with a shared key: %d %s", r.status, r.body)
	}
}

func TestStorageFrontFirewall(t *testing.T) {
	f := newFrontFixture(t)
	c := f.container()
	p := f.newPrincipal(custTenant)
	f.grant(p, RoleBlobDataContributor, "")

	r := f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts/"+frontAccount+"/firewall", map[string]bool{"enabled": true}, nil), http.StatusOK)
	if m := r.json(t); m["account"] != frontAccount || m["enabled"] != true {
		t.Errorf("firewall on: %v", m)
	}
	if m := f.mustStatus(f.do(http.MethodGet, "/control/storageAccounts/"+frontAccount+"/firewall", nil, nil), http.StatusOK).json(t); m["enabled"] != true {
		t.Errorf("firewall state: %v", m)
	}
	sas := containerSAS(frontAccount, c, f.key, "rl")
	calls := map[string]func() response{
		"bearer list": func() response { return f.run(opList, c, "Bearer "+p.token) },
		"bearer head": func() response { return f.run(opHead, c, "Bearer "+p.token) },
		"bearer udk":  func() response { return f.run(opUDK, c, "Bearer "+p.token) },
		"bearer put":  func() response { return f.run(opPut, c, "Bearer "+p.token) },
		"sas":         func() response { return f.call(http.MethodGet, "/"+c+"/seed/blob.txt?"+sas.Encode(), "", nil, nil) },
		"anonymous":   func() response { return f.call(http.MethodGet, "/"+c+"/seed/blob.txt", "", nil, nil) },
		"bad token":   func() response { return f.run(opList, c, "Bearer nonsense") },
	}
	for name, call := range calls {
		r := call()
		if r.status != http.StatusForbidden {
			t.Errorf("%s behind the firewall: %d %s", name, r.status, r.body)
			continue
		}
		code, msg := storageError(t, r, name == "bearer head")
		if code != codeAuthorizationFailure || (msg != "" && msg != msgAuthorizationFail) {
			t.Errorf("%s behind the firewall: %s %q, want %s %q", name, code, msg, codeAuthorizationFailure, msgAuthorizationFail)
		}
	}

	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts/"+frontAccount+"/firewall", map[string]bool{"enabled": false}, nil), http.StatusOK)
	f.expect(c, "Bearer "+p.token, names(opList), opList)

	// Control errors.
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts/Bad_Name/firewall", map[string]bool{"enabled": true}, nil), http.StatusBadRequest)
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts/"+frontAccount+"/firewall", map[string]string{}, nil), http.StatusBadRequest)
	f.mustStatus(f.do(http.MethodPost, "/control/storageAccounts/"+frontAccount+"/firewall", map[string]any{"enabled": true, "x": 1}, nil), http.StatusBadRequest)
}

func TestStorageFrontAuthentication(t *testing.T) {
	f := newFrontFixture(t)
	c := f.container()
	p := f.newPrincipal(custTenant)
	f.grant(p, RoleBlobDataContributor, "")
	stranger := f.newPrincipal(otherTenant)
	// A token signed by another key, with every claim right.
	other := newFixture(t, func(cfg *Config) { cfg.Now = f.clock.Now })
	forged, _, err := other.s.issue(V1Issuer(custTenant), StorageAudience, custTenant, p.objectID, "", "1.0", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name          string
		authorization string
		status        int
		code          string
	}{
		{"not a JWT", "Bearer nonsense", http.StatusUnauthorized, codeInvalidAuthenticationInfo},
		{"signed by someone else", "Bearer " + forged, http.StatusUnauthorized, codeInvalidAuthenticationInfo},
		{"Graph token", "Bearer " + f.miToken(GraphAudience), http.StatusUnauthorized, codeInvalidAuthenticationInfo},
		{"token of another tenant", "Bearer " + stranger.token, http.StatusUnauthorized, codeInvalidAuthenticationInfo},
		{"empty bearer", "Bearer ", http.StatusForbidden, codeAuthenticationFailed},
		{"basic", "Basic dXNlcjpwYXNz", http.StatusForbidden, codeAuthenticationFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer f.use(t)()
			r := f.run(opList, c, tc.authorization)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; %s", r.status, tc.status, r.body)
			}
			if code, _ := storageError(t, r, false); code != tc.code {
				t.Errorf("code %s, want %s", code, tc.code)
			}
			if tc.status == http.StatusUnauthorized && !strings.Contains(r.header.Get("WWW-Authenticate"), "login.microsoftonline.com/"+custTenant+"/oauth2/authorize") {
				t.Errorf("WWW-Authenticate %q: want the account tenant's authority", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		defer f.use(t)()
		f.clock.Advance(2 * time.Hour)
		r := f.run(opList, c, "Bearer "+p.token)
		if code, _ := storageError(t, r, false); r.status != http.StatusUnauthorized || code != codeInvalidAuthenticationInfo ||
			!bytes.Contains(r.body, []byte("The token is expired")) {
			t.Errorf("expired token: %d %s", r.status, r.body)
		}
	})

	t.Run("not a product-style host", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, f.front.URL+"/"+frontAccount+"/"+c+"?restype=container&comp=list", nil)
		if err != nil {
			t.Fatal(err)
		}
		r := send(t, f.front.Client(), req)
		if code, _ := storageError(t, r, false); r.status != http.StatusBadRequest || code != codeInvalidURI {
			t.Errorf("path-style request: %d %s", r.status, r.body)
		}
	})
}

func TestClassifyBlobOperation(t *testing.T) {
	cases := []struct {
		method, target string
		want           blobOperation
	}{
		{"POST", "/?restype=service&comp=userdelegationkey", blobOperation{"get_user_delegation_key", "", false}},
		{"GET", "/?comp=list", blobOperation{"list_containers", "", false}},
		{"PUT", "/?restype=service&comp=properties", blobOperation{"account_put_properties", "", true}},
		{"GET", "/c1?restype=container&comp=list&prefix=a/", blobOperation{"list_blobs", "c1", false}},
		{"GET", "/c1?restype=container", blobOperation{"container_get", "c1", false}},
		{"PUT", "/c1?restype=container", blobOperation{"container_put", "c1", true}},
		{"HEAD", "/c1/a/b.txt", blobOperation{"blob_head", "c1", false}},
		{"PUT", "/c1/a/b.txt?comp=block&blockid=AA", blobOperation{"blob_put_block", "c1", true}},
		{"DELETE", "/c1/a/b.txt", blobOperation{"blob_delete", "c1", true}},
		{"POST", "/c1/a/b.csv?comp=query", blobOperation{"blob_post_query", "c1", false}},
	}
	for _, tc := range cases {
		req := httptest.NewRequestWithContext(context.Background(), tc.method, tc.target, nil)
		if got := classifyBlobOperation(req); got != tc.want {
			t.Errorf("%s %s = %+v, want %+v", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestAccountFromHost(t *testing.T) {
	for host, want := range map[string]string{
		"custacct1.blob.localhost:10443": "custacct1",
		"CustAcct1.blob.localhost":       "custacct1",
		"custacct1.blob.localhost.:1":    "custacct1",
		"127.0.0.1:10443":                "",
		"custacct1.queue.localhost:1":    "",
		"a.blob.localhost":               "",
		"x.y.blob.localhost":             "",
	} {
		got, ok := accountFromHost(host)
		if ok != (want != "") || got != want && ok {
			t.Errorf("accountFromHost(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}
