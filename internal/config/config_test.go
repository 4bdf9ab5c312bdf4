package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

func source(m map[string]string) Source {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// valid are settings of the local stack that Parse accepts.
func valid() map[string]string {
	return map[string]string{
		KeyLocalStack:              "true",
		KeyStorage:                 "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=https://127.0.0.1:10002/devstoreaccount1;",
		KeyHomeTenantID:            "605e483c-150c-4d9a-a6c4-b96a0c0b5565",
		KeyManagedIdentityObjectID: "45ca475a-b96a-40e7-accf-c8a4bedbdf68",
		KeyAuthIssuer:              "iss",
		KeyAuthAudience:            "aud",
		KeyAuthPublicKeyFile:       "pub.pem",
	}
}

// azure are settings of Azure mode that Parse accepts: under the Functions host, storage by
// managed identity, tokens verified with a JWKS URL, the public cloud's endpoints by default.
func azure() map[string]string {
	return map[string]string{
		KeyCustomHandlerPort:       "34567",
		KeyStorageTableServiceURI:  "https://appstore.table.core.windows.net/",
		KeyStorageQueueServiceURI:  "https://appstore.queue.core.windows.net/",
		KeyStorageClientID:         "670699dd-22cd-4f34-96b7-648a96a6d4b1",
		KeyHomeTenantID:            "605e483c-150c-4d9a-a6c4-b96a0c0b5565",
		KeyManagedIdentityObjectID: "45ca475a-b96a-40e7-accf-c8a4bedbdf68",
		KeyAuthIssuer:              "https://auth.example.com/",
		KeyAuthAudience:            "azcreds-api",
		KeyAuthJWKSURL:             "https://auth.example.com/.well-known/jwks.json",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != DefaultListenAddr || c.FunctionsHost || c.TableName != DefaultTableName ||
		c.SPPollWindow != 10*time.Minute || c.AccessProbeWindow != 5*time.Minute || c.PropagationGrace != 2*time.Minute ||
		c.AuthorityHost != DefaultAuthorityHost || c.GraphBaseURL != DefaultGraphBaseURL {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseFunctionsHostPort(t *testing.T) {
	c, err := Parse(source(azure()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != "127.0.0.1:34567" || !c.FunctionsHost {
		t.Fatalf("got %q %v", c.ListenAddr, c.FunctionsHost)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	m := map[string]string{KeyLocalStack: "true", KeyGraphBaseURL: "http://graph", KeySPPollWindow: "soon", KeyLogLevel: "loud",
		KeyAuthJWKSURL: "https://idp/jwks", KeyAuthPublicKeyFile: "pub.pem"}
	_, err := Parse(source(m))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{KeyHomeTenantID + " is required", KeyManagedIdentityObjectID + " is required",
		KeyAuthIssuer + " is required", KeyGraphBaseURL + " must be an https URL", KeySPPollWindow + " must be a positive duration",
		KeyLogLevel, "set exactly one of " + KeyAuthJWKSURL, "set " + KeyStorage} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestGraceLongerThanWindow(t *testing.T) {
	m := valid()
	m[KeyAccessProbeWindow] = "1m"
	m[KeyPropagationGrace] = "2m"
	if _, err := Parse(source(m)); err == nil || !strings.Contains(err.Error(), KeyPropagationGrace) {
		t.Fatalf("got %v", err)
	}
}

// TestLoadEnvironmentOverFile: local.settings.json Values, then the environment over them.
func TestLoadEnvironmentOverFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "local.settings.json")
	file := `{"IsEncrypted":false,"Values":{` +
		`"AZCREDS_LOCAL_STACK":"true","AzureWebJobsStorage":"UseFile","AZCREDS_HOME_TENANT_ID":"from-file","AZCREDS_MANAGED_IDENTITY_OBJECT_ID":"mi",` +
		`"AZCREDS_AUTH_ISSUER":"iss","AZCREDS_AUTH_AUDIENCE":"aud","AZCREDS_AUTH_PUBLIC_KEY_FILE":"pub.pem","AZCREDS_TABLE_NAME":"fromfile"}}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range append(Keys(), retiredDefaultContainer) {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv(KeyHomeTenantID, "from-env")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.HomeTenantID != "from-env" || c.TableName != "fromfile" || c.Storage.ConnectionString != "UseFile" {
		t.Fatalf("got %+v", c)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file and empty environment accepted")
	}
}

// TestExampleListsEverySetting: local.settings.json.example explains every setting the
// binary reads, and nothing it does not read.
func TestExampleListsEverySetting(t *testing.T) {
	values, err := ReadLocalSettings(filepath.Join("..", "..", "local.settings.json.example"))
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, k := range Keys() {
		read[k] = true
		if _, ok := values[k]; !ok {
			t.Errorf("%s is read but missing from the example", k)
		}
		if _, ok := values["// "+k]; !ok {
			t.Errorf("%s has no explanation in the example", k)
		}
	}
	for k := range values {
		if strings.HasPrefix(k, "//") {
			continue
		}
		if !read[k] {
			t.Errorf("the example sets %s, which the binary does not read", k)
		}
	}
}

func TestBlobSettings(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.BlobEndpointTemplate != DefaultBlobEndpointTemplate || c.LocalBlobAddr != "" || c.LocalBlobAccounts != nil {
		t.Errorf("defaults: template %q, local %q %v", c.BlobEndpointTemplate, c.LocalBlobAddr, c.LocalBlobAccounts)
	}

	m := valid()
	m[KeyBlobEndpointTemplate] = "https://%s.blob.localhost:10443/"
	m[KeyLocalBlobAddr] = "127.0.0.1:10443"
	m[KeyLocalBlobAccounts] = " custacct1, custacct2 ,"
	c, err = Parse(source(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.BlobEndpointTemplate != "https://%s.blob.localhost:10443/" || c.LocalBlobAddr != "127.0.0.1:10443" ||
		strings.Join(c.LocalBlobAccounts, ",") != "custacct1,custacct2" {
		t.Errorf("local stack: %+v", c)
	}

	bad := map[string]map[string]string{
		"template without the account":  {KeyBlobEndpointTemplate: "https://blob.core.windows.net/"},
		"template over http":            {KeyBlobEndpointTemplate: "http://%s.blob.localhost/"},
		"template with two verbs":       {KeyBlobEndpointTemplate: "https://%s.blob.localhost/%d"},
		"address without accounts":      {KeyLocalBlobAddr: "127.0.0.1:10443"},
		"accounts without address":      {KeyLocalBlobAccounts: "custacct1"},
		"address without port":          {KeyLocalBlobAddr: "127.0.0.1", KeyLocalBlobAccounts: "custacct1"},
		"account name with a capital":   {KeyLocalBlobAddr: "127.0.0.1:10443", KeyLocalBlobAccounts: "CustAcct1"},
		"account name that is too long": {KeyLocalBlobAddr: "127.0.0.1:10443", KeyLocalBlobAccounts: strings.Repeat("a", 25)},
	}
	for name, settings := range bad {
		m := valid()
		for k, v := range settings {
			m[k] = v
		}
		_, err := Parse(source(m))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		mentioned := false
		for k := range settings {
			mentioned = mentioned || strings.Contains(err.Error(), k)
		}
		if !mentioned {
			t.Errorf("%s: error does not name the setting: %v", name, err)
		}
	}
}

func TestHealthSettings(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthSchedule != DefaultHealthSchedule || c.HealthInterval != 15*time.Minute || c.HealthSpread != 5*time.Minute {
		t.Errorf("defaults: schedule %q, interval %v, spread %v", c.HealthSchedule, c.HealthInterval, c.HealthSpread)
	}
	good := map[string]struct {
		settings         map[string]string
		interval, spread time.Duration
	}{
		"off":                  {map[string]string{KeyHealthInterval: "off"}, 0, 5 * time.Minute},
		"OFF":                  {map[string]string{KeyHealthInterval: "OFF"}, 0, 5 * time.Minute},
		"zero":                 {map[string]string{KeyHealthInterval: "0"}, 0, 5 * time.Minute},
		"short, no spread":     {map[string]string{KeyHealthInterval: "2s", KeyHealthSpread: "0s"}, 2 * time.Second, 0},
		"spread when off":      {map[string]string{KeyHealthInterval: "off", KeyHealthSpread: "2h"}, 0, 2 * time.Hour},
		"schedule with a list": {map[string]string{KeyHealthSchedule: "0 0,30 9-17 * * MON-FRI"}, 15 * time.Minute, 5 * time.Minute},
	}
	for name, tc := range good {
		m := valid()
		for k, v := range tc.settings {
			m[k] = v
		}
		c, err := Parse(source(m))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.HealthInterval != tc.interval || c.HealthSpread != tc.spread {
			t.Errorf("%s: interval %v spread %v, want %v %v", name, c.HealthInterval, c.HealthSpread, tc.interval, tc.spread)
		}
	}
	bad := map[string]map[string]string{
		"five-field cron":        {KeyHealthSchedule: "*/15 * * * *"},
		"schedule of words":      {KeyHealthSchedule: "every fifteen minutes of the day"},
		"interval not duration":  {KeyHealthInterval: "sometimes"},
		"negative interval":      {KeyHealthInterval: "-1m"},
		"negative spread":        {KeyHealthSpread: "-1s"},
		"spread over a day":      {KeyHealthSpread: "25h"},
		"spread beyond interval": {KeyHealthInterval: "1m", KeyHealthSpread: "2m"},
	}
	for name, settings := range bad {
		m := valid()
		for k, v := range settings {
			m[k] = v
		}
		_, err := Parse(source(m))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		mentioned := false
		for k := range settings {
			mentioned = mentioned || strings.Contains(err.Error(), k)
		}
		if !mentioned {
			t.Errorf("%s: error does not name the setting: %v", name, err)
		}
	}
}

// TestEnvironmentDefaultSettings: the account alone configures the environment default;
// the container prefix has a default and is checked at start so that prefix plus hash is
// always a valid container name; the retired shared-container setting is refused by name.
func TestEnvironmentDefaultSettings(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultStorageAccount != "" || c.DefaultContainerPrefix != "org-" || c.DefaultPrefix != "" {
		t.Errorf("defaults: account %q, container prefix %q, prefix %q", c.DefaultStorageAccount, c.DefaultContainerPrefix, c.DefaultPrefix)
	}
	m := valid()
	m[KeyDefaultStorageAccount] = "platformdata"
	m[KeyDefaultContainerPrefix] = "lake-"
	m[KeyDefaultPrefix] = "/tables/"
	if c, err = Parse(source(m)); err != nil {
		t.Fatal(err)
	}
	if c.DefaultStorageAccount != "platformdata" || c.DefaultContainerPrefix != "lake-" || c.DefaultPrefix != "tables" {
		t.Errorf("got account %q, container prefix %q, prefix %q", c.DefaultStorageAccount, c.DefaultContainerPrefix, c.DefaultPrefix)
	}
	for _, tc := range []struct{ key, value, want string }{
		{KeyDefaultContainerPrefix, "Org_", KeyDefaultContainerPrefix + `: container prefix "Org_" contains invalid character "O"`},
		{KeyDefaultContainerPrefix, "-org", "must start with a lowercase letter or digit"},
		{KeyDefaultContainerPrefix, "org--", "consecutive hyphens"},
		{KeyDefaultContainerPrefix, strings.Repeat("p", 32), "longer than 31 characters"},
		{KeyDefaultStorageAccount, "Platform", KeyDefaultStorageAccount + `: storage account "Platform" contains invalid character "P"`},
		{"AZCREDS_DEFAULT_CONTAINER", "platform", "AZCREDS_DEFAULT_CONTAINER is no longer read"},
	} {
		m := valid()
		m[KeyDefaultStorageAccount] = "platformdata"
		m[tc.key] = tc.value
		if _, err := Parse(source(m)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: got %v, want an error with %q", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestLimitSettings(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxCredentials != 50 || c.MaxWorkspaces != DefaultMaxWorkspaces || c.MaxWorkloadIdentities != 20 ||
		c.CreateRate != (credential.Rate{Count: 30, Per: time.Minute, Burst: 30}) {
		t.Fatalf("defaults: credentials %d, workspaces %d, workload identities %d, rate %+v", c.MaxCredentials, c.MaxWorkspaces,
			c.MaxWorkloadIdentities, c.CreateRate)
	}
	m := valid()
	m[KeyMaxWorkloadIdentities] = "3"
	if c, err := Parse(source(m)); err != nil || c.MaxWorkloadIdentities != 3 {
		t.Fatalf("%s=3: %d, %v", KeyMaxWorkloadIdentities, c.MaxWorkloadIdentities, err)
	}
	for v, want := range map[string]credential.Rate{
		"30/1m":              {Count: 30, Per: time.Minute, Burst: 30},
		"30/m":               {Count: 30, Per: time.Minute, Burst: 30},
		"5/10s":              {Count: 5, Per: 10 * time.Second, Burst: 5},
		"1000/1h":            {Count: 1000, Per: time.Hour, Burst: 1000},
		"30/1m,burst=60":     {Count: 30, Per: time.Minute, Burst: 60},
		"30/1m, burst=1":     {Count: 30, Per: time.Minute, Burst: 1},
		"off":                {},
		"OFF":                {},
		" 2/s ":              {Count: 2, Per: time.Second, Burst: 2},
		"1000/1m,burst=1000": {Count: 1000, Per: time.Minute, Burst: 1000},
	} {
		m := valid()
		m[KeyCreateRate] = v
		m[KeyMaxCredentials] = "1000"
		m[KeyMaxWorkspaces] = "7"
		c, err := Parse(source(m))
		if err != nil {
			t.Errorf("%s=%q: %v", KeyCreateRate, v, err)
			continue
		}
		if c.CreateRate != want || c.MaxCredentials != 1000 || c.MaxWorkspaces != 7 {
			t.Errorf("%q: rate %+v, limits %d %d", v, c.CreateRate, c.MaxCredentials, c.MaxWorkspaces)
		}
	}
}

// TestLimitSettingsRefused: every bad value stops the start with a message naming its setting.
func TestLimitSettingsRefused(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{KeyMaxCredentials, "0"}, {KeyMaxCredentials, "-1"}, {KeyMaxCredentials, "fifty"}, {KeyMaxCredentials, "1e3"},
		{KeyMaxCredentials, "1000001"}, {KeyMaxWorkspaces, "0"}, {KeyMaxWorkspaces, "off"},
		{KeyMaxWorkloadIdentities, "0"}, {KeyMaxWorkloadIdentities, "twenty"},
		{KeyCreateRate, "30"}, {KeyCreateRate, "30/"}, {KeyCreateRate, "/1m"}, {KeyCreateRate, "0/1m"}, {KeyCreateRate, "-3/1m"},
		{KeyCreateRate, "30/0s"}, {KeyCreateRate, "30/500ms"}, {KeyCreateRate, "30/48h"}, {KeyCreateRate, "30/minute"},
		{KeyCreateRate, "30/1m,burst=0"}, {KeyCreateRate, "30/1m,60"}, {KeyCreateRate, "30/1m,burst="}, {KeyCreateRate, "30 a minute"},
		{KeyCreateRate, "0"},
	} {
		m := valid()
		m[tc.key] = tc.value
		_, err := Parse(source(m))
		if err == nil || !strings.Contains(err.Error(), tc.key+" must be") {
			t.Errorf("%s=%q: %v, want a refusal naming %s", tc.key, tc.value, err, tc.key)
		}
	}
}

// TestReconcileAndQueueSettings: the reconciler's schedule and interval take their
// defaults, "off" and their own values; a bad schedule or queue prefix is refused by name.
func TestReconcileAndQueueSettings(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReconcileSchedule != DefaultReconcileSchedule || c.ReconcileInterval != time.Minute || c.HealthRecheck != time.Minute || c.QueuePrefix != "" {
		t.Errorf("defaults: schedule %q, interval %v, recheck %v, prefix %q", c.ReconcileSchedule, c.ReconcileInterval, c.HealthRecheck, c.QueuePrefix)
	}
	c, err = Parse(source(with(valid(), KeyReconcileInterval, "off", KeyReconcileSchedule, "*/30 * * * * *", KeyHealthRecheck, "5s", KeyQueuePrefix, "e2e7-")))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReconcileInterval != 0 || c.ReconcileSchedule != "*/30 * * * * *" || c.HealthRecheck != 5*time.Second || c.QueuePrefix != "e2e7-" {
		t.Errorf("set: %+v", c)
	}
	for key, v := range map[string]string{KeyReconcileSchedule: "every minute", KeyQueuePrefix: "Bad_Prefix", KeyHealthRecheck: "0s",
		KeyReconcileInterval: "-1m"} {
		refused(t, key+"="+v, with(valid(), key, v), key, "")
	}
	refused(t, "a prefix too long", with(valid(), KeyQueuePrefix, strings.Repeat("q", 41)), KeyQueuePrefix, "at most 40")
}

// TestWorkloadIdentityCacheTTL: 30 s unless set; 0s turns the cache off; more than a
// minute, or a negative or malformed value, is refused, so a removed workload identity is
// never admitted longer than a minute anywhere.
func TestWorkloadIdentityCacheTTL(t *testing.T) {
	c, err := Parse(source(valid()))
	if err != nil || c.WorkloadIdentityCacheTTL != 30*time.Second {
		t.Fatalf("default: %v, %v", c.WorkloadIdentityCacheTTL, err)
	}
	for v, want := range map[string]time.Duration{"0s": 0, "2s": 2 * time.Second, "1m": time.Minute} {
		m := valid()
		m[KeyWorkloadIdentityCacheTTL] = v
		if c, err := Parse(source(m)); err != nil || c.WorkloadIdentityCacheTTL != want {
			t.Errorf("%s=%s: %v, %v", KeyWorkloadIdentityCacheTTL, v, c.WorkloadIdentityCacheTTL, err)
		}
	}
	for _, v := range []string{"61s", "-1s", "soon"} {
		m := valid()
		m[KeyWorkloadIdentityCacheTTL] = v
		if _, err := Parse(source(m)); err == nil || !strings.Contains(err.Error(), KeyWorkloadIdentityCacheTTL) {
			t.Errorf("%s=%s: %v, want a refusal naming it", KeyWorkloadIdentityCacheTTL, v, err)
		}
	}
}
