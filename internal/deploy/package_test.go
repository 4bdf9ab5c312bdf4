package deploy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/deploy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/queue"
)

// Directory objects the packaged handler is configured with; nothing here signs in as
// them except to the test Azurite, which checks no signature.
const (
	homeTenant = "605e483c-150c-4d9a-a6c4-b96a0c0b5565"
	miClientID = "670699dd-22cd-4f34-96b7-648a96a6d4b1"
	miObjectID = "45ca475a-b96a-40e7-accf-c8a4bedbdf68"
	idHeader   = "package-test"
)

// TestPackage builds the package exactly as `make package` does, then checks it the way
// the Functions host will use it: the zip's layout (host.json, the executable host.json
// names, every function folder at the root and nothing else), the executable bit carried
// in the zip, a static linux/amd64 binary, and, started from the unzipped package with
// the host's port and Azure's identity-based storage settings, a handler that answers the
// host's start-up probe, serves every HTTP function's route and method, and answers every
// queue function's invocation in the host's response shape.
func TestPackage(t *testing.T) {
	env := testenv.Azurite(t) // before the build: without Azurite there is no point
	root := moduleRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := deploy.Build(ctx, deploy.Options{Root: root, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", filepath.Base(res.Zip), time.Since(start).Round(time.Millisecond))

	zr, err := zip.OpenReader(res.Zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		entries[f.Name] = f
	}
	functions := repoFunctions(t, root)
	exe, err := deploy.ExecutableName(filepath.Join(root, "host.json"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("layout", func(t *testing.T) {
		want := []string{"host.json", exe}
		for _, fn := range functions {
			want = append(want, fn.Name+"/", fn.Name+"/function.json")
		}
		got := make([]string, 0, len(zr.File))
		for _, f := range zr.File {
			got = append(got, f.Name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("zip entries:\n got %v\nwant %v", got, want)
		}
		sameAsRepo(t, entries["host.json"], filepath.Join(root, "host.json"))
		for _, fn := range functions {
			sameAsRepo(t, entries[fn.Name+"/function.json"], filepath.Join(root, "functions", fn.Name, "function.json"))
		}
		for _, f := range zr.File {
			if strings.HasPrefix(f.Name, "functions/") || strings.Count(strings.TrimSuffix(f.Name, "/"), "/") > 1 {
				t.Errorf("%s: function folders belong at the package root, where the host looks", f.Name)
			}
		}
	})

	t.Run("executable", func(t *testing.T) {
		f := entries[exe]
		if f == nil {
			t.Fatalf("no %s in the zip, where host.json's defaultExecutablePath points", exe)
		}
		if f.CreatorVersion>>8 != 3 { // 3: Unix, so unzip tools apply the mode
			t.Errorf("%s: creator OS %d, want 3 (Unix)", exe, f.CreatorVersion>>8)
		}
		if m := f.Mode(); !m.IsRegular() || m.Perm() != 0o755 {
			t.Errorf("%s: mode %v in the zip, want -rwxr-xr-x", exe, m)
		}
		for _, other := range zr.File {
			if other.Name != exe && !other.Mode().IsDir() && other.Mode().Perm()&0o111 != 0 {
				t.Errorf("%s is executable; only %s should be", other.Name, exe)
			}
		}
	})

	// The package as the host sees it: unzipped with the modes the zip carries.
	dir := t.TempDir()
	unzip(t, &zr.Reader, dir)
	bin := filepath.Join(dir, exe)

	t.Run("static linux/amd64", func(t *testing.T) {
		info, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o111 == 0 {
			t.Fatalf("%s unzipped with mode %v: not executable", exe, info.Mode())
		}
		ef, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer ef.Close()
		if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
			t.Errorf("%s: ELF class %v, machine %v, type %v; want a 64-bit x86-64 executable", exe, ef.Class, ef.Machine, ef.Type)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v): build it with CGO_ENABLED=0", exe, p.Type)
			}
		}
	})

	h := startPackaged(t, env, dir, exe)

	t.Run("http functions", func(t *testing.T) {
		n := 0
		for _, fn := range functions {
			b := fn.trigger(t)
			if b.Type != "httpTrigger" {
				continue
			}
			for _, method := range b.Methods {
				n++
				path := "/" + fillRoute(b.Route)
				status, body, hdr := h.do(t, strings.ToUpper(method), path, nil)
				// A route the API serves answers 401 without a token (200 for the public
				// ones); a route it lacks gets 404, a method it lacks 405.
				if status != http.StatusUnauthorized && status != http.StatusOK {
					t.Errorf("%s: %s %s answered %d %s: the handler does not serve this function's route", fn.Name, method, path, status, body)
					continue
				}
				if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || !json.Valid(body) || hdr.Get("X-Request-Id") == "" {
					t.Errorf("%s: %s %s: %d with Content-Type %q, request id %q: not the API's JSON answer: %s",
						fn.Name, method, path, status, hdr.Get("Content-Type"), hdr.Get("X-Request-Id"), body)
				}
			}
		}
		if n == 0 {
			t.Fatal("no HTTP functions")
		}
		// The check tells a served route from one that is not.
		if status, body, _ := h.do(t, http.MethodGet, "/organizations/o/no-such-route", nil); status != http.StatusNotFound {
			t.Errorf("an unknown route answered %d %s, want 404", status, body)
		}
	})

	t.Run("queue functions", func(t *testing.T) {
		n := 0
		for _, fn := range functions {
			b := fn.trigger(t)
			if b.Type != "queueTrigger" {
				continue
			}
			n++
			kind := kindOf(t, b.QueueName)
			// A payload no retry can fix: dropped with a 200, or the host would retry it.
			h.invoke(t, fn.Name, b.Name, `"not a job"`, b.QueueName)
			// A well-formed job of another kind: the handler finds it under the binding's
			// name and knows this function reads b.QueueName, so it refuses it by kind.
			other := otherKind(t, kind)
			h.invoke(t, fn.Name, b.Name, jobJSON(t, other), string(other))
		}
		if n == 0 {
			t.Fatal("no queue functions")
		}
	})

	t.Run("timer functions", func(t *testing.T) {
		n := 0
		for _, fn := range functions {
			b := fn.trigger(t)
			if b.Type != "timerTrigger" {
				continue
			}
			n++
			// The host's timer info; the handler runs its work (the sweep, the reconciler)
			// over no credentials here, and says what it did.
			said := map[string]string{"health-sweep": "sweep", "reconcile": "reconciled"}[fn.Name]
			if said == "" {
				t.Errorf("timer function %s: this test does not know what its answer says", fn.Name)
				continue
			}
			h.invoke(t, fn.Name, b.Name, `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}`, said)
		}
		if n == 0 {
			t.Fatal("no timer functions")
		}
	})

	t.Run("storage by managed identity", func(t *testing.T) {
		if h.miTokens.Load() == 0 {
			t.Error("the handler reached its storage without a managed identity token: the identity-based settings were not used")
		}
	})

	t.Run("nothing outside reached", func(t *testing.T) {
		if seen := h.outside.requests(); len(seen) > 0 {
			t.Errorf("the handler sent requests outside the machine (Microsoft's endpoints are configured but must not be called here): %q", seen)
		}
		// The proxy does see what leaves: a token with a key id makes the verifier fetch the
		// JWKS, whose host is not loopback.
		enc := base64.RawURLEncoding.EncodeToString
		tok := enc([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`)) + "." + enc([]byte(`{"sub":"s"}`)) + "." + enc([]byte("sig"))
		req, _ := http.NewRequest(http.MethodGet, h.url+"/organizations/o/credentials", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Activeloop-Org-Id", "o")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		if seen := h.outside.requests(); !slices.Contains(seen, "CONNECT issuer.invalid:443") {
			t.Errorf("the JWKS fetch did not go through the recording proxy (saw %q): the check above proves nothing", seen)
		}
	})

	t.Run("refuses what Azure must not use", func(t *testing.T) {
		refusals(t, env, dir, exe)
	})

	for _, fn := range functions {
		if b := fn.trigger(t); b.Type != "httpTrigger" && b.Type != "queueTrigger" && b.Type != "timerTrigger" {
			t.Errorf("function %s: trigger %s is neither checked here nor served by the handler", fn.Name, b.Type)
		}
	}
}

// sameAsRepo checks that a zip entry holds exactly the repository file.
func sameAsRepo(t *testing.T, f *zip.File, repoPath string) {
	t.Helper()
	if f == nil {
		t.Errorf("%s is not in the zip", repoPath)
		return
	}
	want, err := os.ReadFile(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s", f.Name, repoPath)
	}
}

// unzip extracts zr into dir, giving each file the permission bits its zip header carries
// (as the host's unpacking does), nothing more.
func unzip(t *testing.T, zr *zip.Reader, dir string) {
	t.Helper()
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("zip entry %q escapes the package", f.Name)
		}
		if f.Mode().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, rc)
		rc.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.Mode().Perm()); err != nil { // the umask must not decide
			t.Fatal(err)
		}
	}
}

var routeParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)[^}]*\}`)

// fillRoute puts a sample value in each {param} of a function route.
func fillRoute(route string) string {
	return routeParam.ReplaceAllString(strings.TrimPrefix(route, "/"), "t-$1")
}

// kindOf returns the job kind whose queue is queueName, failing when the binary has none.
func kindOf(t *testing.T, queueName string) credential.JobKind {
	t.Helper()
	for _, jq := range queue.JobQueues {
		if jq.Queue == queueName {
			return jq.Kind
		}
	}
	t.Fatalf("queue %s of a function.json is not a queue the binary knows", queueName)
	return ""
}

func otherKind(t *testing.T, kind credential.JobKind) credential.JobKind {
	t.Helper()
	for _, k := range queue.Kinds() {
		if k != kind {
			return k
		}
	}
	t.Fatal("only one job kind")
	return ""
}

// jobJSON is a well-formed message of kind for a credential that does not exist, as the
// JSON text the host hands over (already base64-decoded).
func jobJSON(t *testing.T, kind credential.JobKind) string {
	t.Helper()
	enc, err := queue.Encode(credential.Job{Kind: kind, OrgID: "package-test", CredentialID: "no-such-credential",
		Generation: 1, Deadline: time.Now().Add(time.Minute), AppObjectID: "no-such-app"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(string(raw)) // a JSON string holding the message, one of the host's shapes
	return string(b)
}

// packaged is the handler started from the unzipped package.
type packaged struct {
	url      string
	miTokens *atomic.Int64
	// outside records every request the handler sent through its proxy: every request to a
	// host that is not loopback. None is expected.
	outside *recorder
}

// azureSettings are the app settings the Bicep gives the handler in the public cloud, with
// the host's port and the test's own storage, table and managed identity endpoint:
// Microsoft's real endpoints (never reached: the proxy stops and records any request to
// them), no local-stack switch and no local-only setting.
func azureSettings(env testenv.Env, port, table, identityEndpoint string) map[string]string {
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT":         port,
		"AzureWebJobsStorage__credential":      "managedidentity",
		"AzureWebJobsStorage__clientId":        miClientID,
		"AzureWebJobsStorage__queueServiceUri": env.QueueURL(testenv.DevAccount) + "/", // Azure's endpoints end in a slash
		"AzureWebJobsStorage__tableServiceUri": env.TableURL(testenv.DevAccount) + "/",
		"AZCREDS_TABLE_NAME":                   table,
		"AZCREDS_HOME_TENANT_ID":               homeTenant,
		"AZCREDS_MANAGED_IDENTITY_CLIENT_ID":   miClientID,
		"AZCREDS_MANAGED_IDENTITY_OBJECT_ID":   miObjectID,
		// As the Bicep sets them: environment().authentication.loginEndpoint, the
		// graphBaseUrl parameter's default and the storage suffix of environment().
		"AZCREDS_AUTHORITY_HOST":         "https://login.microsoftonline.com/",
		"AZCREDS_GRAPH_BASE_URL":         "https://graph.microsoft.com/v1.0",
		"AZCREDS_BLOB_ENDPOINT_TEMPLATE": "https://%s.blob.core.windows.net/",
		"AZCREDS_AUTH_ISSUER":            "https://issuer.invalid/",
		"AZCREDS_AUTH_AUDIENCE":          "azcreds-api",
		"AZCREDS_AUTH_JWKS_URL":          "https://issuer.invalid/.well-known/jwks.json",
		"AZCREDS_API_APP_ID":             "bf01b0aa-723e-4500-96ee-1bc388018396", // the api-app module's output
		"AZCREDS_LOG_LEVEL":              "debug",
		"IDENTITY_ENDPOINT":              identityEndpoint,
		"IDENTITY_HEADER":                idHeader,
	}
}

// startPackaged starts the packaged executable the way the host does: from the package
// directory, with no arguments (host.json's "arguments": []), FUNCTIONS_CUSTOMHANDLER_PORT
// set, and Azure's identity-based settings: storage by service URI with a managed identity
// token (from a stand-in IDENTITY_ENDPOINT the test Azurite trusts), the API verified with
// a JWKS URL. Entra ID, Graph and the JWKS are never called here, and a proxy makes sure:
// every request to a host that is not loopback goes to it and is recorded.
func startPackaged(t *testing.T, env testenv.Env, dir, exe string) *packaged {
	t.Helper()
	var tokens atomic.Int64
	mi := httptest.NewServer(managedIdentity(t, &tokens))
	t.Cleanup(mi.Close)
	outside := &recorder{}
	proxy := httptest.NewServer(outside)
	t.Cleanup(proxy.Close)

	table := testenv.UniqueName(t, "pkg")
	t.Cleanup(func() { dropTable(t, env, table) })
	port := freePort(t)
	vars := azureSettings(env, port, table, mi.URL+"/msi/token")
	// Go's clients send every request to a host that is not loopback through the proxy.
	vars["HTTPS_PROXY"], vars["HTTP_PROXY"] = proxy.URL, proxy.URL
	cmd := exec.Command(filepath.Join(dir, exe))
	cmd.Dir = dir
	cmd.Env = hostEnv(vars)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the packaged %s: %v", exe, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("handler log:\n%s", tail(logs.Bytes(), 6000))
		}
	})

	h := &packaged{url: "http://127.0.0.1:" + port, miTokens: &tokens, outside: outside}
	// The host's start-up probe: GET / until any HTTP answer, for about 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("the packaged handler exited during start:\n%s", tail(logs.Bytes(), 6000))
		default:
		}
		resp, err := http.Get(h.url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET / answered %d", resp.StatusCode)
			}
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("the packaged handler did not answer GET / within 30 s:\n%s", tail(logs.Bytes(), 6000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostEnv is the test's environment without any setting of the handler's or the host's
// (nor a proxy), plus vars: what the host would give the process.
func hostEnv(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AZCREDS_"), strings.HasPrefix(k, "AzureWebJobs"), strings.HasPrefix(k, "FUNCTIONS_"),
			strings.HasPrefix(k, "IDENTITY_"), strings.HasPrefix(k, "MSI_"), strings.HasPrefix(k, "AZURE_"),
			strings.HasPrefix(k, "APPLICATIONINSIGHTS_"), strings.HasSuffix(strings.ToUpper(k), "_PROXY"):
			continue
		}
		out = append(out, kv) // SSL_CERT_FILE stays: it makes Go trust the test Azurite
	}
	for _, k := range sortedKeys(vars) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// managedIdentity serves the App Service managed identity endpoint (IDENTITY_ENDPOINT)
// the way Functions does: a token for the requested resource, which the test Azurite
// (--oauth basic) accepts for storage without checking its signature.
func managedIdentity(t *testing.T, tokens *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/msi/token" || r.Header.Get("X-IDENTITY-HEADER") != idHeader || q.Get("api-version") != "2019-08-01" {
			http.Error(w, "not the App Service managed identity protocol", http.StatusBadRequest)
			return
		}
		if id := q.Get("client_id"); id != "" && id != miClientID {
			http.Error(w, "unknown client id "+id, http.StatusBadRequest)
			return
		}
		resource := strings.TrimSuffix(q.Get("resource"), "/")
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"aud": resource, "iss": "https://sts.windows.net/" + homeTenant + "/", "tid": homeTenant,
			"oid": miObjectID, "sub": miObjectID, "appid": miClientID, "ver": "1.0",
			"iat": now.Add(-5 * time.Minute).Unix(), "nbf": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		enc := base64.RawURLEncoding.EncodeToString
		jwt := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + "." + enc([]byte("unsigned"))
		if resource == "https://storage.azure.com" {
			tokens.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"access_token": jwt, "expires_on": strconv.FormatInt(now.Add(time.Hour).Unix(), 10),
			"resource": resource, "token_type": "Bearer", "client_id": miClientID,
		})
	})
}

func dropTable(t *testing.T, env testenv.Env, name string) {
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Errorf("drop table %s: %v", name, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.DeleteTable(ctx, name, nil); err != nil {
		t.Logf("drop table %s: %v", name, err)
	}
}

func (h *packaged) do(t *testing.T, method, path string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// invoke posts the host's invocation of a queue function with payload (JSON) under the
// trigger binding's name, and checks the answer: 200, in the host's response shape
// {"Outputs":{},"Logs":[...],"ReturnValue":null}, with a log line that mentions mention.
func (h *packaged) invoke(t *testing.T, function, bindingName, payload, mention string) {
	t.Helper()
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"Data":{%q:%s},"Metadata":{"DequeueCount":1,"Id":"%d","InsertionTime":%q,`+
		`"NextVisibleTime":%q,"PopReceipt":"pop","sys":{"MethodName":%q,"UtcNow":%q}}}`,
		bindingName, payload, now.UnixNano(), now.Format(time.RFC3339), now.Add(30*time.Second).Format(time.RFC3339),
		function, now.Format(time.RFC3339))
	status, out, _ := h.do(t, http.MethodPost, "/"+function, []byte(body))
	if status != http.StatusOK {
		t.Errorf("%s: invocation with %s answered %d %s, want 200 (a retry cannot fix it)", function, payload, status, out)
		return
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Errorf("%s: answer %s: %v", function, out, err)
		return
	}
	if keys := sortedKeys(answer); !slices.Equal(keys, []string{"Logs", "Outputs", "ReturnValue"}) {
		t.Errorf("%s: answer has %v, want Outputs, Logs and ReturnValue: %s", function, keys, out)
	}
	var outputs map[string]any
	if err := json.Unmarshal(answer["Outputs"], &outputs); err != nil || outputs == nil || len(outputs) != 0 {
		t.Errorf("%s: Outputs is %s, want {}", function, answer["Outputs"])
	}
	if string(answer["ReturnValue"]) != "null" {
		t.Errorf("%s: ReturnValue is %s, want null", function, answer["ReturnValue"])
	}
	var logs []string
	if err := json.Unmarshal(answer["Logs"], &logs); err != nil || len(logs) == 0 {
		t.Errorf("%s: Logs is %s, want log lines", function, answer["Logs"])
		return
	}
	if !strings.Contains(strings.Join(logs, "\n"), mention) {
		t.Errorf("%s: Logs %q do not mention %q", function, logs, mention)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// recorder answers every request 403 and records where it was going: as a proxy, the host
// of a CONNECT or the URL of a plain request.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if req.Method == http.MethodConnect {
		r.seen = append(r.seen, "CONNECT "+req.Host)
	} else {
		r.seen = append(r.seen, req.Method+" "+req.URL.String())
	}
	r.mu.Unlock()
	http.Error(w, "this test reaches no host outside the machine", http.StatusForbidden)
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// lockedBuffer collects the handler's output while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// refusals starts the packaged handler as the host would, each time with Azure's settings
// and one thing Azure must not have, and checks that it refuses to start: it exits non-zero
// with a message that names the setting, before it listens or calls anything.
func refusals(t *testing.T, env testenv.Env, dir, exe string) {
	port := freePort(t)
	base := func() map[string]string {
		return azureSettings(env, port, "refusal", "http://127.0.0.1:9/msi/token")
	}
	type refusal struct {
		name, key, want string
		vars            map[string]string
	}
	set := func(kv ...string) map[string]string {
		m := base()
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []refusal{
		{"the local stand-in's authority", config.KeyAuthorityHost, "must be the Microsoft Entra authority",
			set(config.KeyAuthorityHost, "https://127.0.0.1:7443/")},
		{"a look-alike authority", config.KeyAuthorityHost, "must be the Microsoft Entra authority",
			set(config.KeyAuthorityHost, "https://login.microsoftonline.com.example.net/")},
		{"the local stand-in's Graph", config.KeyGraphBaseURL, "must be Microsoft Graph v1.0",
			set(config.KeyGraphBaseURL, "https://127.0.0.1:7443/v1.0")},
		{"the local storage front", config.KeyBlobEndpointTemplate, "must be the blob endpoint",
			set(config.KeyBlobEndpointTemplate, "https://%s.blob.localhost:10443/")},
		{"mixed clouds", config.KeyAuthorityHost, "must belong to the same Azure cloud",
			set(config.KeyAuthorityHost, "https://login.microsoftonline.us/")},
		{"an http JWKS URL", config.KeyAuthJWKSURL, "must be an https URL in Azure mode",
			set(config.KeyAuthJWKSURL, "http://127.0.0.1:9/jwks")},
		{"the local stack under the host", config.KeyLocalStack, "refused under the Functions host",
			set(config.KeyLocalStack, "true")},
		{"an API app id that is no client id", config.KeyAPIAppID, "must be a GUID",
			set(config.KeyAPIAppID, "api://azcreds")},
	}
	noHost := base()
	delete(noHost, config.KeyCustomHandlerPort)
	cases = append(cases, refusal{"standalone", config.KeyCustomHandlerPort, "is not set", noHost})
	samples := map[string]string{
		config.KeyLocalBlobAddr:      "127.0.0.1:10443",
		config.KeyLocalBlobAccounts:  "custacct1",
		config.KeyLocalInvocations:   "true",
		config.KeyLocalWizard:        "true",
		config.KeyAuthPublicKeyFile:  "pub.pem",
		config.KeyAuthSigningKeyFile: "key.pem",
		config.KeyStorage:            "DefaultEndpointsProtocol=https;AccountName=appstore;AccountKey=a2V5;EndpointSuffix=core.windows.net",
		config.KeyListenAddr:         "0.0.0.0:7071",
		config.KeyQueuePrefix:        "t1-",
		config.KeyLocalPprofAddr:     "127.0.0.1:6060",
	}
	for _, s := range config.LocalOnly() {
		v, ok := samples[s.Key]
		if !ok {
			t.Errorf("local-only setting %s has no sample value in this test: add one", s.Key)
			continue
		}
		cases = append(cases, refusal{"local-only " + s.Key, s.Key, "is a local-stack setting, refused in Azure mode", set(s.Key, v)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(dir, exe))
			cmd.Dir = dir
			cmd.Env = hostEnv(tc.vars)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 || ctx.Err() != nil {
				t.Fatalf("the handler did not refuse to start (%v):\n%s", err, tail(out, 2000))
			}
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, tc.key) && strings.Contains(line, tc.want) {
					found = true
					t.Logf("exit %d: %s", exit.ExitCode(), line)
				}
			}
			if !found {
				t.Errorf("exit %d, but no line names %s with %q:\n%s", exit.ExitCode(), tc.key, tc.want, tail(out, 2000))
			}
		})
	}
}
