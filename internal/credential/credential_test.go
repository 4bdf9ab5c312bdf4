package credential

import "testing"

func TestDerivedCommands(t *testing.T) {
	c := &Credential{BasePath: BasePath{Account: "bloblake", Container: "lakedata"}}
	if c.InstallCommand() != "" || c.AdminConsentURL() != "" || c.RoleAssignmentCommand() != "" || c.PortalURL() != "" {
		t.Fatal("derived values present before the app exists")
	}
	c.App = App{ObjectID: "obj", AppID: "11111111-2222-3333-4444-555555555555"}
	if got, want := c.InstallCommand(), "az ad sp create --id 11111111-2222-3333-4444-555555555555"; got != want {
		t.Errorf("install command %q, want %q", got, want)
	}
	if got, want := c.AdminConsentURL(), "https://login.microsoftonline.com/organizations/adminconsent?client_id=11111111-2222-3333-4444-555555555555"; got != want {
		t.Errorf("consent URL %q, want %q", got, want)
	}
	c.TenantID = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"
	if got, want := c.AdminConsentURL(), "https://login.microsoftonline.com/ceeafc3d-f026-420b-a75b-9df0c970e6d1/adminconsent?client_id=11111111-2222-3333-4444-555555555555"; got != want {
		t.Errorf("consent URL %q, want %q", got, want)
	}
	c.SPObjectID = "99999999-8888-7777-6666-555555555555"
	want := `ACCOUNT_ID="$(az storage account show --name bloblake --query id --output tsv)"
az role assignment create --assignee-object-id 99999999-8888-7777-6666-555555555555 --assignee-principal-type ServicePrincipal --role "Storage Blob Data Contributor" --scope "${ACCOUNT_ID}"`
	if got := c.RoleAssignmentCommand(); got != want {
		t.Errorf("role command\n%s\nwant\n%s", got, want)
	}
	if c.PortalURL() != "" {
		t.Error("portal URL before storage is known")
	}
	c.Storage = StorageTarget{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "data-rg", Account: "bloblake", Container: "lakedata"}
	if got, want := c.PortalURL(), "https://portal.azure.com/#@ceeafc3d-f026-420b-a75b-9df0c970e6d1/resource/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/bloblake/iam"; got != want {
		t.Errorf("portal URL %q, want %q", got, want)
	}
}

func TestFederatedCredentialIssuer(t *testing.T) {
	c := Config{HomeTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}
	if got, want := c.FederatedCredentialIssuer(), "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"; got != want {
		t.Errorf("issuer %q, want %q", got, want)
	}
}
