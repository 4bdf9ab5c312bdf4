package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// LocalSetting is a setting that belongs to the local stack alone, with why Azure has no
// use for it.
type LocalSetting struct {
	Key string
	Why string
}

// localOnly are the settings Azure mode refuses. A later local-only setting joins this list
// (a test holds every AZCREDS_LOCAL_* setting to it).
var localOnly = []LocalSetting{
	{KeyLocalBlobAddr, "it sends <account>.blob.localhost to the local storage front"},
	{KeyLocalBlobAccounts, "it lists the accounts the local storage front serves"},
	{KeyLocalInvocations, "in Azure the Functions host invokes the functions on the port it chose"},
	{KeyLocalWizard, "the wizard page plays the customer through the local stand-in's control endpoints, which exist nowhere else; the platform's own frontend serves the wizard"},
	{KeyAuthPublicKeyFile, "in Azure API tokens are verified with the identity provider's keys, " + KeyAuthJWKSURL},
	{KeyAuthSigningKeyFile, "it is the private key that mints local API tokens: nothing mints tokens in Azure, and the key must not be deployed"},
	{KeyStorage, "a connection string carries an account key or a SAS, and no account key exists in Azure: the handler reaches its storage with the managed identity, " +
		KeyStorageTableServiceURI + " and " + KeyStorageQueueServiceURI},
	{KeyListenAddr, "in Azure the Functions host chooses the port, " + KeyCustomHandlerPort},
	{KeyQueuePrefix, "in Azure the queue triggers (functions/*/function.json) name the job queues without a prefix"},
	{KeyLocalPprofAddr, "it serves the handler's profiles, which show its memory, to whoever reaches the port"},
}

// LocalOnly lists the settings that Azure mode refuses, with why.
func LocalOnly() []LocalSetting { return slices.Clone(localOnly) }

// localHint ends a refusal of a non-Microsoft endpoint.
const localHint = "; endpoints that are not Microsoft's are for the local stack only (" + KeyLocalStack + "=true, never under the Functions host)"

// azure checks the settings of Azure mode: under the Functions host, with one Azure cloud's
// endpoints and no local-only setting. The managed identity's token-exchange assertion,
// which every customer's federated credential trusts, must reach only Microsoft.
func (p *parser) azure(c *Config) {
	if !c.FunctionsHost {
		p.errs = append(p.errs, fmt.Errorf("%s is not set: in Azure the handler runs under the Functions host, which sets it; to run standalone against the local stack, set %s=true",
			KeyCustomHandlerPort, KeyLocalStack))
	}
	for _, s := range localOnly {
		if p.str(s.Key, "") != "" {
			p.errs = append(p.errs, fmt.Errorf("%s is a local-stack setting, refused in Azure mode because %s; remove it, or set %s=true to run against the local stack",
				s.Key, s.Why, KeyLocalStack))
		}
	}
	if c.AuthJWKSURL != "" {
		if u, err := url.Parse(c.AuthJWKSURL); err != nil || u.Scheme != "https" || u.Host == "" {
			p.errs = append(p.errs, fmt.Errorf("%s must be an https URL in Azure mode, got %q", KeyAuthJWKSURL, c.AuthJWKSURL))
		}
	}
	if c.AdminConsentRedirectURI != "" && !strings.HasPrefix(c.AdminConsentRedirectURI, "https://") {
		p.errs = append(p.errs, fmt.Errorf("%s must be an https URL in Azure mode (Entra ID takes http redirect URIs for localhost only), got %q",
			KeyAdminConsentRedirectURI, c.AdminConsentRedirectURI))
	}
	p.pinCloud(c)
}

// localStack checks the settings of the local stack, which never runs under the Functions
// host. Its stand-in plays the public cloud.
func (p *parser) localStack(c *Config) {
	if c.FunctionsHost {
		p.errs = append(p.errs, fmt.Errorf("%s is refused under the Functions host (%s is set): Azure never runs the local stack; remove the setting",
			KeyLocalStack, KeyCustomHandlerPort))
	}
	c.Cloud, _ = CloudByName(CloudPublic)
	// The stand-in issues and publishes its keys as the authority it serves: workload
	// identities' tokens name it, whatever host it listens on.
	authority := strings.TrimSuffix(c.AuthorityHost, "/") + "/"
	c.WorkloadIssuerAuthority, c.WorkloadKeysURL = authority, authority+EntraKeysPath
	if c.LocalInvocations && !loopback(c.ListenAddr) {
		p.errs = append(p.errs, fmt.Errorf("%s needs a loopback %s, got %q: the invocation endpoints have no authentication",
			KeyLocalInvocations, KeyListenAddr, c.ListenAddr))
	}
	if c.LocalWizard && !loopback(c.ListenAddr) {
		p.errs = append(p.errs, fmt.Errorf("%s needs a loopback %s, got %q: the customer panel's routes to the stand-in have no authentication",
			KeyLocalWizard, KeyListenAddr, c.ListenAddr))
	}
	if c.LocalPprofAddr != "" && !loopback(c.LocalPprofAddr) {
		p.errs = append(p.errs, fmt.Errorf("%s must be a loopback host:port, got %q: the profiles have no authentication",
			KeyLocalPprofAddr, c.LocalPprofAddr))
	}
}

// loopback reports whether addr (host:port) listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
