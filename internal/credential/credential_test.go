package credential

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The clouds' values as Microsoft documents them (internal/config holds the table the
// binary uses; its tests hold it to these).
var (
	usGovCloud = Cloud{LoginEndpoint: "https://login.microsoftonline.us/", TokenIssuerAuthority: "https://login.microsoftonline.us/",
		TokenExchangeAudience: "api://AzureADTokenExchangeUSGov", Portal: "https://portal.azure.us"}
	chinaCloud = Cloud{LoginEndpoint: "https://login.chinacloudapi.cn/", TokenIssuerAuthority: "https://login.partner.microsoftonline.cn/",
		TokenExchangeAudience: "api://AzureADTokenExchangeChina", Portal: "https://portal.azure.cn"}
)

func TestDerivedCommands(t *testing.T) {
	c := &Credential{BasePath: BasePath{Account: "bloblake", Container: "lakedata"}}
	if c.InstallCommand() != "" || c.RoleAssignmentCommand() != "" {
		t.Fatal("derived values present before the app exists")
	}
	c.App = App{ObjectID: "obj", AppID: "11111111-2222-3333-4444-555555555555"}
	if got, want := c.InstallCommand(), "az ad sp create --id 11111111-2222-3333-4444-555555555555"; got != want {
		t.Errorf("install command %q, want %q", got, want)
	}
	c.SPObjectID = "99999999-8888-7777-6666-555555555555"
	want := `ACCOUNT_ID="$(az storage account show --name bloblake --query id --output tsv)"
az role assignment create --assignee-object-id 99999999-8888-7777-6666-555555555555 --assignee-principal-type ServicePrincipal --role "Storage Blob Data Contributor" --scope "${ACCOUNT_ID}"`
	if got := c.RoleAssignmentCommand(); got != want {
		t.Errorf("role command\n%s\nwant\n%s", got, want)
	}
	if got, want := RoleCheckCommand(c.SPObjectID), "az role assignment list --assignee 99999999-8888-7777-6666-555555555555 --all --query '[].{role:roleDefinitionName, scope:scope}' -o table"; got != want {
		t.Errorf("role check\n%s\nwant\n%s", got, want)
	}
}

// TestLinks: the admin consent URL is Entra ID's v1 endpoint of the configured cloud with
// client_id, the exact redirect URI and the credential id as state; the portal link is
// there from sp_verified on, first the list of storage accounts (the account from the
// base path beside it), then the account's Access control (IAM) blade.
func TestLinks(t *testing.T) {
	const (
		appID    = "11111111-2222-3333-4444-555555555555"
		credID   = "0d7c3f8a-5b1e-4c2d-9e6f-7a8b9c0d1e2f"
		tenant   = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"
		redirect = "https://azcreds.example.net/wizard/?from=consent"
		scope    = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/bloblake"
	)
	consent := func(base, tenant, redirect string) string {
		q := url.Values{"client_id": {appID}, "state": {credID}}
		if redirect != "" {
			q.Set("redirect_uri", redirect)
		}
		return base + tenant + "/adminconsent?" + q.Encode()
	}
	storage := StorageTarget{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "data-rg", Account: "bloblake", Container: "lakedata"}
	cases := []struct {
		name  string
		cfg   Config
		cred  Credential
		links Links
	}{
		{"creating: no app yet", Config{}, Credential{ID: credID, State: StateDraft}, Links{}},
		{"draft", Config{AdminConsentRedirectURI: redirect}, Credential{ID: credID, State: StateDraft, App: App{AppID: appID}},
			Links{AdminConsentURL: consent("https://login.microsoftonline.com/", "organizations", redirect)}},
		{"draft without a redirect URI", Config{}, Credential{ID: credID, State: StateDraft, App: App{AppID: appID}},
			Links{AdminConsentURL: consent("https://login.microsoftonline.com/", "organizations", "")}},
		{"sp_pending names the tenant", Config{AdminConsentRedirectURI: redirect}, Credential{ID: credID, State: StateSPPending, App: App{AppID: appID}, TenantID: tenant},
			Links{AdminConsentURL: consent("https://login.microsoftonline.com/", tenant, redirect)}},
		{"sp_verified: the storage accounts", Config{AdminConsentRedirectURI: redirect},
			Credential{ID: credID, State: StateSPVerified, App: App{AppID: appID}, TenantID: tenant, SPObjectID: "sp"},
			Links{AdminConsentURL: consent("https://login.microsoftonline.com/", tenant, redirect),
				PortalURL: "https://portal.azure.com/#browse/Microsoft.Storage%2FStorageAccounts", PortalAccount: "bloblake"}},
		{"access_pending: the account's IAM blade", Config{AdminConsentRedirectURI: redirect},
			Credential{ID: credID, State: StateAccessPending, App: App{AppID: appID}, TenantID: tenant, SPObjectID: "sp", Storage: storage},
			Links{AdminConsentURL: consent("https://login.microsoftonline.com/", tenant, redirect),
				PortalURL: "https://portal.azure.com/#@" + tenant + "/resource" + scope + "/iam", PortalAccount: "bloblake"}},
		{"US Government", Config{Cloud: usGovCloud, AdminConsentRedirectURI: redirect},
			Credential{ID: credID, State: StateVerified, App: App{AppID: appID}, TenantID: tenant, SPObjectID: "sp", Storage: storage},
			Links{AdminConsentURL: consent("https://login.microsoftonline.us/", tenant, redirect),
				PortalURL: "https://portal.azure.us/#@" + tenant + "/resource" + scope + "/iam", PortalAccount: "bloblake"}},
		{"China", Config{Cloud: chinaCloud, AdminConsentRedirectURI: redirect},
			Credential{ID: credID, State: StateSPVerified, App: App{AppID: appID}, SPObjectID: "sp", TenantID: tenant},
			Links{AdminConsentURL: consent("https://login.chinacloudapi.cn/", tenant, redirect),
				PortalURL: "https://portal.azure.cn/#browse/Microsoft.Storage%2FStorageAccounts", PortalAccount: "bloblake"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cred.BasePath = BasePath{Account: "bloblake", Container: "lakedata"}
			if diff := cmp.Diff(tc.links, tc.cfg.links(&tc.cred)); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFederatedCredentialPerCloud: the trust every app registration gets follows the cloud:
// the issuer its managed identity tokens name and the cloud's token-exchange audience.
func TestFederatedCredentialPerCloud(t *testing.T) {
	const home, mi = "72f988bf-86f1-41af-91ab-2d7cd011db47", "5b0f0c8e-8f6c-4a53-9d1a-3c2e1f0a9b7d"
	cases := []struct {
		name             string
		cloud            Cloud
		issuer, audience string
	}{
		{"public (the default)", Cloud{}, "https://login.microsoftonline.com/" + home + "/v2.0", "api://AzureADTokenExchange"},
		{"US Government", usGovCloud, "https://login.microsoftonline.us/" + home + "/v2.0", "api://AzureADTokenExchangeUSGov"},
		{"China", chinaCloud, "https://login.partner.microsoftonline.cn/" + home + "/v2.0", "api://AzureADTokenExchangeChina"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{HomeTenantID: home, ManagedIdentityObjectID: mi, Cloud: tc.cloud}
			fc := cfg.federatedCredential("cred", "org")
			if fc.Issuer != tc.issuer || fc.Subject != mi || !cmp.Equal(fc.Audiences, []string{tc.audience}) {
				t.Errorf("federated credential %+v, want issuer %s, subject %s, audience %s", fc, tc.issuer, mi, tc.audience)
			}
			if got := cfg.FederatedCredentialIssuer(); got != tc.issuer {
				t.Errorf("issuer %q, want %q", got, tc.issuer)
			}
		})
	}
}
