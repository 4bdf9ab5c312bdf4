// main.bicep deploys azcreds into one resource group, with identities and no secrets:
//
//   - a user-assigned managed identity: the backend's only identity. It signs in to the
//     backend's storage and Application Insights, it is the subject every credential's
//     federated identity credential trusts, and it creates and deletes the credentials'
//     app registrations in Microsoft Graph (Application.ReadWrite.OwnedBy);
//   - the app's storage account (shared key access disabled): the deployment package
//     container, the job queues and their -poison queues, and the credentials table;
//   - the platform's own storage account: the environment default, where workspaces
//     without a credential keep their tables, in one container per organization that the
//     handler creates at the organization's first /creds (user delegation SAS signed by the
//     identity, which is Storage Blob Data Contributor on the account);
//   - Application Insights on a Log Analytics workspace, Entra ID ingestion only;
//   - a Flex Consumption function app running the custom handler (runtime `custom`);
//   - the platform API's Entra app registration (multi-tenant, v2.0 tokens) and its service
//     principal, for workload identities: customers' managed identities sign in to the API
//     with tokens for it (modules/api-app.bicep, docs/WORKLOAD_IDENTITIES.md).
//
// Deploy with `make deploy` (README, "Deploy to Azure"); main.bicepparam holds the values.
// The Graph permission needs an administrator: see modules/graph-permission.bicep.

targetScope = 'resourceGroup'

@description('Short name of the deployment; resource names derive from it and the resource group.')
@minLength(2)
@maxLength(20)
param appName string = 'azcreds'

@description('Region of every resource; Flex Consumption must be available there.')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

// API bearer tokens (the platform identity provider's RS256 JWTs).
@description('Required iss of API bearer tokens.')
@minLength(1)
param authIssuer string

@description('Required aud of API bearer tokens.')
@minLength(1)
param authAudience string

@description('https URL of the JWKS that verifies API bearer tokens. The local key file settings are never used in Azure.')
@minLength(9)
param authJwksUrl string

@description('Log level of the handler.')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@description('Microsoft Graph base URL (ARM\'s environment() has no Microsoft Graph endpoint, so it is a parameter for sovereign clouds). The rest follows the cloud the deployment runs in (environment()): the Entra authority, the storage endpoints and, in the handler, the federated credentials\' issuer and token-exchange audience, the Graph token scope and the Azure portal links.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('The wizard page a customer\'s tenant administrator returns to after Entra ID\'s admin consent (AZCREDS_ADMIN_CONSENT_REDIRECT_URI): every app registration lists it as a web redirect URI, and each credential\'s admin_consent_url names it; Entra compares it exactly, so spell it as the wizard is reached. https. Empty: the function app\'s own wizard page, https://<app name>.<App Service domain of the cloud>/wizard/ (set it when the wizard is served elsewhere, or the app has a custom or unique default host name).')
param adminConsentRedirectUri string = ''

@description('Prefix of the environment default\'s containers, one per organization in the platform storage account: the prefix and 32 characters of a hash of the organization id. Lowercase letters, digits and single hyphens, not starting with a hyphen; the handler checks it at start.')
@minLength(1)
@maxLength(31)
param defaultContainerPrefix string = 'org-'

@description('Optional path prefix in each organization\'s environment default container.')
param defaultPrefix string = ''

@description('Table that holds credentials, name reservations, org defaults and events.')
param tableName string = 'credentials'

// The windows of the background work; Go durations. The defaults here and for the health
// sweep below are the binary's (internal/config), which a test holds them to.
param spPollWindow string = '10m'
param spPollInterval string = '5s'
param accessProbeWindow string = '5m'
param accessProbeInterval string = '5s'
param propagationGrace string = '2m'

// The health re-probe of verified credentials (README, "Health"): the health-sweep timer
// function's NCRONTAB schedule, how long one sweep's probes are spread over (shorter than
// the schedule's period), and the standalone twin's interval, which the host does not use
// (kept equal to the schedule's period).
@description('NCRONTAB schedule of the health sweep: {second} {minute} {hour} {day} {month} {day-of-week}.')
param healthSchedule string = '0 */15 * * * *'
param healthSpread string = '5m'
param healthInterval string = '15m'
@description('How long after a first failed health check the credential is checked again; a second failure in a row makes it degraded.')
param healthRecheck string = '1m'

// The reconciler (docs/RELIABILITY.md, "The reconciler"): the reconcile timer function's
// NCRONTAB schedule, and its standalone twin's interval, which the host does not use (kept
// equal to the schedule's period).
@description('NCRONTAB schedule of the reconciler, the safety net that restarts stopped windows and reads the poison queues.')
param reconcileSchedule string = '0 * * * * *'
param reconcileInterval string = '1m'

@description('How long one instance reuses a locked workspace\'s storage resolution (0s: off).')
param resolutionCacheTtl string = '5s'

@description('How long one instance reuses a workload identity\'s registry lookup (0s: off, at most 1m): another instance admits a removed identity at most this long.')
param workloadIdentityCacheTtl string = '30s'

@description('Reuse user delegation keys until shortly before they expire.')
param delegationKeyCache bool = true

// The per-organization limits (README, "Limits per organization"). The quotas are
// counted in the organization's partition and hold across instances; the create rate is a
// token bucket per instance, so up to maximumInstanceCount times it can pass at once.
@description('Most credentials (app registrations) one organization may hold.')
@minValue(1)
param maxCredentials int = 50

@description('Most workspaces one organization may hold.')
@minValue(1)
param maxWorkspaces int = 1000

@description('Most workload identities (customers\' managed identities) one organization may register.')
@minValue(1)
param maxWorkloadIdentities int = 20

@description('Credential creates per organization and instance: <count>/<period>[,burst=<n>], or off.')
param createRate string = '30/1m'

@description('Most instances the app scales out to. The pollers call Entra ID and Graph; keep it modest.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of one instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Register the platform API in Entra ID (multi-tenant, v2.0 tokens) so that customers\' managed identities can sign in to it (workload identities). Needs a deploying principal allowed to register applications; false: workload identities are off (AZCREDS_API_APP_ID empty).')
param workloadIdentities bool = true

@description('Grant the identity Microsoft Graph Application.ReadWrite.OwnedBy here. Needs a deploying principal with Privileged Role Administrator (or AppRoleAssignment.ReadWrite.All); set false when an administrator grants it separately (README, "Deploy to Azure").')
param grantGraphPermission bool = true

var token = toLower(uniqueString(subscription().id, resourceGroup().id, appName))

// The job queues of the binary's job table (internal/queue, which a test holds this list
// to), each with the -poison queue the host moves a message to after maxDequeueCount. The
// binary creates them too when missing; declaring them keeps them part of the deployment.
var queueNames = [
  'sppoll'
  'sppoll-poison'
  'accessprobe'
  'accessprobe-poison'
  'appcleanup'
  'appcleanup-poison'
  'healthprobe'
  'healthprobe-poison'
]

var deploymentContainerName = 'app-package'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}-${token}'
  location: location
  tags: tags
}

module appStorage 'modules/app-storage.bicep' = {
  name: 'app-storage'
  params: {
    name: 'st${take(token, 13)}'
    location: location
    tags: tags
    principalId: identity.properties.principalId
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    tableName: tableName
  }
}

module platformStorage 'modules/platform-storage.bicep' = {
  name: 'platform-storage'
  params: {
    name: 'stdata${take(token, 13)}'
    location: location
    tags: tags
    principalId: identity.properties.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${appName}-${token}'
    appInsightsName: 'appi-${appName}-${token}'
    location: location
    tags: tags
    principalId: identity.properties.principalId
  }
}

module apiApp 'modules/api-app.bicep' = if (workloadIdentities) {
  name: 'api-app'
  params: {
    uniqueName: '${appName}-api-${token}'
    displayName: '${appName} API'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: 'func-${appName}-${token}'
    planName: 'plan-${appName}-${token}'
    location: location
    tags: tags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    identityPrincipalId: identity.properties.principalId
    homeTenantId: tenant().tenantId
    blobEndpoint: appStorage.outputs.blobEndpoint
    queueEndpoint: appStorage.outputs.queueEndpoint
    tableEndpoint: appStorage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    tableName: tableName
    authIssuer: authIssuer
    authAudience: authAudience
    authJwksUrl: authJwksUrl
    apiAppId: workloadIdentities ? apiApp.outputs.appId : ''
    logLevel: logLevel
    graphBaseUrl: graphBaseUrl
    adminConsentRedirectUri: adminConsentRedirectUri
    defaultStorageAccount: platformStorage.outputs.name
    defaultContainerPrefix: defaultContainerPrefix
    defaultPrefix: defaultPrefix
    delegationKeyCache: delegationKeyCache
    resolutionCacheTtl: resolutionCacheTtl
    workloadIdentityCacheTtl: workloadIdentityCacheTtl
    spPollWindow: spPollWindow
    spPollInterval: spPollInterval
    accessProbeWindow: accessProbeWindow
    accessProbeInterval: accessProbeInterval
    propagationGrace: propagationGrace
    healthSchedule: healthSchedule
    healthInterval: healthInterval
    healthSpread: healthSpread
    healthRecheck: healthRecheck
    reconcileSchedule: reconcileSchedule
    reconcileInterval: reconcileInterval
    maxCredentials: maxCredentials
    maxWorkspaces: maxWorkspaces
    maxWorkloadIdentities: maxWorkloadIdentities
    createRate: createRate
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module graphPermission 'modules/graph-permission.bicep' = if (grantGraphPermission) {
  name: 'graph-permission'
  params: {
    principalId: identity.properties.principalId
  }
}

@description('Name of the function app (the target of `az functionapp deployment source config-zip`).')
output functionAppName string = functionApp.outputs.name

@description('The API\'s base URL: point the wizard and the SDK here.')
output endpoint string = functionApp.outputs.endpoint

@description('Client id of the managed identity (AZCREDS_MANAGED_IDENTITY_CLIENT_ID).')
output managedIdentityClientId string = identity.properties.clientId

@description('Object (principal) id of the managed identity (AZCREDS_MANAGED_IDENTITY_OBJECT_ID): the subject of every federated identity credential, and the service principal that needs the Graph permission.')
output managedIdentityObjectId string = identity.properties.principalId

@description('Tenant of the deployment (AZCREDS_HOME_TENANT_ID): where app registrations are created.')
output homeTenantId string = tenant().tenantId

@description('Client id of the platform API\'s app registration (AZCREDS_API_APP_ID), empty when workload identities are off: each customer installs it once in their tenant with `az ad sp create --id <it>`.')
output apiAppId string = workloadIdentities ? apiApp.outputs.appId : ''

@description('The environment default\'s storage account.')
output defaultStorageAccount string = platformStorage.outputs.name

@description('The app\'s own storage account (queues, table, deployment package).')
output appStorageAccount string = appStorage.outputs.name
