package walkthrough

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Roles a customer grants.
const (
	RoleContributor = "Storage Blob Data Contributor"
	RoleReader      = "Storage Blob Data Reader"
)

// Customer plays the customer's side through the local stand-in's control endpoints.
type Customer struct {
	ControlURL string // e.g. https://127.0.0.1:7443/control
	HTTP       *http.Client
}

func (c *Customer) call(ctx context.Context, method, path string, in, out any) error {
	return do(ctx, c.HTTP, method, c.ControlURL+path, nil, in, out)
}

// InstallServicePrincipal is `az ad sp create --id <appID>` in tenantID; it returns the
// service principal's object id.
func (c *Customer) InstallServicePrincipal(ctx context.Context, tenantID, appID string) (string, error) {
	var sp struct {
		ID string `json:"id"`
	}
	err := c.call(ctx, http.MethodPost, "/tenants/"+url.PathEscape(tenantID)+"/servicePrincipals", map[string]string{"appId": appID}, &sp)
	return sp.ID, err
}

// Consent is where Entra ID sent a tenant administrator back from the admin consent URL:
// the redirect URI and Entra's answer in its query.
type Consent struct {
	RedirectURI      string // the URL without the answer's parameters
	AdminConsent     string // admin_consent: "True"
	Tenant           string // the tenant that consented
	State            string
	Error            string // set when the administrator refused
	ErrorDescription string
}

// AdminConsent opens a credential's admin_consent_url as a tenant administrator would in a
// browser, and returns where Entra sends them back. The redirect is read, not followed:
// it leads to the wizard. An answer that is no redirect is an *Error.
func (c *Customer) AdminConsent(ctx context.Context, consentURL string) (Consent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, consentURL, nil)
	if err != nil {
		return Consent{}, err
	}
	hc := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if c.HTTP != nil {
		hc.Transport, hc.Timeout = c.HTTP.Transport, c.HTTP.Timeout
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Consent{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Consent{}, &Error{Status: resp.StatusCode, Body: string(body)}
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return Consent{}, fmt.Errorf("admin consent redirect: %w", err)
	}
	q := back.Query()
	out := Consent{AdminConsent: q.Get("admin_consent"), Tenant: q.Get("tenant"), State: q.Get("state"),
		Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
	for _, k := range []string{"admin_consent", "tenant", "state", "error", "error_description"} {
		q.Del(k)
	}
	back.RawQuery = q.Encode()
	out.RedirectURI = back.String()
	return out, nil
}

// AdministratorAnswers sets how the tenant administrator answers the admin consent of
// appID: the tenant they sign in to (for an organizations URL) and whether they refuse.
func (c *Customer) AdministratorAnswers(ctx context.Context, appID, tenantID string, refuse bool) error {
	return c.call(ctx, http.MethodPut, "/consent/"+url.PathEscape(appID), map[string]any{"tenant_id": tenantID, "refuse": refuse}, nil)
}

// RegisterStorageAccount makes an account's ARM scope resolvable.
func (c *Customer) RegisterStorageAccount(ctx context.Context, account, subscriptionID, resourceGroup string) error {
	return c.call(ctx, http.MethodPost, "/storageAccounts", map[string]string{
		"name": account, "subscription_id": subscriptionID, "resource_group": resourceGroup}, nil)
}

// StorageAccount is a customer storage account as the stand-in has it registered.
type StorageAccount struct {
	Name           string `json:"name"`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	TenantID       string `json:"tenant_id,omitempty"` // set when only that tenant's principals may get roles on it
}

// StorageAccount returns the registration of account, and false when it has none.
func (c *Customer) StorageAccount(ctx context.Context, account string) (StorageAccount, bool, error) {
	var all []StorageAccount
	if err := c.call(ctx, http.MethodGet, "/storageAccounts", nil, &all); err != nil {
		return StorageAccount{}, false, err
	}
	for _, a := range all {
		if a.Name == account {
			return a, true, nil
		}
	}
	return StorageAccount{}, false, nil
}

// CreateContainer is `az storage container create`.
func (c *Customer) CreateContainer(ctx context.Context, account, container string) error {
	return c.call(ctx, http.MethodPost, "/storageAccounts/"+url.PathEscape(account)+"/containers", map[string]string{"name": container}, nil)
}

// GrantRole is `az role assignment create`; it returns the assignment's name.
func (c *Customer) GrantRole(ctx context.Context, principalID, role, scope string) (string, error) {
	var ra struct {
		Name string `json:"name"`
	}
	err := c.call(ctx, http.MethodPost, "/roleAssignments", map[string]string{"principal_id": principalID, "role": role, "scope": scope}, &ra)
	return ra.Name, err
}

// RevokeRole is `az role assignment delete`.
func (c *Customer) RevokeRole(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/roleAssignments/"+url.PathEscape(name), nil, nil)
}

// SetFirewall switches the account's network rules on (deny) or off.
func (c *Customer) SetFirewall(ctx context.Context, account string, enabled bool) error {
	return c.call(ctx, http.MethodPost, "/storageAccounts/"+url.PathEscape(account)+"/firewall", map[string]bool{"enabled": enabled}, nil)
}

// AccountScope is the ARM id of a storage account; ContainerScope of one of its containers.
func AccountScope(subscriptionID, resourceGroup, account string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s", subscriptionID, resourceGroup, account)
}

// ContainerScope is the ARM id of a container.
func ContainerScope(subscriptionID, resourceGroup, account, container string) string {
	return AccountScope(subscriptionID, resourceGroup, account) + "/blobServices/default/containers/" + container
}

// ManagedIdentity is a user-assigned managed identity of a customer tenant.
type ManagedIdentity struct {
	Name        string `json:"name"`
	ClientID    string `json:"clientId"`
	PrincipalID string `json:"principalId"`
	TenantID    string `json:"tenantId"`
}

// CreateManagedIdentity is `az identity create -n <name>` in tenantID; the stand-in picks
// its ids.
func (c *Customer) CreateManagedIdentity(ctx context.Context, tenantID, name string) (ManagedIdentity, error) {
	var m ManagedIdentity
	err := c.call(ctx, http.MethodPost, "/tenants/"+url.PathEscape(tenantID)+"/managedIdentities", map[string]string{"name": name}, &m)
	return m, err
}

// baseURL is the stand-in's own URL, where the workloads' identity endpoints are.
func (c *Customer) baseURL() string { return strings.TrimSuffix(c.ControlURL, "/control") }

// WorkloadToken is what a workload of tenantID carrying the managed identity clientID gets
// from its identity endpoint for resource (the App Service protocol that azidentity's
// ManagedIdentityCredential speaks, with X-IDENTITY-HEADER identityHeader): the access
// token, or Entra's refusal as an *Error (AADSTS500011 before the resource is installed
// in the tenant).
func (c *Customer) WorkloadToken(ctx context.Context, identityHeader, tenantID, clientID, resource string) (string, error) {
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {resource}, "client_id": {clientID}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := do(ctx, c.HTTP, http.MethodGet, c.baseURL()+"/msi/tenants/"+url.PathEscape(tenantID)+"/token?"+q.Encode(),
		http.Header{"X-IDENTITY-HEADER": {identityHeader}}, nil, &tok)
	return tok.AccessToken, err
}

// TokenDeviation asks the stand-in for a token a verifier must refuse (or, with none, the
// one the identity endpoint issues): another version, expired, another audience, signed
// by an unpublished key, or issued as another tenant.
type TokenDeviation struct {
	Version    string `json:"version,omitempty"`
	Expired    bool   `json:"expired,omitempty"`
	Audience   string `json:"audience,omitempty"`
	UnknownKey bool   `json:"unknown_key,omitempty"`
	TenantID   string `json:"tenant_id,omitempty"`
}

// MintWorkloadToken is a token of the managed identity id (client id, principal id or
// name) of tenantID for the platform API, with deviation.
func (c *Customer) MintWorkloadToken(ctx context.Context, tenantID, id string, deviation TokenDeviation) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := c.call(ctx, http.MethodPost, "/tenants/"+url.PathEscape(tenantID)+"/managedIdentities/"+url.PathEscape(id)+"/token", deviation, &tok)
	return tok.AccessToken, err
}
