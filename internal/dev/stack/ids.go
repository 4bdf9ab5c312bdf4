package stack

import "strings"

// The stand-in's fixed directory objects: the platform's home tenant, the backend's
// user-assigned managed identity in it, and two customer tenants.
const (
	HomeTenantID            = "605e483c-150c-4d9a-a6c4-b96a0c0b5565"
	ManagedIdentityClientID = "670699dd-22cd-4f34-96b7-648a96a6d4b1"
	ManagedIdentityObjectID = "45ca475a-b96a-40e7-accf-c8a4bedbdf68"
	CustomerTenant1         = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	CustomerTenant2         = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
)

// APIAppID is the client id of the platform API's own app registration, which the stand-in
// registers in the home tenant (multi-tenant, v2.0 tokens) and the handler takes as the
// audience of workload identities' tokens.
const APIAppID = "bf01b0aa-723e-4500-96ee-1bc388018396"

// The demo workload identity: a managed identity of CustomerTenant1 that the stand-in
// creates at start, whose workload's identity endpoint is the stand-in's
// localazure.WorkloadIdentityPath(CustomerTenant1).
const (
	WorkloadIdentityName        = "lake-job"
	WorkloadIdentityClientID    = "7ab7e149-fa92-4d13-b4f5-3968577a83a7"
	WorkloadIdentityPrincipalID = "a820f16c-a584-4d66-a058-4e948d87ea75"
)

// CustomerTenants are the customer tenants that exist when the stand-in starts.
func CustomerTenants() []string { return []string{CustomerTenant1, CustomerTenant2} }

// The subscription and resource group the customer storage accounts are registered under
// with the stand-in at start, so that their ARM scopes resolve.
const (
	CustomerSubscriptionID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
	CustomerResourceGroup  = "lake-rg"
)

// Storage accounts served by Azurite. The platform account carries Azurite's published
// well-known key; the two customer accounts play two customers' storage. The keys open
// nothing but an Azurite on this machine.
const (
	PlatformAccountName  = "devstoreaccount1"
	platformAccountKey   = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	CustomerAccount1Name = "custacct1"
	customerAccount1Key  = "EfMsEHDCwa/V469LUE5la3kLYSIk+n/+CBIO5CuQPC/2IDOMBu+zY7NjYXMx1L8fsEOmNGfRA0yTCQxwfqtR8Q=="
	CustomerAccount2Name = "custacct2"
	customerAccount2Key  = "KgCDQqrP4BToH8acoveGQip8vkU8cww5pEq7dohTa0peJyq/TU9PMILtsPx5OC2HtAREsYu4U87QHBWQVd9/LA=="
)

// Account is a storage account and its shared key.
type Account struct {
	Name string
	Key  string
}

// PlatformAccount is the platform's own storage: the handler's tables and queues, and the
// environment default's container.
func PlatformAccount() Account { return Account{PlatformAccountName, platformAccountKey} }

// CustomerAccounts are the customers' storage accounts.
func CustomerAccounts() []Account {
	return []Account{{CustomerAccount1Name, customerAccount1Key}, {CustomerAccount2Name, customerAccount2Key}}
}

// Accounts are every account Azurite serves, the platform's first.
func Accounts() []Account { return append([]Account{PlatformAccount()}, CustomerAccounts()...) }

// AzuriteAccounts formats accounts as Azurite's AZURITE_ACCOUNTS variable (and the
// stand-in's -accounts flag) want them: name:key;name:key.
func AzuriteAccounts(accounts []Account) string {
	parts := make([]string, len(accounts))
	for i, a := range accounts {
		parts[i] = a.Name + ":" + a.Key
	}
	return strings.Join(parts, ";")
}

// accountNames joins the accounts' names with commas.
func accountNames(accounts []Account) string {
	names := make([]string, len(accounts))
	for i, a := range accounts {
		names[i] = a.Name
	}
	return strings.Join(names, ",")
}

// Organizations of the local tokens: DemoOrg for `make run`'s demo token and the
// walkthrough, DemoOrg and SecondDemoOrg for `make run`'s wizard links (two organizations
// show that one never sees the other's credentials), LoadOrg for `make load`.
const (
	DemoOrg       = "demo-org"
	SecondDemoOrg = "demo-org-2"
	LoadOrg       = "load-org"
)

// The issuer and audience of local API tokens, which the handler checks.
const (
	AuthIssuer   = "azcreds-local"
	AuthAudience = "azcreds-api"
)

// IdentityHeader is the X-IDENTITY-HEADER value the stand-in's managed identity endpoint
// expects and the handler sends (IDENTITY_HEADER).
const IdentityHeader = "local"
