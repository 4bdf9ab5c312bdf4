package e2e

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/apicheck"
	"github.com/activeloopai/azcreds/internal/dev/stack"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
	"github.com/activeloopai/azcreds/internal/queue"
)

// binDir holds the binaries TestMain builds once for the package.
var binDir string

// apiCheck holds every answer the tests' API clients receive to handlers/openapi.json
// (internal/dev/apicheck); the Functions host's invocation paths are not the API's.
var apiCheck *apicheck.Validator

func TestMain(m *testing.M) {
	flag.Parse()
	parallelByDefault()
	dir, err := os.MkdirTemp("", "azcreds-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		root, err := stack.ModuleRoot(".")
		if err == nil {
			apiCheck, err = apicheck.Load(filepath.Join(root, "handlers", "openapi.json"), hostInvocation)
		}
		if err == nil {
			// Built as `make package` builds for Azure: the same compilation serves both.
			err = stack.Build(context.Background(), &stack.Launcher{}, root, os.Getenv("GOFLAGS"), dir,
				stack.HandlerBinary, stack.StandInBinary)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		code := m.Run()
		if err := apiCheck.Report("e2e"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
		return code
	}()
	os.Exit(code)
}

// hostInvocation reports whether r is one of the Functions host's invocations, which a
// test posts to play the host: no API call.
func hostInvocation(r *http.Request) bool {
	name := strings.TrimPrefix(r.URL.Path, "/")
	for _, q := range queue.JobQueues {
		if q.Function == name {
			return true
		}
	}
	for _, tm := range queue.Timers {
		if tm.Function == name {
			return true
		}
	}
	return false
}

// The local stack's fixed ids (internal/dev/stack), by the names the tests use.
const (
	miClientID     = stack.ManagedIdentityClientID
	tenantA        = stack.CustomerTenant1
	tenantB        = stack.CustomerTenant2
	subscriptionID = stack.CustomerSubscriptionID
	resourceGroup  = stack.CustomerResourceGroup
)

func freeAddr(t testing.TB) string {
	t.Helper()
	return stack.Addr(freePort(t))
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a process of one test's stack, stopped (SIGTERM) when the test ends, with its
// log shown when the test failed.
type process struct {
	*stack.Process
	name string
	log  string // the file its stdout and stderr go to
	done <-chan struct{}
}

// parallel is how many of the package's parallel tests run at once unless -parallel says
// otherwise: they wait on windows, visibility delays and timers far more than they
// compute, so more of them than the machine has cores keep it busy.
const parallel = 8

// parallelByDefault raises -parallel to parallel when the command line left it at its default.
func parallelByDefault() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(parallel)); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// envKeepLogs names a directory where the tests copy the log of every process they ran
// (handlers, stand-ins), for figures a soak's own lines leave out.
const envKeepLogs = "AZCREDS_E2E_LOGS"

// watch wraps p for the test: stopped at its end, its log shown when it failed (and kept
// in $AZCREDS_E2E_LOGS when set).
func watch(t testing.TB, name string, p *stack.Process) *process {
	t.Helper()
	t.Cleanup(func() {
		p.Stop()
		if dir := os.Getenv(envKeepLogs); dir != "" {
			if b, err := os.ReadFile(p.Log); err == nil {
				prefix := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name() + "-" + name)
				if f, err := os.CreateTemp(dir, prefix+"-*.log"); err == nil {
					_, _ = f.Write(b)
					_ = f.Close()
				}
			}
		}
		if t.Failed() {
			if b, err := os.ReadFile(p.Log); err == nil {
				t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	return &process{Process: p, name: name, log: p.Log, done: p.Done()}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop ends the process gracefully (SIGTERM) and waits for it.
func (p *process) stop() { p.Stop() }

// kill ends the process with SIGKILL: no clean-up at all.
func (p *process) kill() { p.Kill() }

// standIn is a running stand-in with its storage front.
type standIn struct {
	url       string // https://127.0.0.1:port
	frontAddr string
	customer  *walkthrough.Customer
	proc      *process
}

// startStandIn starts a stand-in in front of env's Azurite, with the customer accounts
// registered under subscriptionID and resourceGroup.
func startStandIn(t testing.TB, env testenv.Env, propagation time.Duration) *standIn {
	t.Helper()
	return startStandInWith(t, env, propagation, func(*stack.StandIn) {})
}

// startStandInWith starts a stand-in as startStandIn does, after change has changed how.
func startStandInWith(t testing.TB, env testenv.Env, propagation time.Duration, change func(*stack.StandIn)) *standIn {
	t.Helper()
	cfg := &stack.StandIn{
		Bin: filepath.Join(binDir, stack.StandInBinary.Name), Addr: freeAddr(t), StorageFrontAddr: freeAddr(t),
		CertFile: env.CertFile, KeyFile: filepath.Join(filepath.Dir(env.CertFile), "key.pem"),
		AzuriteBlob: env.BlobEndpoint, Accounts: stack.Accounts(), Propagation: propagation,
		Log: filepath.Join(t.TempDir(), "localazure.log"),
	}
	change(cfg)
	p, err := cfg.Start(context.Background(), &stack.Launcher{})
	if err != nil {
		t.Fatal(err)
	}
	return &standIn{url: cfg.URL(), frontAddr: cfg.StorageFrontAddr, proc: watch(t, "localazure", p),
		customer: &walkthrough.Customer{ControlURL: cfg.ControlURL()}}
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
	// reconcile is the reconciler's interval (AZCREDS_RECONCILE_INTERVAL); 0: the product's.
	reconcile time.Duration
	// instances is how many handler processes share the tables and queues (1 when 0): each
	// runs every function, and every job may land on any of them.
	instances int
	// queuePrefix names the handler's queues; empty: a prefix of its own.
	queuePrefix string
	// workloadCacheTTL is AZCREDS_WORKLOAD_IDENTITY_CACHE_TTL; 0 leaves the binary's default.
	workloadCacheTTL time.Duration
}

func defaultSettings() settings {
	return settings{spWindow: 20 * time.Second, spInterval: time.Second, probeWindow: 25 * time.Second,
		probeInterval: time.Second, grace: 6 * time.Second, storageAccount: testenv.DevAccount,
		maxCredentials: 50, maxWorkspaces: 1000, createRate: "30/1m"}
}

// handler is the running handler of a test, one process or several on the same tables and
// queues, and an API client for it. Its tables and queues are its own (a table name and a
// queue prefix of its own): no other test's handler takes its jobs, whatever the account.
type handler struct {
	url       string   // the first instance's
	proc      *process // the first instance's
	instances []*instance
	env       func(listen string) []string
	signing   *auth.Minter
	// queuePrefix goes before the job queues' names (AZCREDS_QUEUE_PREFIX).
	queuePrefix string
}

// instance is one handler process: its address, the running process and the log of every
// run it had.
type instance struct {
	addr string
	url  string
	proc *process
	logs []string
}

// keyPair makes a token key pair as the local stack does, and returns a minter of tokens
// for the stack's issuer and audience with the public key's file.
func keyPair(t testing.TB) (*auth.Minter, string) {
	t.Helper()
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	if _, err := stack.EnsureAuthKeys(keyFile, pubFile); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewMinter(key, stack.AuthIssuer, stack.AuthAudience, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return m, pubFile
}

func startHandler(t testing.TB, env testenv.Env, si *standIn, s settings) *handler {
	t.Helper()
	minter, pubFile := keyPair(t)
	// Short, so a test sees the guards of its creates run.
	guard := 10 * time.Second
	if s.createGuard > 0 {
		guard = s.createGuard
	}
	h := &handler{signing: minter, queuePrefix: cmp.Or(s.queuePrefix, testenv.UniqueName(t, "q"))}
	settings := []string{
		config.KeyTableName + "=" + testenv.UniqueName(t, "e2e"),
		config.KeyQueuePrefix + "=" + h.queuePrefix,
		config.KeySPPollWindow + "=" + s.spWindow.String(),
		config.KeySPPollInterval + "=" + s.spInterval.String(),
		config.KeyAccessProbeWindow + "=" + s.probeWindow.String(),
		config.KeyAccessProbeInterval + "=" + s.probeInterval.String(),
		config.KeyPropagationGrace + "=" + s.grace.String(),
		config.KeyCreateGuardDelay + "=" + guard.String(),
		config.KeyLogLevel + "=debug",
		config.KeyMaxCredentials + "=" + strconv.Itoa(s.maxCredentials),
		config.KeyMaxWorkspaces + "=" + strconv.Itoa(s.maxWorkspaces),
		config.KeyCreateRate + "=" + s.createRate,
	}
	if s.reconcile > 0 {
		settings = append(settings, config.KeyReconcileInterval+"="+s.reconcile.String())
	}
	if s.workloadCacheTTL > 0 {
		settings = append(settings, config.KeyWorkloadIdentityCacheTTL+"="+s.workloadCacheTTL.String())
	}
	if s.hostInvocations {
		settings = append(settings, config.KeyLocalInvocations+"=true")
	}
	h.env = func(listen string) []string {
		return stack.HandlerEnv(stack.HandlerConfig{
			Storage: env.ConnectionString(s.storageAccount), StandInURL: si.url, StorageFrontAddr: si.frontAddr,
			Listen: listen, CertFile: env.CertFile, PublicKeyFile: pubFile, Settings: settings,
		})
	}
	for range max(s.instances, 1) {
		addr := freeAddr(t)
		h.instances = append(h.instances, &instance{addr: addr, url: "http://" + addr})
	}
	for i := range h.instances {
		h.restartInstance(t, i)
	}
	return h
}

// restart starts the first instance again (same storage, settings and key).
func (h *handler) restart(t testing.TB) { h.restartInstance(t, 0) }

// restartInstance starts instance i (again) on its address, and waits until it answers.
func (h *handler) restartInstance(t testing.TB, i int) {
	t.Helper()
	in := h.instances[i]
	dir := t.TempDir()
	p, err := (&stack.Launcher{}).Start(stack.Command{Name: "handler", Path: filepath.Join(binDir, stack.HandlerBinary.Name),
		Args: []string{"serve", "-settings", filepath.Join(dir, "none.json")}, Env: h.env(in.addr), Log: filepath.Join(dir, "handler.log")})
	if err != nil {
		t.Fatal(err)
	}
	name := "handler"
	if i > 0 {
		name = fmt.Sprintf("handler %d", i)
	}
	in.proc = watch(t, name, p)
	in.logs = append(in.logs, in.proc.log)
	if i == 0 {
		h.url, h.proc = in.url, in.proc
	}
	if err := stack.HandlerReady(context.Background(), p, in.url); err != nil {
		t.Fatal(err)
	}
}

// logs lists the log files of every run of every instance.
func (h *handler) logs() []string {
	var out []string
	for _, in := range h.instances {
		out = append(out, in.logs...)
	}
	return out
}

// azurite is an Azurite of one test, started as the stack starts it, on ports of its own
// and with its data in a directory of the test, so that the test can stop it and start it
// again on the same ports and data.
type azurite struct {
	t *testing.T
	*stack.Azurite
	launcher stack.Launcher
}

// orgContainer is an organization's environment-default container in the platform
// account, with the default prefix the tests run with.
func orgContainer(org string) string {
	return credential.OrgContainerName(credential.DefaultContainerPrefix, org)
}

// startAzurite starts a private Azurite and returns it with the Env that reaches it.
func startAzurite(t *testing.T) (*azurite, testenv.Env) {
	t.Helper()
	env := testenv.Azurite(t) // the certificate and the accounts of the test Azurite
	root, err := stack.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := &azurite{t: t, Azurite: &stack.Azurite{
		Bin: stack.Files{Root: root}.AzuriteBin(), DataDir: filepath.Join(dir, "data"), Log: filepath.Join(dir, "azurite.log"),
		CertFile: env.CertFile, KeyFile: filepath.Join(filepath.Dir(env.CertFile), "key.pem"), Accounts: stack.Accounts(),
	}}
	for _, port := range []*int{&a.Blob, &a.Queue, &a.Table} {
		*port = freePort(t)
	}
	t.Cleanup(a.launcher.StopAll)
	a.start()
	e := a.Endpoints()
	env.BlobEndpoint, env.QueueEndpoint, env.TableEndpoint = e.Blob, e.Queue, e.Table
	env.ConnString = env.ConnectionString(testenv.DevAccount)
	return a, env
}

// start runs Azurite on the ports and data it had, and waits until all three services
// accept connections.
func (a *azurite) start() {
	a.t.Helper()
	if err := a.Start(context.Background(), &a.launcher); err != nil {
		a.t.Fatal(err)
	}
}

// stop ends Azurite with sig (SIGTERM: it saves its data and closes; SIGKILL: nothing)
// and waits for it.
func (a *azurite) stop(sig syscall.Signal) { a.Stop(sig) }

// api is a wizard client of a fresh organization, on the first instance.
func (h *handler) api(t testing.TB) *walkthrough.API { return h.apiOn(t, 0) }

// apiOn is a wizard client of a fresh organization, on instance i (of those there are).
func (h *handler) apiOn(t testing.TB, i int) *walkthrough.API {
	t.Helper()
	org := "org-" + uuid.NewString()[:8]
	tok, err := h.signing.Mint("e2e", []string{org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &walkthrough.API{BaseURL: h.instances[i%len(h.instances)].url, Org: org, Token: tok, HTTP: apiCheck.Client(nil)}
}

// onboarding is one credential's way through the wizard in a test.
type onboarding struct {
	t         *testing.T
	api       *walkthrough.API
	customer  *walkthrough.Customer
	cred      walkthrough.Credential
	account   string
	container string
	spID      string
}

// newOnboarding creates a credential on a fresh container of account (created unless
// createContainer is false), through the handler's first instance.
func newOnboarding(t *testing.T, h *handler, si *standIn, account string, createContainer bool) *onboarding {
	t.Helper()
	return onboardingVia(t, h.api(t), si, account, createContainer)
}

// onboardingVia is newOnboarding through api (an instance of the handler, an organization).
func onboardingVia(t *testing.T, api *walkthrough.API, si *standIn, account string, createContainer bool) *onboarding {
	t.Helper()
	o := &onboarding{t: t, api: api, customer: si.customer, account: account, container: testenv.UniqueName(t, "box")}
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
	c, err := o.api.SubmitStorage(context.Background(), o.cred.ID, walkthrough.StorageForm{
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
	return walkthrough.AccountScope(subscriptionID, resourceGroup, o.account)
}

// wait polls until done, for at most limit.
func (o *onboarding) wait(limit time.Duration, done func(walkthrough.Credential) bool) walkthrough.Credential {
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
	if c := o.wait(15*time.Second, walkthrough.InState("sp_verified", "draft")); c.State != "sp_verified" {
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

// portOf is the port of a host:port address.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
