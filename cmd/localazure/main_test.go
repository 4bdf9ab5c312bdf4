package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
)

const (
	homeTenant = "11111111-1111-1111-1111-111111111111"
	custTenant = "22222222-2222-2222-2222-222222222222"
	miClientID = "44444444-4444-4444-4444-444444444444"
	miObjectID = "55555555-5555-5555-5555-555555555555"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := localazuretest.Certificate(t, "127.0.0.1")
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// syncBuffer collects log output written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve runs the command with args and JSON logs until stop, which cancels it and
// checks that run returns nil in time. addr is the address run reported.
func serve(t *testing.T, args ...string) (addr string, logs *syncBuffer, stop func()) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, slog.New(slog.NewJSONHandler(logs, nil)), func(addr string) { addrc <- addr })
	}()
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	stop = func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run after cancel: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("server did not stop")
		}
	}
	return addr, logs, stop
}

func TestRunServesAndStops(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr, logs, stop := serve(t,
		"-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID,
		"-tenants", custTenant+", ", "-propagation", "5s",
	)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + addr + "/" + custTenant + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"issuer": "https://`+addr+`/`+custTenant+`/v2.0"`) {
		t.Fatalf("openid-configuration: %d %s", resp.StatusCode, body)
	}

	stop()

	// Every log line is JSON; the start line names the URL.
	started := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
		}
		started = started || (m["msg"] == "localazure listening" && m["url"] == "https://"+addr)
	}
	if !started {
		t.Errorf("no start line in logs:\n%s", logs.String())
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	ids := []string{"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID}
	tests := map[string][]string{
		"no certificate":        ids,
		"missing key file":      append([]string{"-cert", certFile, "-key", filepath.Join(t.TempDir(), "none.pem")}, ids...),
		"bad home tenant":       {"-cert", certFile, "-key", keyFile, "-home-tenant", "home", "-mi-client-id", miClientID, "-mi-object-id", miObjectID},
		"accounts without blob": append([]string{"-cert", certFile, "-key", keyFile, "-accounts", "a:a2V5"}, ids...),
		"bad accounts":          append([]string{"-cert", certFile, "-key", keyFile, "-azurite-blob", "https://127.0.0.1:1", "-accounts", "a:%%"}, ids...),
		"stray argument":        append([]string{"-cert", certFile, "-key", keyFile, "extra"}, ids...),
		"unknown flag":          append([]string{"-nope"}, ids...),
		"bad API app id":        append([]string{"-cert", certFile, "-key", keyFile, "-api-app-id", "api://azcreds"}, ids...),
		"API app id of the MI":  append([]string{"-cert", certFile, "-key", keyFile, "-api-app-id", miClientID}, ids...),
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			args = append(args, "-addr", "127.0.0.1:0")
			if err := run(context.Background(), args, slog.New(slog.DiscardHandler), nil); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}

// TestRunServesThePlatformAPI: with -api-app-id the platform API's app is registered, so a
// customer can install it (az ad sp create --id) and a managed identity of theirs can then
// get a token for it from the tenant's identity endpoint.
func TestRunServesThePlatformAPI(t *testing.T) {
	const apiAppID = "bf01b0aa-723e-4500-96ee-1bc388018396"
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr, _, stop := serve(t,
		"-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID,
		"-tenants", custTenant, "-api-app-id", apiAppID,
	)
	defer stop()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	do := func(method, path, body string, header map[string]string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, mi := do(http.MethodPost, "/control/tenants/"+custTenant+"/managedIdentities", `{"name":"lake-job"}`, nil)
	if status != http.StatusCreated || mi["identity_endpoint"] != "https://"+addr+"/msi/tenants/"+custTenant+"/token" {
		t.Fatalf("create identity: %d %v", status, mi)
	}
	tokenPath := "/msi/tenants/" + custTenant + "/token?api-version=2019-08-01&resource=" + apiAppID + "&client_id=" + mi["clientId"].(string)
	header := map[string]string{"X-IDENTITY-HEADER": "local"}
	if status, m := do(http.MethodGet, tokenPath, "", header); status != http.StatusBadRequest || m["error"] != "invalid_resource" {
		t.Errorf("token before the API is installed: %d %v", status, m)
	}
	if status, sp := do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", `{"appId":"`+apiAppID+`"}`, nil); status != http.StatusCreated || sp["displayName"] != "azcreds-api" {
		t.Fatalf("install the API: %d %v", status, sp)
	}
	if status, m := do(http.MethodGet, tokenPath, "", header); status != http.StatusOK || m["access_token"] == "" {
		t.Errorf("token after the API is installed: %d %v", status, m)
	}
}

// TestRunServesStorageFront: with -azurite-blob the command also serves the RBAC front for
// <account>.blob.localhost on -storage-addr. The front refuses before it would reach
// Azurite, so none is needed here.
func TestRunServesStorageFront(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr, logs, stop := serve(t,
		"-addr", "127.0.0.1:0", "-storage-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID,
		"-azurite-blob", "https://127.0.0.1:1", "-accounts", "custacct1:a2V5",
	)
	front := ""
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "storage front listening" {
			front, _ = m["url"].(string)
		}
	}
	if front == "" || front == "https://"+addr {
		t.Fatalf("no storage front in the logs:\n%s", logs.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	call := func() *http.Response {
		req, err := http.NewRequest(http.MethodGet, front+"/tables?restype=container&comp=list", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "custacct1.blob.localhost"
		req.Header.Set("Authorization", "Bearer nonsense")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := call(); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("x-ms-error-code") != "InvalidAuthenticationInfo" {
		t.Errorf("bad token: %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
	resp, err := client.Post("https://"+addr+"/control/storageAccounts/custacct1/firewall", "application/json", strings.NewReader(`{"enabled":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("firewall on: %d", resp.StatusCode)
	}
	if resp := call(); resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-ms-error-code") != "AuthorizationFailure" {
		t.Errorf("behind the firewall: %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}

	stop()
}
