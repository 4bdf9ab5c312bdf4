// monitoring.bicep: a Log Analytics workspace and a workspace-based Application Insights
// resource that accepts Entra ID authenticated telemetry only (DisableLocalAuth). The
// Functions host sends with the managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// in function-app.bicep), which needs Monitoring Metrics Publisher on the resource.

param workspaceName string
param appInsightsName string
param location string
param tags object

@description('Object (principal) id of the managed identity that publishes telemetry.')
param principalId string

@description('Days Log Analytics keeps the data.')
param retentionInDays int = 30

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    description: 'Monitoring Metrics Publisher for the azcreds managed identity (Entra ID telemetry)'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
