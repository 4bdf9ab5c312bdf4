package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/testenv"
	"github.com/activeloopai/azcreds/internal/wizard"
)

// binDir holds the binaries TestMain builds once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "azcreds-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		for _, b := range []struct{ out, pkg string }{
			{"handler", "github.com/activeloopai/azcreds"},
			{"localazure", "github.com/activeloopai/azcreds/cmd/localazure"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
			// Static, as `make package` builds for Azure: the same compilation serves both.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
				return 1
			}
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// Fixed directory objects of the test stand-in.
const (
	homeTenant     = "605e483c-150c-4d9a-a6c4-b96a0c0b5565"
	miClientID     = "670699dd-22cd-4f34-96b7-648a96a6d4b1"
	miObjectID     = "45ca475a-b96a-40e7-accf-c8a4bedbdf68"
	tenantA        = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	tenantB        = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
	subscriptionID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
	resourceGroup  = "lake-rg"
	issuer         = "azcreds-e2e"
	audience       = "azcreds-api"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a binary run for one test, stopped (SIGTERM) when the test ends.
type process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string // the file its stdout and stderr go to
}

func start(t testing.TB, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Env = append(os.Environ(), env...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.log = logFile.Name()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop ends the process gracefully (SIGTERM) and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process with SIGKILL: no clean-up at all.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitHTTP waits until url answers (any status).
func waitHTTP(t testing.TB, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited during start", p.name)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer on %s", p.name, url)
}

// standIn is a running stand-in with its storage front.
type standIn struct {
	url       string // https://127.0.0.1:port
	frontAddr string
	customer  *wizard.Customer
	proc      *process
}

func startStandIn(t testing.TB, env testenv.Env, propagation time.Duration) *standIn {
	t.Helper()
	addr, front := freeAddr(t), freeAddr(t)
	var accounts []string
	for name, key := range env.Accounts {
		accounts = append(accounts, name+":"+key)
	}
	p := start(t, "localazure", nil,
		"-addr", addr, "-storage-addr", front,
		"-cert", env.CertFile, "-key", filepath.Join(filepath.Dir(env.CertFile), "key.pem"),
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID,
		"-tenants", tenantA+","+tenantB, "-propagation", propagation.String(),
		"-azurite-blob", env.BlobEndpoint, "-accounts", strings.Join(accounts, ";"),
		"-platform-storage", testenv.DevAccount)
	s := &standIn{url: "https://" + addr, frontAddr: front, proc: p,
		customer: &wizard.Customer{ControlURL: "https://" + addr + "/control"}}
	waitHTTP(t, s.url+"/control/tenants", p)
	for _, account := range []string{"custacct1", "custacct2"} {
		if err := s.customer.RegisterStorageAccount(context.Background(), account, subscriptionID, resourceGroup); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// settings are the handler's windows, shortened for tests.
type settings struct {
	spWindow, spInterval, probeWindow, probeInterval, grace time.Duration
	storageAccount                                          string        // the handler's own storage (tables, queues)
	createGuard                                             time.Duration // when a create's guard runs; 0: 10 s
	// hostInvocations serves the Functions host's invocations and runs no worker or health
	// ticker (AZCREDS_LOCAL_INVOCATIONS), so that the test plays the host. The local stack
	// cannot run under FUNCTIONS_CUSTOMHANDLER_PORT (the handler refuses it there), so this
	// is how the host's protocol is exercised against it.
	hostInvocations bool
	// The per-organization limits (AZCREDS_MAX_CREDENTIALS, AZCREDS_MAX_WORKSPACES,
	// AZCREDS_CREATE_RATE); defaultSettings has the product's defaults, and a test that
	// creates more in one organization sets what its scenario needs.
	maxCredentials, maxWorkspaces int
	createRate                    string
}

func defaultSettings() settings {
	return settings{spWindow: 20 * time.Second, spInterval: time.Second, probeWindow: 25 * time.Second,
		probeInterval: time.Second, grace: 6 * time.Second, storageAccount: testenv.DevAccount,
		maxCredentials: 50, maxWorkspaces: 1000, createRate: "30/1m"}
}

// handler is a running handler and an API client for it.
type handler struct {
	url     string
	proc    *process
	env     []string
	signing *auth.Minter
}

func keyPair(t testing.TB) (*auth.Minter, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewMinter(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), issuer, audience, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return m, pubFile
}

func startHandler(t testing.TB, env testenv.Env, si *standIn, s settings) *handler {
	t.Helper()
	minter, pubFile := keyPair(t)
	addr := freeAddr(t)
	vars := []string{
		// The stand-in's endpoints and the local-only settings below need the local stack.
		"AZCREDS_LOCAL_STACK=true",
		"AzureWebJobsStorage=" + env.ConnectionString(s.storageAccount),
		"AZCREDS_TABLE_NAME=" + testenv.UniqueName(t, "e2e"),
		"AZCREDS_HOME_TENANT_ID=" + homeTenant,
		"AZCREDS_MANAGED_IDENTITY_CLIENT_ID=" + miClientID,
		"AZCREDS_MANAGED_IDENTITY_OBJECT_ID=" + miObjectID,
		"AZCREDS_AUTHORITY_HOST=" + si.url + "/",
		"AZCREDS_GRAPH_BASE_URL=" + si.url + "/v1.0",
		"IDENTITY_ENDPOINT=" + si.url + "/msi/token",
		"IDENTITY_HEADER=local",
		"AZCREDS_AUTH_ISSUER=" + issuer,
		"AZCREDS_AUTH_AUDIENCE=" + audience,
		"AZCREDS_AUTH_PUBLIC_KEY_FILE=" + pubFile,
		"AZCREDS_SP_POLL_WINDOW=" + s.spWindow.String(),
		"AZCREDS_SP_POLL_INTERVAL=" + s.spInterval.String(),
		"AZCREDS_ACCESS_PROBE_WINDOW=" + s.probeWindow.String(),
		"AZCREDS_ACCESS_PROBE_INTERVAL=" + s.probeInterval.String(),
		"AZCREDS_PROPAGATION_GRACE=" + s.grace.String(),
		"AZCREDS_BLOB_ENDPOINT_TEMPLATE=https://%s.blob.localhost:" + portOf(si.frontAddr) + "/",
		"AZCREDS_LOCAL_BLOB_ADDR=" + si.frontAddr,
		"AZCREDS_LOCAL_BLOB_ACCOUNTS=" + testenv.DevAccount + ",custacct1,custacct2",
		"AZCREDS_DEFAULT_STORAGE_ACCOUNT=" + testenv.DevAccount,
		"AZCREDS_LOG_LEVEL=debug",
		"AZCREDS_MAX_CREDENTIALS=" + strconv.Itoa(s.maxCredentials),
		"AZCREDS_MAX_WORKSPACES=" + strconv.Itoa(s.maxWorkspaces),
		"AZCREDS_CREATE_RATE=" + s.createRate,
	}
	// Short, so a test sees the guards of its creates run.
	guard := 10 * time.Second
	if s.createGuard > 0 {
		guard = s.createGuard
	}
	vars = append(vars, "AZCREDS_CREATE_GUARD_DELAY="+guard.String())
	vars = append(vars, "AZCREDS_LISTEN_ADDR="+addr)
	if s.hostInvocations {
		vars = append(vars, "AZCREDS_LOCAL_INVOCATIONS=true")
	}
	h := &handler{url: "http://" + addr, env: vars, signing: minter}
	h.proc = start(t, "handler", vars, "serve", "-settings", filepath.Join(t.TempDir(), "none.json"))
	waitHTTP(t, h.url+"/", h.proc)
	return h
}

// restart starts the same handler again (same storage, settings and key).
func (h *handler) restart(t testing.TB) {
	t.Helper()
	h.proc = start(t, "handler", h.env, "serve", "-settings", filepath.Join(t.TempDir(), "none.json"))
	waitHTTP(t, h.url+"/", h.proc)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// orgContainer is an organization's environment-default container in the platform
// account, with the default prefix the tests run with.
func orgContainer(org string) string {
	return credential.OrgContainerName(credential.DefaultContainerPrefix, org)
}

// api is a wizard client of a fresh organization.
func (h *handler) api(t testing.TB) *wizard.API {
	t.Helper()
	org := "org-" + uuid.NewString()[:8]
	tok, err := h.signing.Mint("e2e", []string{org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &wizard.API{BaseURL: h.url, Org: org, Token: tok}
}

// onboarding is one credential's way through the wizard in a test.
type onboarding struct {
	t         *testing.T
	api       *wizard.API
	customer  *wizard.Customer
	cred      wizard.Credential
	account   string
	container string
	spID      string
}

// newOnboarding creates a credential on a fresh container of account (created unless
// createContainer is false).
func newOnboarding(t *testing.T, h *handler, si *standIn, account string, createContainer bool) *onboarding {
	t.Helper()
	o := &onboarding{t: t, api: h.api(t), customer: si.customer, account: account, container: testenv.UniqueName(t, "box")}
	ctx := context.Background()
	if createContainer {
		if err := si.customer.CreateContainer(ctx, account, o.container); err != nil {
			t.Fatal(err)
		}
	}
	c, err := o.api.Create(ctx, "cred-"+o.container, "az://"+account+"/"+o.container+"/tables")
	if err != nil {
		t.Fatal(err)
	}
	o.cred = c
	return o
}

func (o *onboarding) install(tenant string) {
	o.t.Helper()
	id, err := o.customer.InstallServicePrincipal(context.Background(), tenant, o.cred.Azure.AppID)
	if err != nil {
		o.t.Fatal(err)
	}
	o.spID = id
}

func (o *onboarding) submitTenant(tenant string) {
	o.t.Helper()
	c, err := o.api.SubmitTenant(context.Background(), o.cred.ID, tenant)
	if err != nil {
		o.t.Fatal(err)
	}
	o.cred = c
}

func (o *onboarding) submitStorage() {
	o.t.Helper()
	c, err := o.api.SubmitStorage(context.Background(), o.cred.ID, wizard.StorageForm{
		SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, StorageAccount: o.account, ContainerName: o.container})
	if err != nil {
		o.t.Fatal(err)
	}
	o.cred = c
}

func (o *onboarding) grant(role, scope string) {
	o.t.Helper()
	if _, err := o.customer.GrantRole(context.Background(), o.spID, role, scope); err != nil {
		o.t.Fatal(err)
	}
}

func (o *onboarding) accountScope() string {
	return wizard.AccountScope(subscriptionID, resourceGroup, o.account)
}

// wait polls until done, for at most limit.
func (o *onboarding) wait(limit time.Duration, done func(wizard.Credential) bool) wizard.Credential {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := o.api.Wait(ctx, o.cred.ID, 200*time.Millisecond, done, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	o.cred = c
	return c
}

// toSPVerified installs the SP in tenantA and waits for sp_verified.
func (o *onboarding) toSPVerified() {
	o.t.Helper()
	o.install(tenantA)
	o.submitTenant(tenantA)
	if c := o.wait(15*time.Second, wizard.InState("sp_verified", "draft")); c.State != "sp_verified" {
		o.t.Fatalf("state %s: %s", c.State, c.LastError)
	}
}

// causes lists the credential's transitions as "from>to:cause".
func (o *onboarding) causes() []string {
	o.t.Helper()
	evs, err := o.api.Events(context.Background(), o.cred.ID)
	if err != nil {
		o.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.From+">"+e.To+":"+e.Cause)
	}
	return out
}
