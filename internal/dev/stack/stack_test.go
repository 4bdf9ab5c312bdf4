package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/config"
)

// The test binary doubles as the launcher and the watchdog of the process tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "stack-test-watchdog":
			_ = RunWatchdog(os.Stdin, 2*time.Second, os.Stderr)
			os.Exit(0)
		case "stack-test-launcher":
			os.Exit(helperLauncher(os.Args[2], os.Args[3] == "watchdog"))
		}
	}
	os.Exit(m.Run())
}

// helperLauncher starts a shell that starts a sleep of its own (so the shell's group has
// a grandchild of the launcher in it), writes both pids to dir/pids, and waits for a
// signal: then it stops everything it started, as cmd/devstack does.
func helperLauncher(dir string, watchdog bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l := &Launcher{}
	if watchdog {
		dog, err := StartWatchdog(os.Args[0], "stack-test-watchdog")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		l.Watchdog = dog
		defer dog.Close()
	}
	grandchild := filepath.Join(dir, "grandchild")
	p, err := l.Start(Command{Name: "sh", Path: "/bin/sh", Args: []string{"-c", `sleep 300 & echo $! > "$1"; wait`, "sh", grandchild}, Grace: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for {
		if b, err := os.ReadFile(grandchild); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(strconv.Itoa(p.Pid())), 0o644); err != nil {
		return 2
	}
	if ended := WaitAny(ctx, p); ended != nil {
		return 3
	}
	l.StopAll()
	return 130
}

// startHelper runs the launcher helper and returns it with the pids of its child and
// grandchild.
func startHelper(t *testing.T, watchdog bool) (*exec.Cmd, []int) {
	t.Helper()
	dir := t.TempDir()
	mode := "plain"
	if watchdog {
		mode = "watchdog"
	}
	cmd := exec.Command(os.Args[0], "stack-test-launcher", dir, mode)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "pids"))
		if err == nil {
			child, _ := strconv.Atoi(string(b))
			g, _ := os.ReadFile(filepath.Join(dir, "grandchild"))
			grandchild, _ := strconv.Atoi(strings.TrimSpace(string(g)))
			pids := []int{child, grandchild}
			t.Cleanup(func() {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			return cmd, pids
		}
		if time.Now().After(deadline) {
			t.Fatal("the launcher helper did not start its child")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether pid is a live process (a zombie is not).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return runtime.GOOS != "linux"
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}

// waitGone fails the test unless every pid has ended within the bound.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alive []int
		for _, pid := range pids {
			if running(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes %v still running 30 s later", what, alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestChildDiesWithKilledParent: a launcher killed with SIGKILL handles nothing, but its
// child gets SIGTERM from the kernel (Pdeathsig).
func TestChildDiesWithKilledParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	cmd, pids := startHelper(t, false)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, "the killed launcher's child", pids[0])
}

// TestWatchdogStopsGroupsOfKilledParent: with the watchdog, what the child started goes
// too.
func TestWatchdogStopsGroupsOfKilledParent(t *testing.T) {
	cmd, pids := startHelper(t, true)
	for _, pid := range pids {
		if !running(pid) {
			t.Fatalf("process %d is not running before the kill", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, "the killed launcher's child and grandchild", pids...)
}

// TestSignalStopsEverything: TERM and INT to the launcher stop its child and grandchild
// before it exits.
func TestSignalStopsEverything(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, pids := startHelper(t, true)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("launcher ended with %v, want exit status 130 after stopping its children", err)
			}
			for _, pid := range pids {
				if running(pid) {
					t.Errorf("process %d still runs after the launcher stopped", pid)
				}
			}
		})
	}
}

// TestStopEndsTheWholeGroup: Stop reaches what the process started.
func TestStopEndsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	var l Launcher
	p, err := l.Start(Command{Path: "/bin/sh", Args: []string{"-c", `sleep 300 & echo $! > "$1"; wait`, "sh", filepath.Join(dir, "pid")}})
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	for grandchild == 0 {
		b, _ := os.ReadFile(filepath.Join(dir, "pid"))
		if strings.HasSuffix(string(b), "\n") {
			grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.StopAll()
	if exited, _ := p.Exited(); !exited {
		t.Fatal("StopAll returned before the process ended")
	}
	if running(grandchild) {
		t.Fatalf("the grandchild %d outlived Stop", grandchild)
	}
}

// TestEnsureCert: the certificate covers every name the stack is reached by, is kept
// while usable, and is made again when it covers less.
func TestEnsureCert(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "certs", "cert.pem"), filepath.Join(dir, "certs", "key.pem")
	now := time.Now()
	if created, err := EnsureCert(certFile, keyFile, now); err != nil || !created {
		t.Fatalf("EnsureCert = %v, %v; want created", created, err)
	}
	c := readCert(t, certFile)
	want := []string{"localhost", "*.blob.localhost", "*.queue.localhost", "*.table.localhost"}
	if !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNS names %v, want %v", c.DNSNames, want)
	}
	if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP addresses %v, want 127.0.0.1", c.IPAddresses)
	}
	if c.IsCA || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || len(c.SubjectKeyId) == 0 {
		t.Errorf("CA %v, key usage %v, subject key id %x; want a server leaf with a key id", c.IsCA, c.ExtKeyUsage, c.SubjectKeyId)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if created, err := EnsureCert(certFile, keyFile, now); err != nil || created {
		t.Fatalf("second EnsureCert = %v, %v; want the usable certificate kept", created, err)
	}
	// Served by a TLS server, it is trusted by Client for every name the stack uses.
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	client, err := Client(certFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Listener.Addr().String()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{"127.0.0.1", "localhost", "custacct1.blob.localhost", "devstoreaccount1.queue.localhost", "devstoreaccount1.table.localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		resp.Body.Close()
	}
	if _, err := client.Get("https://" + net.JoinHostPort("example.com", port) + "/"); err == nil {
		t.Error("the certificate is good for example.com too")
	}

	// A certificate missing a name the stack needs is made again.
	os.Remove(certFile)
	narrow := *c
	narrow.DNSNames = []string{"localhost"}
	key := pair.PrivateKey
	der, err := x509.CreateCertificate(nopReader{}, &narrow, &narrow, c.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureCert(certFile, keyFile, now); err != nil || !created {
		t.Errorf("EnsureCert over a certificate without *.blob.localhost = %v, %v; want made again", created, err)
	}
	if created, _ := EnsureCert(certFile, keyFile, now.Add(800*24*time.Hour)); !created {
		t.Error("a certificate with less than 30 days left was kept")
	}
}

// nopReader is an io.Reader of zeros, enough for the deterministic parts of a test
// certificate.
type nopReader struct{}

func (nopReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0
	}
	return len(b), nil
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEnsureAuthKeys: the pair signs tokens the handler's verifier accepts, and is kept.
func TestEnsureAuthKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "auth", "key.pem"), filepath.Join(dir, "auth", "pub.pem")
	if changed, err := EnsureAuthKeys(keyFile, pubFile); err != nil || !changed {
		t.Fatalf("EnsureAuthKeys = %v, %v; want made", changed, err)
	}
	if changed, err := EnsureAuthKeys(keyFile, pubFile); err != nil || changed {
		t.Fatalf("second EnsureAuthKeys = %v, %v; want kept", changed, err)
	}
	os.Remove(pubFile)
	if changed, err := EnsureAuthKeys(keyFile, pubFile); err != nil || !changed {
		t.Fatalf("EnsureAuthKeys without pub.pem = %v, %v; want it written", changed, err)
	}
	priv, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewMinter(priv, AuthIssuer, AuthAudience, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Mint("someone", []string{DemoOrg}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: AuthIssuer, Audience: AuthAudience, PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("the handler's verifier refuses a local token: %v", err)
	}
}

// TestHandlerEnvIsValidConfig: the handler's own settings parser accepts the local
// stack's environment and reads what the stack means.
func TestHandlerEnvIsValidConfig(t *testing.T) {
	ports := PortsFrom(12000)
	files := Files{Root: t.TempDir()}
	az := Endpoints{Blob: "https://127.0.0.1:12000", Queue: "https://127.0.0.1:12001", Table: "https://127.0.0.1:12002"}
	base := HandlerConfig{
		Storage: az.ConnectionString(PlatformAccount()), StandInURL: "https://" + Addr(ports.StandIn),
		StorageFrontAddr: Addr(ports.StorageFront), Listen: Addr(ports.Handler), CertFile: files.CertFile(),
		PublicKeyFile: files.AuthPublicKeyFile(), SigningKeyFile: files.AuthKeyFile(),
	}
	parse := func(env []string) config.Config {
		t.Helper()
		values := map[string]string{}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("%q is not KEY=VALUE", kv)
			}
			values[k] = v // later entries win, as in a process's environment
		}
		c, err := config.Parse(func(k string) (string, bool) { v, ok := values[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := parse(HandlerEnv(base))
	if c.HomeTenantID != HomeTenantID || c.ManagedIdentityClientID != ManagedIdentityClientID || c.ManagedIdentityObjectID != ManagedIdentityObjectID {
		t.Errorf("directory ids %q %q %q", c.HomeTenantID, c.ManagedIdentityClientID, c.ManagedIdentityObjectID)
	}
	if c.ListenAddr != "127.0.0.1:12012" || c.FunctionsHost || !c.LocalStack {
		t.Errorf("listen %q (functions host %v, local stack %v), want 127.0.0.1:12012 standalone on the local stack", c.ListenAddr, c.FunctionsHost, c.LocalStack)
	}
	if c.AdminConsentRedirectURI != "http://127.0.0.1:12012/wizard/" {
		t.Errorf("admin consent redirect URI %q: want the handler's wizard page", c.AdminConsentRedirectURI)
	}
	if c.AuthorityHost != "https://127.0.0.1:12010/" || c.GraphBaseURL != "https://127.0.0.1:12010/v1.0" {
		t.Errorf("authority %q, graph %q: want the stand-in's", c.AuthorityHost, c.GraphBaseURL)
	}
	if c.BlobEndpointTemplate != "https://%s.blob.localhost:12011/" || c.LocalBlobAddr != "127.0.0.1:12011" {
		t.Errorf("blob template %q, local blob addr %q: want the storage front's", c.BlobEndpointTemplate, c.LocalBlobAddr)
	}
	if !slices.Equal(c.LocalBlobAccounts, []string{PlatformAccountName, CustomerAccount1Name, CustomerAccount2Name}) {
		t.Errorf("local blob accounts %v", c.LocalBlobAccounts)
	}
	if c.DefaultStorageAccount != PlatformAccountName {
		t.Errorf("environment default account %s", c.DefaultStorageAccount)
	}
	if c.Storage.ConnectionString != base.Storage || c.AuthIssuer != AuthIssuer || c.AuthAudience != AuthAudience || c.AuthPublicKeyFile != files.AuthPublicKeyFile() {
		t.Errorf("storage %q, auth %q %q %q", c.Storage.ConnectionString, c.AuthIssuer, c.AuthAudience, c.AuthPublicKeyFile)
	}

	if c.APIAppID != APIAppID || c.WorkloadIssuerAuthority != "https://127.0.0.1:12010/" ||
		c.WorkloadKeysURL != "https://127.0.0.1:12010/common/discovery/v2.0/keys" {
		t.Errorf("workload identities: API app %q, issuer authority %q, keys %q: want the stand-in's", c.APIAppID, c.WorkloadIssuerAuthority, c.WorkloadKeysURL)
	}

	if !c.LocalWizard {
		t.Errorf("the wizard page is off")
	}

	own := base
	own.Settings = []string{config.KeyTableName + "=mine", config.KeySPPollWindow + "=20s"}
	c = parse(HandlerEnv(own))
	if c.TableName != "mine" || c.SPPollWindow != 20*time.Second {
		t.Errorf("settings not applied: table %q, window %s", c.TableName, c.SPPollWindow)
	}
}

// TestWizardURL: the token rides in the fragment, where the page reads it, never in the
// path or query a server sees.
func TestWizardURL(t *testing.T) {
	got := WizardURL("http://127.0.0.1:7071", "demo-org", "a.b+c/d")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	// The page reads location.hash, which is the fragment as written (escaped).
	frag, err := url.ParseQuery(u.EscapedFragment())
	if err != nil || u.Path != "/wizard/" || u.RawQuery != "" || frag.Get("org") != "demo-org" || frag.Get("token") != "a.b+c/d" {
		t.Errorf("%s: path %q query %q fragment %v (%v)", got, u.Path, u.RawQuery, frag, err)
	}
}

// TestPorts: make run's fixed ports, and every stack laid out from a base without overlap.
func TestPorts(t *testing.T) {
	run := RunPorts()
	if run.AzuriteBlob != 10000 || run.AzuriteTable != 10002 || run.StandIn != 7443 || run.StorageFront != 10443 || run.Handler != 7071 {
		t.Errorf("make run's ports %+v", run)
	}
	p := PortsFrom(12000)
	all := []int{p.AzuriteBlob, p.AzuriteQueue, p.AzuriteTable, p.ProxyBlob, p.ProxyQueue, p.ProxyTable, p.StandIn, p.StorageFront, p.Handler, p.Profiles}
	seen := map[int]bool{}
	for _, port := range all {
		if seen[port] || port < 12000 || port > 12013 {
			t.Errorf("port %d repeated or outside 12000-12013: %v", port, all)
		}
		seen[port] = true
	}
	for _, bad := range []string{"80", "70000", "x"} {
		if _, err := ParsePortBase("BASE", bad, 1); err == nil {
			t.Errorf("port base %q accepted", bad)
		}
	}
	if n, err := ParsePortBase("BASE", "", 10100); n != 10100 || err != nil {
		t.Errorf("empty port base: %d %v", n, err)
	}
}

// TestAzuriteStartStop starts Azurite from node_modules as the stack does, reaches it over
// HTTPS with the local certificate, stops it, and starts it again on the same ports and
// data.
func TestAzuriteStartStop(t *testing.T) {
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	files := Files{Root: root}
	if _, err := os.Stat(files.AzuriteBin()); err != nil {
		t.Fatalf("Azurite is not installed (make test installs it): %v", err)
	}
	dir := t.TempDir()
	local := Files{Root: dir}
	if _, err := EnsureCert(local.CertFile(), local.KeyFile(), time.Now()); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	a := &Azurite{Bin: files.AzuriteBin(), DataDir: filepath.Join(dir, "data"), Log: filepath.Join(dir, "azurite.log"),
		CertFile: local.CertFile(), KeyFile: local.KeyFile(), Blob: ports[0], Queue: ports[1], Table: ports[2], Accounts: Accounts()}
	var l Launcher
	t.Cleanup(l.StopAll)
	ctx := context.Background()
	client, err := Client(local.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	// Without credentials the blob service answers 4xx: it is Azurite, over HTTPS with
	// the stack's certificate.
	check := func() {
		t.Helper()
		for _, u := range []string{a.Endpoints().Blob, a.Endpoints().Queue, a.Endpoints().Table} {
			resp, err := client.Get(u + "/" + CustomerAccount1Name + "?comp=list")
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s: %d without credentials, want a 4xx", u, resp.StatusCode)
			}
		}
	}
	if err := a.Start(ctx, &l); err != nil {
		t.Fatal(err)
	}
	check()
	first := a.Process()
	a.Stop(syscall.SIGTERM)
	if exited, _ := first.Exited(); !exited {
		t.Fatal("Stop returned before Azurite ended")
	}
	for _, port := range ports {
		if portOpen(port) {
			t.Errorf("port %d still open after Stop", port)
		}
	}
	if err := a.Start(ctx, &l); err != nil {
		t.Fatal(err)
	}
	check()
	a.Stop(syscall.SIGKILL)
	if running(a.Process().Pid()) {
		t.Error("Azurite runs after a SIGKILL stop")
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
