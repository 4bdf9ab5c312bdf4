// api-app.bicep registers the platform API in Microsoft Entra ID, for workload identities:
// a customer's Azure managed identity calls the API with an Entra access token for this
// app instead of a platform token (docs/WORKLOAD_IDENTITIES.md).
//
//   - multi-tenant (AzureADMultipleOrgs): Entra issues a token for an app only in a tenant
//     where the app has a service principal, so each customer installs it once in their
//     own tenant (`az ad sp create --id <appId>`); until then their identity's token
//     request fails with AADSTS500011;
//   - v2.0 access tokens (api.requestedAccessTokenVersion 2, the manifest's
//     accessTokenAcceptedVersion): aud is the app's client id, iss
//     <login endpoint><tenant>/v2.0, the client id is azp; the handler refuses v1.0 tokens;
//   - no identifier URI: a managed identity asks for resource=<client id>, which names the
//     app (its service principal's names include the client id), and a v2.0 token's aud is
//     the client id whatever the request named. An identifier URI would only be another
//     name for the same audience;
//   - no app roles and no exposed scopes: the API accepts only identities that an
//     organization registered; which ones, the registry says, not Entra.
//
// Deploying it needs the right to register applications in the tenant (Application
// Developer, or members' default permission to register apps). Types:
// https://learn.microsoft.com/graph/templates/bicep/reference/applications?view=graph-bicep-1.0
// https://learn.microsoft.com/graph/templates/bicep/reference/serviceprincipals?view=graph-bicep-1.0

extension microsoftGraphV1

@description('Immutable unique name of the app registration (the Graph extension\'s client-provided key).')
param uniqueName string

@description('Display name of the app registration, which customers see in their tenant\'s enterprise applications.')
param displayName string

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMultipleOrgs'
  api: {
    requestedAccessTokenVersion: 2
  }
}

// The service principal in the home tenant, as every app used in its own tenant has one.
resource apiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
}

@description('Client (application) id of the platform API: the audience of workload identities\' tokens.')
output appId string = api.appId
