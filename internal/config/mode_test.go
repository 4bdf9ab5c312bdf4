package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
)

// refused parses m and fails unless Parse refuses it with an error that names key and says
// want.
func refused(t *testing.T, name string, m map[string]string, key, want string) {
	t.Helper()
	_, err := Parse(source(m))
	if err == nil {
		t.Errorf("%s: accepted", name)
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, key) && strings.Contains(line, want) {
			return
		}
	}
	t.Errorf("%s: no error names %s with %q:\n%v", name, key, want, err)
}

func TestAzureModeDefaultsToThePublicCloud(t *testing.T) {
	c, err := Parse(source(azure()))
	if err != nil {
		t.Fatal(err)
	}
	public, _ := CloudByName(CloudPublic)
	if c.LocalStack || !c.FunctionsHost || c.Cloud.Name != CloudPublic || c.Cloud.TokenExchangeAudience != "api://AzureADTokenExchange" {
		t.Errorf("local stack %v, host %v, cloud %+v", c.LocalStack, c.FunctionsHost, c.Cloud)
	}
	// The defaults are the public cloud's endpoints, so an Azure deployment that sets none
	// of them is pinned too.
	if DefaultAuthorityHost != public.AuthorityHost || DefaultGraphBaseURL != public.GraphBaseURL ||
		DefaultBlobEndpointTemplate != public.BlobEndpointTemplate() {
		t.Errorf("defaults %q %q %q differ from the public cloud's %+v", DefaultAuthorityHost, DefaultGraphBaseURL, DefaultBlobEndpointTemplate, public)
	}
	if c.AuthorityHost != public.AuthorityHost || c.GraphBaseURL != public.GraphBaseURL || c.BlobEndpointTemplate != public.BlobEndpointTemplate() {
		t.Errorf("endpoints %q %q %q", c.AuthorityHost, c.GraphBaseURL, c.BlobEndpointTemplate)
	}
}

// TestAzureModeAcceptsEachCloud: each known cloud's three endpoints are accepted, in the
// spellings Azure's own tools produce (Bicep's loginEndpoint ends in a slash, a template
// built from storage suffixes may not), and spelled the cloud's way afterwards.
func TestAzureModeAcceptsEachCloud(t *testing.T) {
	cases := []struct {
		cloud, authority, graph, blob, wantBlob, audience string
	}{
		{CloudPublic, "https://login.microsoftonline.com/", "https://graph.microsoft.com/v1.0", "https://%s.blob.core.windows.net/",
			"https://%s.blob.core.windows.net/", "api://AzureADTokenExchange"},
		{CloudPublic, "https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0/", "https://%s.blob.core.windows.net",
			"https://%s.blob.core.windows.net/", "api://AzureADTokenExchange"},
		{CloudPublic, "https://LOGIN.microsoftonline.com/", "https://Graph.Microsoft.com/v1.0", "https://%s.BLOB.core.windows.net/",
			"https://%s.blob.core.windows.net/", "api://AzureADTokenExchange"},
		{CloudPublic, "https://login.microsoftonline.com/", "https://graph.microsoft.com/v1.0", "https://%s.z00.blob.storage.azure.net/",
			"https://%s.z00.blob.storage.azure.net/", "api://AzureADTokenExchange"},
		{CloudPublic, "https://login.microsoftonline.com/", "https://graph.microsoft.com/v1.0", "https://%s.z42.blob.storage.azure.net",
			"https://%s.z42.blob.storage.azure.net/", "api://AzureADTokenExchange"},
		{CloudPublic, "https://login.microsoftonline.com/", "https://graph.microsoft.com/v1.0", "https://%s.z99.blob.storage.azure.net/",
			"https://%s.z99.blob.storage.azure.net/", "api://AzureADTokenExchange"},
		{CloudUSGovernment, "https://login.microsoftonline.us/", "https://graph.microsoft.us/v1.0", "https://%s.blob.core.usgovcloudapi.net/",
			"https://%s.blob.core.usgovcloudapi.net/", "api://AzureADTokenExchangeUSGov"},
		{CloudChina, "https://login.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn/v1.0", "https://%s.blob.core.chinacloudapi.cn/",
			"https://%s.blob.core.chinacloudapi.cn/", "api://AzureADTokenExchangeChina"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		m := with(azure(), KeyAuthorityHost, tc.authority, KeyGraphBaseURL, tc.graph, KeyBlobEndpointTemplate, tc.blob)
		c, err := Parse(source(m))
		if err != nil {
			t.Errorf("%s %s %s: %v", tc.authority, tc.graph, tc.blob, err)
			continue
		}
		seen[c.Cloud.Name] = true
		want, _ := CloudByName(tc.cloud)
		if c.Cloud.Name != tc.cloud || c.Cloud.TokenExchangeAudience != tc.audience ||
			c.AuthorityHost != want.AuthorityHost || c.GraphBaseURL != want.GraphBaseURL || c.BlobEndpointTemplate != tc.wantBlob {
			t.Errorf("%s %s %s: cloud %s (%s), endpoints %q %q %q", tc.authority, tc.graph, tc.blob,
				c.Cloud.Name, c.Cloud.TokenExchangeAudience, c.AuthorityHost, c.GraphBaseURL, c.BlobEndpointTemplate)
		}
	}
	for _, cl := range Clouds() {
		if !seen[cl.Name] {
			t.Errorf("no case accepts cloud %s", cl.Name)
		}
	}
}

// TestAzureModeRefusesNonMicrosoftEndpoints: anything but a known cloud's endpoint is
// refused at start, with the setting named.
func TestAzureModeRefusesNonMicrosoftEndpoints(t *testing.T) {
	bad := map[string][]string{
		KeyAuthorityHost: {
			"https://127.0.0.1:7443/",                        // the local stand-in
			"https://localhost/",                             // loopback by name
			"http://login.microsoftonline.com/",              // not https
			"https://login.microsoftonline.com:8443/",        // another port
			"https://login.microsoftonline.com:443/",         // any explicit port
			"https://login.microsoftonline.com.example.net/", // a look-alike
			"https://evil.login.microsoftonline.com/",        // a subdomain
			"https://login.microsoftonline.co/",              // a near miss
			"https://user@login.microsoftonline.com/",        // credentials in the URL
			"https://login.microsoftonline.com/tenant/",      // a path
			"https://login.microsoftonline.com/?x=1",         // a query
			"https://login.microsoftonline.com/#frag",        // a fragment
			"https://login.windows.net/",                     // Microsoft's, but not a documented authority
			"https://graph.microsoft.com/",                   // another cloud endpoint in the wrong setting
			"login.microsoftonline.com",                      // no scheme
		},
		KeyGraphBaseURL: {
			"https://127.0.0.1:7443/v1.0",
			"http://graph.microsoft.com/v1.0",
			"https://graph.microsoft.com:444/v1.0",
			"https://graph.microsoft.com.example.net/v1.0",
			"https://graph.microsoft.com/beta",
			"https://graph.microsoft.com/",
			"https://graph.microsoft.com/v1.0/applications",
			"https://graph.microsoft.com/v1.0?$select=id",
			"https://dod-graph.microsoft.us/v1.0",
			"https://login.microsoftonline.com/v1.0",
		},
		KeyBlobEndpointTemplate: {
			"https://%s.blob.localhost:10443/",                 // the local storage front
			"https://%s.blob.core.windows.net.example.net/",    // a look-alike
			"https://%s.example.net/%s.blob.core.windows.net/", // the suffix in the path
			"https://%s.blob.core.windows.net:8443/",
			"https://%s.blob.core.windows.net/container/",
			"https://x%s.blob.core.windows.net/", // the account not the whole first label
			"https://%s.x.blob.core.windows.net/",
			"https://%s.z100.blob.storage.azure.net/", // zones are z00 to z99
			"https://%s.z1.blob.storage.azure.net/",
			"https://%s.zz.blob.storage.azure.net/",
			"https://%s.z01.blob.core.usgovcloudapi.net/", // DNS-zone endpoints are public-cloud only
			"https://%s.blob.storage.azure.net/",
			"https://%s.table.core.windows.net/",
			"http://%s.blob.core.windows.net/",
			"https://blob.core.windows.net/%s/",
			"https://%s.blob.core.windows.net/?sv=x",
		},
	}
	for key, values := range bad {
		for _, v := range values {
			refused(t, key+"="+v, with(azure(), key, v), key, "must be")
		}
	}
}

func TestAzureModeRefusesMixedClouds(t *testing.T) {
	cs := Clouds()
	for _, a := range cs {
		for _, g := range cs {
			for _, b := range cs {
				if a.Name == g.Name && g.Name == b.Name {
					continue
				}
				m := with(azure(), KeyAuthorityHost, a.AuthorityHost, KeyGraphBaseURL, g.GraphBaseURL, KeyBlobEndpointTemplate, b.BlobEndpointTemplate())
				name := a.Name + "/" + g.Name + "/" + b.Name
				refused(t, name, m, KeyAuthorityHost, "must belong to the same Azure cloud")
			}
		}
	}
	// The DNS-zone form is the public cloud's: with another cloud's authority it is mixed.
	m := with(azure(), KeyAuthorityHost, "https://login.microsoftonline.us/", KeyGraphBaseURL, "https://graph.microsoft.us/v1.0",
		KeyBlobEndpointTemplate, "https://%s.z03.blob.storage.azure.net/")
	refused(t, "US Government with a DNS-zone template", m, KeyBlobEndpointTemplate, "(AzureCloud)")
}

// TestAzureModeRefusesLocalOnlySettings: each local-only setting stops the start in Azure
// mode, by name, saying why.
func TestAzureModeRefusesLocalOnlySettings(t *testing.T) {
	values := map[string]string{
		KeyLocalBlobAddr:      "127.0.0.1:10443",
		KeyLocalBlobAccounts:  "custacct1",
		KeyLocalInvocations:   "true",
		KeyLocalWizard:        "true",
		KeyAuthPublicKeyFile:  "pub.pem",
		KeyAuthSigningKeyFile: "key.pem",
		KeyStorage:            "DefaultEndpointsProtocol=https;AccountName=appstore;AccountKey=a2V5;EndpointSuffix=core.windows.net",
		KeyListenAddr:         "0.0.0.0:7071",
		KeyQueuePrefix:        "t1-",
		KeyLocalPprofAddr:     "127.0.0.1:6060",
	}
	for _, s := range LocalOnly() {
		v, ok := values[s.Key]
		if !ok {
			t.Errorf("%s: no sample value in this test", s.Key)
			continue
		}
		refused(t, s.Key, with(azure(), s.Key, v), s.Key, "local-stack setting, refused in Azure mode because "+s.Why+";")
		// The same value is fine on the local stack (where the rest of the settings are local).
		if _, err := Parse(source(with(valid(), s.Key, v, KeyLocalBlobAddr, "127.0.0.1:10443", KeyLocalBlobAccounts, "custacct1"))); err != nil {
			t.Errorf("%s on the local stack: %v", s.Key, err)
		}
	}
	// An http JWKS URL, which the verifier allows on loopback for tests, is local too.
	refused(t, "http JWKS", with(azure(), KeyAuthJWKSURL, "http://127.0.0.1:9000/jwks"), KeyAuthJWKSURL, "must be an https URL in Azure mode")
	// Without the connection string, Azure mode asks for the managed identity's URIs.
	m := azure()
	delete(m, KeyStorageQueueServiceURI)
	refused(t, "no queue service URI", m, KeyStorageQueueServiceURI, "managed identity")
}

// TestEveryLocalSettingIsLocalOnly: a setting named AZCREDS_LOCAL_* is refused in Azure
// mode (the switch itself excepted), and the list names only settings the binary reads.
func TestEveryLocalSettingIsLocalOnly(t *testing.T) {
	var listed []string
	for _, s := range LocalOnly() {
		listed = append(listed, s.Key)
		if !slices.Contains(Keys(), s.Key) {
			t.Errorf("%s is local-only but not read", s.Key)
		}
		if s.Why == "" {
			t.Errorf("%s: no reason", s.Key)
		}
	}
	for _, k := range Keys() {
		if strings.HasPrefix(k, "AZCREDS_LOCAL_") && k != KeyLocalStack && !slices.Contains(listed, k) {
			t.Errorf("%s is missing from the local-only list", k)
		}
	}
}

// TestAzureModeNeedsTheFunctionsHost: outside the local stack the handler runs only under
// the Functions host; standalone is the local stack's.
func TestAzureModeNeedsTheFunctionsHost(t *testing.T) {
	m := azure()
	delete(m, KeyCustomHandlerPort)
	refused(t, "no host", m, KeyCustomHandlerPort, KeyLocalStack+"=true")
	m = with(azure(), KeyLocalStack, "false")
	if _, err := Parse(source(m)); err != nil {
		t.Errorf("%s=false under the host: %v", KeyLocalStack, err)
	}
}

func TestLocalStackRefusedUnderTheFunctionsHost(t *testing.T) {
	refused(t, "local stack under the host", with(valid(), KeyCustomHandlerPort, "34567"), KeyLocalStack, "refused under the Functions host")
	refused(t, "not a boolean", with(valid(), KeyLocalStack, "yes please"), KeyLocalStack, "true or false")
}

// TestLocalStackAllowsLocalEndpoints: the local stack takes the stand-in's endpoints and its
// local-only settings, and plays the public cloud.
func TestLocalStackAllowsLocalEndpoints(t *testing.T) {
	m := with(valid(), KeyAuthorityHost, "https://127.0.0.1:7443/", KeyGraphBaseURL, "https://127.0.0.1:7443/v1.0",
		KeyBlobEndpointTemplate, "https://%s.blob.localhost:10443/", KeyLocalBlobAddr, "127.0.0.1:10443",
		KeyLocalBlobAccounts, "custacct1", KeyAuthSigningKeyFile, "key.pem", KeyListenAddr, "127.0.0.1:7071")
	c, err := Parse(source(m))
	if err != nil {
		t.Fatal(err)
	}
	if !c.LocalStack || c.FunctionsHost || c.Cloud.Name != CloudPublic || c.AuthorityHost != "https://127.0.0.1:7443/" ||
		c.GraphBaseURL != "https://127.0.0.1:7443/v1.0" || c.BlobEndpointTemplate != "https://%s.blob.localhost:10443/" {
		t.Errorf("got %+v", c)
	}
}

func TestLocalInvocations(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7071", "[::1]:7071", "localhost:7071"} {
		c, err := Parse(source(with(valid(), KeyLocalInvocations, "true", KeyListenAddr, addr)))
		if err != nil || !c.LocalInvocations || c.FunctionsHost {
			t.Errorf("%s: %v, invocations %v", addr, err, c.LocalInvocations)
		}
	}
	for _, addr := range []string{"0.0.0.0:7071", ":7071", "10.0.0.4:7071"} {
		refused(t, addr, with(valid(), KeyLocalInvocations, "true", KeyListenAddr, addr), KeyLocalInvocations, "loopback")
	}
}

// TestLocalWizard: the wizard page is off unless asked for, and its customer panel, which
// reaches the stand-in without authentication, listens on loopback only.
func TestLocalWizard(t *testing.T) {
	if c, err := Parse(source(valid())); err != nil || c.LocalWizard {
		t.Errorf("default: %v, wizard %v", err, c.LocalWizard)
	}
	for _, addr := range []string{"127.0.0.1:7071", "[::1]:7071", "localhost:7071"} {
		c, err := Parse(source(with(valid(), KeyLocalWizard, "true", KeyListenAddr, addr)))
		if err != nil || !c.LocalWizard {
			t.Errorf("%s: %v, wizard %v", addr, err, c.LocalWizard)
		}
	}
	for _, addr := range []string{"0.0.0.0:7071", ":7071", "10.0.0.4:7071"} {
		refused(t, addr, with(valid(), KeyLocalWizard, "true", KeyListenAddr, addr), KeyLocalWizard, "loopback")
	}
	refused(t, "not a boolean", with(valid(), KeyLocalWizard, "on"), KeyLocalWizard, "true or false")
}

// TestLocalPprofAddr: the profiling listener is off by default and, when set, loopback
// only: the profiles have no authentication.
func TestLocalPprofAddr(t *testing.T) {
	if c, err := Parse(source(valid())); err != nil || c.LocalPprofAddr != "" {
		t.Fatalf("default: %v, %q", err, c.LocalPprofAddr)
	}
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		if c, err := Parse(source(with(valid(), KeyLocalPprofAddr, addr))); err != nil || c.LocalPprofAddr != addr {
			t.Errorf("%s: %v, %q", addr, err, c.LocalPprofAddr)
		}
	}
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.0.0.4:6060"} {
		refused(t, addr, with(valid(), KeyLocalPprofAddr, addr), KeyLocalPprofAddr, "loopback")
	}
	refused(t, "no port", with(valid(), KeyLocalPprofAddr, "127.0.0.1"), KeyLocalPprofAddr, "host:port")
}

func TestCloudByName(t *testing.T) {
	for _, name := range []string{"AzureCloud", "azureusgovernment", "AZURECHINACLOUD"} {
		if _, ok := CloudByName(name); !ok {
			t.Errorf("%s: not found", name)
		}
	}
	if _, ok := CloudByName("AzureGermanCloud"); ok {
		t.Error("a retired cloud was found")
	}
	// Clouds returns copies: changing one changes nothing the parser uses.
	cs := Clouds()
	cs[0].BlobSuffixes[0] = "blob.example.net"
	if c, _ := CloudByName(CloudPublic); c.BlobSuffixes[0] != "blob.core.windows.net" {
		t.Error("Clouds shares its slices")
	}
}

// TestWorkloadIdentitySettings: the API app's client id turns workload identities on, and
// where their tokens come from follows the cloud: each cloud's v2.0 issuer and tenant-
// independent keys in Azure mode, the stand-in's on the local stack.
func TestWorkloadIdentitySettings(t *testing.T) {
	c, err := Parse(source(azure()))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAppID != "" {
		t.Errorf("API app id %q without the setting: workload identities must be off by default", c.APIAppID)
	}

	const appID = "9f5b7c3e-2a41-4d6b-8e0f-1c2d3e4f5a6b"
	cases := []struct{ cloud, issuer, keys string }{
		{CloudPublic, "https://login.microsoftonline.com/", "https://login.microsoftonline.com/common/discovery/v2.0/keys"},
		{CloudUSGovernment, "https://login.microsoftonline.us/", "https://login.microsoftonline.us/common/discovery/v2.0/keys"},
		{CloudChina, "https://login.partner.microsoftonline.cn/", "https://login.chinacloudapi.cn/common/discovery/v2.0/keys"},
	}
	for _, tc := range cases {
		cl, _ := CloudByName(tc.cloud)
		m := with(azure(), KeyAPIAppID, strings.ToUpper(appID), KeyAuthorityHost, cl.AuthorityHost,
			KeyGraphBaseURL, cl.GraphBaseURL, KeyBlobEndpointTemplate, cl.BlobEndpointTemplate())
		c, err := Parse(source(m))
		if err != nil {
			t.Errorf("%s: %v", tc.cloud, err)
			continue
		}
		if c.APIAppID != appID || c.WorkloadIssuerAuthority != tc.issuer || c.WorkloadKeysURL != tc.keys {
			t.Errorf("%s: app %q, issuer authority %q, keys %q; want %q %q %q", tc.cloud, c.APIAppID,
				c.WorkloadIssuerAuthority, c.WorkloadKeysURL, appID, tc.issuer, tc.keys)
		}
	}

	// The local stack: the stand-in is the authority, with or without the trailing slash.
	for _, authority := range []string{"https://127.0.0.1:7443/", "https://127.0.0.1:7443"} {
		c, err := Parse(source(with(valid(), KeyAPIAppID, appID, KeyAuthorityHost, authority)))
		if err != nil {
			t.Fatal(err)
		}
		if c.WorkloadIssuerAuthority != "https://127.0.0.1:7443/" || c.WorkloadKeysURL != "https://127.0.0.1:7443/common/discovery/v2.0/keys" {
			t.Errorf("local stack with authority %q: issuer authority %q, keys %q", authority, c.WorkloadIssuerAuthority, c.WorkloadKeysURL)
		}
	}

	for _, bad := range []string{"api://" + appID, "not-a-guid", appID + "0", "{" + appID + "}", strings.ReplaceAll(appID, "-", "")} {
		refused(t, bad, with(azure(), KeyAPIAppID, bad), KeyAPIAppID, "must be a GUID")
		refused(t, bad+" locally", with(valid(), KeyAPIAppID, bad), KeyAPIAppID, "must be a GUID")
	}
}

// TestDomainCloudPerCloud: the domain gets each cloud's token issuer, token-exchange
// audience and portal (the values Microsoft documents), and the authority as the login
// endpoint; the Graph scope is the cloud's Graph resource.
func TestDomainCloudPerCloud(t *testing.T) {
	cases := []struct {
		authority, graph, blob                       string
		issuer, audience, portal, graphScope, cloudN string
	}{
		{"https://login.microsoftonline.com/", "https://graph.microsoft.com/v1.0", "https://%s.blob.core.windows.net/",
			"https://login.microsoftonline.com/", "api://AzureADTokenExchange", "https://portal.azure.com", "https://graph.microsoft.com/.default", CloudPublic},
		{"https://login.microsoftonline.us/", "https://graph.microsoft.us/v1.0", "https://%s.blob.core.usgovcloudapi.net/",
			"https://login.microsoftonline.us/", "api://AzureADTokenExchangeUSGov", "https://portal.azure.us", "https://graph.microsoft.us/.default", CloudUSGovernment},
		{"https://login.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn/v1.0", "https://%s.blob.core.chinacloudapi.cn/",
			"https://login.partner.microsoftonline.cn/", "api://AzureADTokenExchangeChina", "https://portal.azure.cn", "https://microsoftgraph.chinacloudapi.cn/.default", CloudChina},
	}
	for _, tc := range cases {
		t.Run(tc.cloudN, func(t *testing.T) {
			c, err := Parse(source(with(azure(), KeyAuthorityHost, tc.authority, KeyGraphBaseURL, tc.graph, KeyBlobEndpointTemplate, tc.blob)))
			if err != nil {
				t.Fatal(err)
			}
			want := credential.Cloud{LoginEndpoint: tc.authority, TokenIssuerAuthority: tc.issuer, TokenExchangeAudience: tc.audience, Portal: tc.portal}
			if got := c.DomainCloud(); got != want {
				t.Errorf("domain cloud %+v, want %+v", got, want)
			}
			if c.Cloud.GraphScope != tc.graphScope {
				t.Errorf("graph scope %q, want %q", c.Cloud.GraphScope, tc.graphScope)
			}
		})
	}
	// The local stack: the stand-in is the login endpoint and plays the public cloud.
	c, err := Parse(source(with(valid(), KeyAuthorityHost, "https://127.0.0.1:7443/")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DomainCloud(); got.LoginEndpoint != "https://127.0.0.1:7443/" || got.TokenIssuerAuthority != "https://login.microsoftonline.com/" ||
		got.TokenExchangeAudience != "api://AzureADTokenExchange" || got.Portal != "https://portal.azure.com" {
		t.Errorf("local stack's domain cloud %+v", got)
	}
}

// TestAdminConsentRedirectURI: optional; an absolute URL without a fragment; https in
// Azure, http too on the local stack (where the wizard is served on loopback).
func TestAdminConsentRedirectURI(t *testing.T) {
	c, err := Parse(source(azure()))
	if err != nil || c.AdminConsentRedirectURI != "" {
		t.Fatalf("unset: %q, %v", c.AdminConsentRedirectURI, err)
	}
	const good = "https://azcreds.azurewebsites.net/wizard/"
	if c, err := Parse(source(with(azure(), KeyAdminConsentRedirectURI, good))); err != nil || c.AdminConsentRedirectURI != good {
		t.Fatalf("https in Azure: %q, %v", c.AdminConsentRedirectURI, err)
	}
	const local = "http://127.0.0.1:7071/wizard/"
	if c, err := Parse(source(with(valid(), KeyAdminConsentRedirectURI, local))); err != nil || c.AdminConsentRedirectURI != local {
		t.Fatalf("http on the local stack: %q, %v", c.AdminConsentRedirectURI, err)
	}
	refused(t, "http in Azure", with(azure(), KeyAdminConsentRedirectURI, "http://azcreds.example.com/wizard/"), KeyAdminConsentRedirectURI, "https")
	for _, bad := range []string{"/wizard/", "ftp://x/wizard", "https://azcreds.example.com/wizard/#step2", "https://user@azcreds.example.com/",
		"https:///wizard", "https://azcreds.example.com/" + strings.Repeat("w", 256)} {
		refused(t, bad, with(valid(), KeyAdminConsentRedirectURI, bad), KeyAdminConsentRedirectURI, "absolute")
	}
}
