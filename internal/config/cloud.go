package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Cloud is one Azure cloud: the Microsoft endpoints the backend talks to there, and the
// audience of the managed identity token that federated identity credentials trust there.
// Outside the local stack the authority host, the Graph base URL and the blob endpoint
// template must all be one cloud's, because the managed identity's token-exchange
// assertion, which every customer's federated credential trusts, goes to the authority, and
// its tokens go to Graph and to storage.
type Cloud struct {
	// Name is the cloud's name as the Azure CLI (az cloud list) and Bicep's environment().name
	// spell it, so that a setting can select a cloud by name.
	Name string
	// AuthorityHost is Microsoft Entra ID's authority, with the trailing slash azidentity expects.
	AuthorityHost string
	// GraphBaseURL is Microsoft Graph v1.0.
	GraphBaseURL string
	// GraphScope is the scope of Microsoft Graph tokens: the cloud's Graph resource with
	// /.default.
	GraphScope string
	// BlobSuffixes are the DNS suffixes of a storage account's blob endpoint,
	// https://<account>.<suffix>/.
	BlobSuffixes []string
	// BlobZoneSuffix, when set, is the suffix of the cloud's Azure DNS-zone blob endpoints,
	// https://<account>.z<NN>.<suffix>/ with NN from 00 to 99.
	BlobZoneSuffix string
	// TokenExchangeAudience is the audience of the managed identity's token that a federated
	// identity credential trusting it must name in this cloud.
	TokenExchangeAudience string
	// TokenIssuerAuthority is the authority Entra ID names in the iss of the v2.0 tokens it
	// issues in this cloud, with the trailing slash: iss is <it><tenant id>/v2.0. It is the
	// authority host itself except in Azure China, whose v2.0 tokens name
	// login.partner.microsoftonline.cn however they were requested.
	TokenIssuerAuthority string
	// PortalURL is the cloud's Azure portal, without a trailing slash.
	PortalURL string
}

// The names of the clouds this binary knows.
const (
	CloudPublic       = "AzureCloud"
	CloudUSGovernment = "AzureUSGovernment"
	CloudChina        = "AzureChinaCloud"
)

const (
	graphVersionPath   = "/v1.0"       // the Graph API version the client is built for
	blobTemplateFormat = "https://%s." // every blob endpoint template starts so
)

// clouds are Microsoft's endpoints per cloud, as documented:
//   - Entra ID and Microsoft Graph root endpoints per national cloud (a Graph token's scope
//     is the root with /.default): https://learn.microsoft.com/graph/deployments
//   - the Azure portal per national cloud:
//     https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
//   - a blob endpoint is https://<account>.blob.core.windows.net or, for accounts created
//     with Azure DNS-zone endpoints (preview, public cloud only), https://<account>.z[00-99].blob.storage.azure.net:
//     https://learn.microsoft.com/azure/storage/blobs/storage-blob-query-endpoint-srp
//   - the storage endpoint suffixes of the US Government (core.usgovcloudapi.net) and China
//     (core.chinacloudapi.cn) clouds:
//     https://learn.microsoft.com/azure/storage/common/storage-powershell-independent-clouds
//   - the token-exchange audience per cloud for a managed identity as a federated credential,
//     and its issuer, "<the authority of the cloud's v2.0 tokens><tenant>/v2.0" (Azure China's
//     edition of that page names https://login.partner.microsoftonline.cn/{tenant}/v2.0):
//     https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity
//   - the issuer of v2.0 tokens per cloud, "https://<host>/{tenantid}/v2.0" in each cloud's
//     tenant-independent OpenID configuration (<authority>common/v2.0/.well-known/openid-configuration);
//     MSAL carries the same table for its offline metadata (AzureAD/microsoft-authentication-library-for-js,
//     lib/msal-common/src/authority/AuthorityMetadata.ts), where login.chinacloudapi.cn issues as
//     login.partner.microsoftonline.cn, the host Microsoft's national-cloud page lists for China:
//     https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
var clouds = []Cloud{
	{
		Name:                  CloudPublic,
		AuthorityHost:         "https://login.microsoftonline.com/",
		GraphBaseURL:          "https://graph.microsoft.com/v1.0",
		GraphScope:            "https://graph.microsoft.com/.default",
		BlobSuffixes:          []string{"blob.core.windows.net"},
		BlobZoneSuffix:        "blob.storage.azure.net",
		TokenExchangeAudience: "api://AzureADTokenExchange",
		TokenIssuerAuthority:  "https://login.microsoftonline.com/",
		PortalURL:             "https://portal.azure.com",
	},
	{
		Name:                  CloudUSGovernment,
		AuthorityHost:         "https://login.microsoftonline.us/",
		GraphBaseURL:          "https://graph.microsoft.us/v1.0",
		GraphScope:            "https://graph.microsoft.us/.default",
		BlobSuffixes:          []string{"blob.core.usgovcloudapi.net"},
		TokenExchangeAudience: "api://AzureADTokenExchangeUSGov",
		TokenIssuerAuthority:  "https://login.microsoftonline.us/",
		PortalURL:             "https://portal.azure.us",
	},
	{
		Name:                  CloudChina,
		AuthorityHost:         "https://login.chinacloudapi.cn/",
		GraphBaseURL:          "https://microsoftgraph.chinacloudapi.cn/v1.0",
		GraphScope:            "https://microsoftgraph.chinacloudapi.cn/.default",
		BlobSuffixes:          []string{"blob.core.chinacloudapi.cn"},
		TokenExchangeAudience: "api://AzureADTokenExchangeChina",
		TokenIssuerAuthority:  "https://login.partner.microsoftonline.cn/",
		PortalURL:             "https://portal.azure.cn",
	},
}

// Clouds lists the Azure clouds the binary knows.
func Clouds() []Cloud {
	out := make([]Cloud, len(clouds))
	for i, c := range clouds {
		c.BlobSuffixes = append([]string(nil), c.BlobSuffixes...)
		out[i] = c
	}
	return out
}

// CloudByName returns the cloud named name (case-insensitive).
func CloudByName(name string) (Cloud, bool) {
	for _, c := range Clouds() {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Cloud{}, false
}

// EntraKeysPath is where, under an authority host, Entra ID publishes the tenant-independent
// signing keys of its v2.0 tokens (the jwks_uri of <authority>common/v2.0/.well-known/openid-configuration):
// https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature
const EntraKeysPath = "common/discovery/v2.0/keys"

// EntraKeysURL is the cloud's tenant-independent v2.0 signing keys.
func (c Cloud) EntraKeysURL() string { return c.AuthorityHost + EntraKeysPath }

// BlobEndpointTemplate is the cloud's standard blob endpoint template, %s the account name.
func (c Cloud) BlobEndpointTemplate() string {
	return blobTemplateFormat + c.BlobSuffixes[0] + "/"
}

// endpoint parses v as an https URL of a bare host: no port, credentials, query or
// fragment, and a path that is one of paths (a trailing slash is ignored). It returns the
// lower-cased host.
func endpoint(v string, paths ...string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.RawQuery != "" ||
		u.ForceQuery || u.Fragment != "" || u.Opaque != "" || u.Hostname() == "" {
		return "", false
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	for _, p := range paths {
		if path == p {
			return strings.ToLower(u.Hostname()), true
		}
	}
	return "", false
}

// authorityCloud returns the cloud whose Entra authority v is.
func authorityCloud(v string) (Cloud, bool) {
	host, ok := endpoint(v, "")
	if !ok {
		return Cloud{}, false
	}
	for _, c := range Clouds() {
		if h, _ := endpoint(c.AuthorityHost, ""); h == host {
			return c, true
		}
	}
	return Cloud{}, false
}

// graphCloud returns the cloud whose Microsoft Graph v1.0 v is.
func graphCloud(v string) (Cloud, bool) {
	host, ok := endpoint(v, graphVersionPath)
	if !ok {
		return Cloud{}, false
	}
	for _, c := range Clouds() {
		if h, _ := endpoint(c.GraphBaseURL, graphVersionPath); h == host {
			return c, true
		}
	}
	return Cloud{}, false
}

// zoneLabel is the DNS-zone label of an Azure DNS-zone blob endpoint: z00 to z99.
var zoneLabel = regexp.MustCompile(`^z[0-9]{2}$`)

// blobCloud returns the cloud whose blob endpoint template v is, https://%s.<suffix>/ or
// https://%s.zNN.<zone suffix>/ (the account name is the whole first label), and the
// template in that spelling.
func blobCloud(v string) (Cloud, string, bool) {
	if strings.Count(v, "%") != 1 || !strings.HasPrefix(v, blobTemplateFormat) {
		return Cloud{}, "", false
	}
	host, ok := endpoint(strings.Replace(v, "%s", "account", 1), "")
	if !ok {
		return Cloud{}, "", false
	}
	rest := strings.TrimPrefix(host, "account.")
	template := blobTemplateFormat + rest + "/"
	for _, c := range Clouds() {
		for _, s := range c.BlobSuffixes {
			if rest == s {
				return c, template, true
			}
		}
		if zone, suffix, ok := strings.Cut(rest, "."); ok && c.BlobZoneSuffix != "" && zoneLabel.MatchString(zone) && suffix == c.BlobZoneSuffix {
			return c, template, true
		}
	}
	return Cloud{}, "", false
}

// pinCloud checks that the three Microsoft endpoints are the endpoints of one known cloud,
// sets c.Cloud to it and spells the three endpoints the cloud's way.
func (p *parser) pinCloud(c *Config) {
	authority, okA := authorityCloud(c.AuthorityHost)
	if !okA {
		p.errs = append(p.errs, fmt.Errorf("%s must be the Microsoft Entra authority of an Azure cloud (%s), got %q%s",
			KeyAuthorityHost, list(func(c Cloud) string { return c.AuthorityHost }), c.AuthorityHost, localHint))
	}
	graph, okG := graphCloud(c.GraphBaseURL)
	if !okG {
		p.errs = append(p.errs, fmt.Errorf("%s must be Microsoft Graph v1.0 of an Azure cloud (%s), got %q%s",
			KeyGraphBaseURL, list(func(c Cloud) string { return c.GraphBaseURL }), c.GraphBaseURL, localHint))
	}
	blob, template, okB := blobCloud(c.BlobEndpointTemplate)
	if !okB {
		p.errs = append(p.errs, fmt.Errorf("%s must be the blob endpoint of an Azure cloud (%s, or https://%%s.zNN.blob.storage.azure.net/ for DNS-zone endpoints), got %q%s",
			KeyBlobEndpointTemplate, list(Cloud.BlobEndpointTemplate), c.BlobEndpointTemplate, localHint))
	}
	if !okA || !okG || !okB {
		return
	}
	if authority.Name != graph.Name || authority.Name != blob.Name {
		p.errs = append(p.errs, fmt.Errorf("%s (%s), %s (%s) and %s (%s) must belong to the same Azure cloud (one of %s)",
			KeyAuthorityHost, authority.Name, KeyGraphBaseURL, graph.Name, KeyBlobEndpointTemplate, blob.Name, list(func(c Cloud) string { return c.Name })))
		return
	}
	c.Cloud = authority
	c.AuthorityHost = authority.AuthorityHost
	c.WorkloadIssuerAuthority = authority.TokenIssuerAuthority
	c.WorkloadKeysURL = authority.EntraKeysURL()
	c.GraphBaseURL = authority.GraphBaseURL
	c.BlobEndpointTemplate = template
}

// list joins one field of every known cloud.
func list(field func(Cloud) string) string {
	var out []string
	for _, c := range clouds {
		out = append(out, field(c))
	}
	return strings.Join(out, ", ")
}
