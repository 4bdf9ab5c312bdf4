package credential

import (
	"net/url"
)

// Links are a credential's ways out of the wizard to Entra ID and the Azure portal, which
// depend on the cloud and the settings (Config), not on the row alone.
type Links struct {
	// AdminConsentURL is what a tenant administrator opens to install the service
	// principal without the CLI. Empty until the app registration exists.
	AdminConsentURL string
	// PortalURL is the wizard's "Open in Azure Portal" target, from sp_verified on: the
	// portal's list of storage accounts while the storage details are not known (the
	// account, PortalAccount, is known from the base path), then the Access control (IAM)
	// blade of the exact account.
	PortalURL string
	// PortalAccount is the storage account PortalURL leads to; empty with PortalURL.
	PortalAccount string
}

// links computes c's links in the configured cloud.
func (cfg Config) links(c *Credential) Links {
	cl := cfg.Cloud
	cl.withDefaults()
	var l Links
	if c.App.AppID != "" {
		l.AdminConsentURL = adminConsentURL(cl.LoginEndpoint, cfg.AdminConsentRedirectURI, c)
	}
	if c.State == StateDraft || c.State == StateSPPending || c.State == "" {
		return l // the service principal a role would go to is not there yet
	}
	if scope := c.AccountScope(); scope != "" {
		tenant := ""
		if c.TenantID != "" {
			tenant = "@" + c.TenantID
		}
		l.PortalURL, l.PortalAccount = cl.Portal+"/#"+tenant+"/resource"+scope+"/iam", c.Storage.Account
		return l
	}
	l.PortalURL, l.PortalAccount = cl.Portal+"/#browse/Microsoft.Storage%2FStorageAccounts", c.BasePath.Account
	return l
}

// adminConsentURL is Entra ID's (v1) admin consent endpoint for c's app:
// <login endpoint>/<tenant>/adminconsent?client_id=<app id>&redirect_uri=<uri>&state=<credential id>.
// The tenant is the customer's once submitted, else "organizations" (the administrator's
// own tenant); redirect_uri must equal one of the app's redirect URIs exactly, and is left
// out when none is configured; state comes back on the redirect, so the wizard page knows
// the credential. Entra answers the redirect with admin_consent=True, tenant and state, or
// with error and error_description.
// https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent#construct-the-url-for-granting-tenant-wide-admin-consent
// https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
func adminConsentURL(loginEndpoint, redirectURI string, c *Credential) string {
	tenant := c.TenantID
	if tenant == "" {
		tenant = "organizations"
	}
	q := url.Values{"client_id": {c.App.AppID}, "state": {c.ID}}
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	return loginEndpoint + url.PathEscape(tenant) + "/adminconsent?" + q.Encode()
}
