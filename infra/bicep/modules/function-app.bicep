// function-app.bicep: the Flex Consumption plan and the function app that runs the custom
// handler (host.json: customHandler, defaultExecutablePath `handler`). The app runs as the
// user-assigned managed identity only: the deployment package, the host's storage
// (AzureWebJobsStorage__*), Application Insights and the handler's own calls all sign in
// with it. No connection string, key or secret is set.
//
// The app settings are every setting the binary reads (internal/config, Key* constants),
// named exactly as it reads them, except the local-only ones, plus the host's own; the
// settings contract test in internal/deploy holds that line.

param name string
param planName string
param location string
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the managed identity.')
param identityClientId string

@description('Object (principal) id of the managed identity.')
param identityPrincipalId string

@description('The platform\'s (home) tenant.')
param homeTenantId string

@description('Service endpoints of the app storage account (with a trailing slash).')
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string

param deploymentContainerName string
param appInsightsConnectionString string

param tableName string
param authIssuer string
param authAudience string
param authJwksUrl string

@description('Client id of the platform API\'s app registration, the audience of workload identities\' tokens; empty: workload identities off.')
param apiAppId string

param logLevel string
param graphBaseUrl string

@description('The wizard page administrators return to after the admin consent; empty: this app\'s /wizard/.')
param adminConsentRedirectUri string
param defaultStorageAccount string
param defaultContainerPrefix string
param defaultPrefix string
param delegationKeyCache bool
param resolutionCacheTtl string
param workloadIdentityCacheTtl string
param spPollWindow string
param spPollInterval string
param accessProbeWindow string
param accessProbeInterval string
param propagationGrace string
param healthSchedule string
param healthInterval string
param healthSpread string
param healthRecheck string
param reconcileSchedule string
param reconcileInterval string
param maxCredentials int
param maxWorkspaces int
param maxWorkloadIdentities int
param createRate string

param maximumInstanceCount int
param instanceMemoryMB int

// The App Service domain of the cloud the deployment runs in (environment() names no such
// suffix): the function app's default host is <name>.<it>.
var appServiceDomain = environment().name == 'AzureUSGovernment' ? 'azurewebsites.us' : (environment().name == 'AzureChinaCloud' ? 'chinacloudsites.cn' : 'azurewebsites.net')

// The admin consent redirect URI: the wizard page served by this app unless one is given.
var consentRedirectUri = empty(adminConsentRedirectUri) ? 'https://${name}.${appServiceDomain}/wizard/' : adminConsentRedirectUri

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      // Flex Consumption takes neither FUNCTIONS_WORKER_RUNTIME nor
      // FUNCTIONS_EXTENSION_VERSION nor WEBSITE_RUN_FROM_PACKAGE: functionAppConfig below
      // says all of that.
      appSettings: [
        // The Functions host's storage, identity-based. The handler reads the table and
        // queue URIs and the client id too: the same storage holds its table and queues.
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: blobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        // Application Insights with Entra ID authentication (the resource disables local auth).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // The handler's settings (local.settings.json.example explains each).
        {
          name: 'AZCREDS_LOG_LEVEL'
          value: logLevel
        }
        {
          name: 'AZCREDS_TABLE_NAME'
          value: tableName
        }
        {
          name: 'AZCREDS_HOME_TENANT_ID'
          value: homeTenantId
        }
        {
          name: 'AZCREDS_MANAGED_IDENTITY_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'AZCREDS_MANAGED_IDENTITY_OBJECT_ID'
          value: identityPrincipalId
        }
        {
          name: 'AZCREDS_AUTHORITY_HOST'
          value: environment().authentication.loginEndpoint
        }
        {
          name: 'AZCREDS_GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'AZCREDS_BLOB_ENDPOINT_TEMPLATE'
          value: 'https://%s.blob.${environment().suffixes.storage}/'
        }
        {
          name: 'AZCREDS_DEFAULT_STORAGE_ACCOUNT'
          value: defaultStorageAccount
        }
        {
          name: 'AZCREDS_DEFAULT_CONTAINER_PREFIX'
          value: defaultContainerPrefix
        }
        {
          name: 'AZCREDS_DEFAULT_PREFIX'
          value: defaultPrefix
        }
        {
          name: 'AZCREDS_DELEGATION_KEY_CACHE'
          value: delegationKeyCache ? 'true' : 'false'
        }
        {
          name: 'AZCREDS_RESOLUTION_CACHE_TTL'
          value: resolutionCacheTtl
        }
        {
          name: 'AZCREDS_AUTH_ISSUER'
          value: authIssuer
        }
        {
          name: 'AZCREDS_AUTH_AUDIENCE'
          value: authAudience
        }
        {
          name: 'AZCREDS_AUTH_JWKS_URL'
          value: authJwksUrl
        }
        {
          // Workload identities: the audience of their Entra tokens; their issuer and keys
          // follow AZCREDS_AUTHORITY_HOST's cloud.
          name: 'AZCREDS_API_APP_ID'
          value: apiAppId
        }
        {
          // A removed workload identity is refused by every instance within this.
          name: 'AZCREDS_WORKLOAD_IDENTITY_CACHE_TTL'
          value: workloadIdentityCacheTtl
        }
        {
          // Where Entra ID sends a customer's tenant administrator back after the admin
          // consent: the wizard page. Every new app registration lists it as a redirect URI,
          // and the admin_consent_url names it; Entra compares it exactly.
          name: 'AZCREDS_ADMIN_CONSENT_REDIRECT_URI'
          value: consentRedirectUri
        }
        {
          name: 'AZCREDS_SP_POLL_WINDOW'
          value: spPollWindow
        }
        {
          name: 'AZCREDS_SP_POLL_INTERVAL'
          value: spPollInterval
        }
        {
          name: 'AZCREDS_ACCESS_PROBE_WINDOW'
          value: accessProbeWindow
        }
        {
          name: 'AZCREDS_ACCESS_PROBE_INTERVAL'
          value: accessProbeInterval
        }
        {
          name: 'AZCREDS_PROPAGATION_GRACE'
          value: propagationGrace
        }
        {
          // Read by the host's timer trigger (functions/health-sweep), checked by the binary.
          name: 'AZCREDS_HEALTH_SCHEDULE'
          value: healthSchedule
        }
        {
          // The standalone ticker's interval; under the host the timer sweeps instead.
          name: 'AZCREDS_HEALTH_INTERVAL'
          value: healthInterval
        }
        {
          name: 'AZCREDS_HEALTH_SPREAD'
          value: healthSpread
        }
        {
          name: 'AZCREDS_HEALTH_RECHECK'
          value: healthRecheck
        }
        {
          // Read by the host's timer trigger (functions/reconcile), checked by the binary.
          name: 'AZCREDS_RECONCILE_SCHEDULE'
          value: reconcileSchedule
        }
        {
          // The standalone ticker's interval; under the host the timer reconciles instead.
          name: 'AZCREDS_RECONCILE_INTERVAL'
          value: reconcileInterval
        }
        {
          // When a create's guard deletes an app registration the create left unrecorded.
          name: 'AZCREDS_CREATE_GUARD_DELAY'
          value: '10m'
        }
        {
          name: 'AZCREDS_MAX_CREDENTIALS'
          value: string(maxCredentials)
        }
        {
          name: 'AZCREDS_MAX_WORKSPACES'
          value: string(maxWorkspaces)
        }
        {
          name: 'AZCREDS_MAX_WORKLOAD_IDENTITIES'
          value: string(maxWorkloadIdentities)
        }
        {
          // Per instance: each instance keeps its own buckets.
          name: 'AZCREDS_CREATE_RATE'
          value: createRate
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

output name string = site.name
output endpoint string = 'https://${site.properties.defaultHostName}'
