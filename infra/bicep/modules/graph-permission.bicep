// graph-permission.bicep grants the managed identity the Microsoft Graph application
// permission Application.ReadWrite.OwnedBy: it creates each credential's app registration
// (and its federated identity credential), becomes the app's owner, and may then change
// and delete only the apps it owns. No other Graph permission is needed: the SP poll reads
// the app's service principal in the customer's tenant as the app itself.
//
// An application permission is tenant-wide admin consent. Whoever deploys this module
// must be allowed to grant it: Privileged Role Administrator (or Global Administrator),
// or an application with AppRoleAssignment.ReadWrite.All and Application.Read.All. A
// deployer without that role deploys with grantGraphPermission=false and an administrator
// grants it afterwards (README, "Deploy to Azure").
//
// Known issues of the Graph extension (github.com/microsoftgraph/msgraph-bicep-types):
// a managed identity created in the same deployment may not have replicated to Graph yet
// ("Not a valid reference update", issue 193): run the deployment again.

extension microsoftGraphV1

@description('Object (principal) id of the service principal that gets the permission: the managed identity.')
param principalId string

@description('The Microsoft Graph application permission (app role) to grant.')
param appRoleName string = 'Application.ReadWrite.OwnedBy'

// Microsoft Graph's service principal, by its well-known application id.
resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

// Application.ReadWrite.OwnedBy is app role 18a4783c-866b-4cc7-a460-3d5e5662c884; looked up
// by its value so the template says which permission it grants.
resource grant 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: principalId
  resourceId: microsoftGraph.id
  appRoleId: filter(microsoftGraph.appRoles, role => role.value == appRoleName)[0].id
}

output appRoleId string = grant.appRoleId
